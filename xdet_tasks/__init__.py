"""xdet task plugin for lm-evaluation-harness: data, prompts, scoring, metrics, results, tables."""

from pathlib import Path

__version__ = "0.1.0"

#: The directory to pass to ``lm_eval --include_path``.
TASK_DIR: Path = Path(__file__).resolve().parent / "tasks"
