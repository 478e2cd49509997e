"""``python -m xdet_tasks`` prints the directory to pass to ``lm_eval --include_path``."""

from xdet_tasks import TASK_DIR

print(TASK_DIR)
