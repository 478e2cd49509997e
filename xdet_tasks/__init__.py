"""xdet task plugin for lm-evaluation-harness: data, prompts, metrics, scoring and the task YAMLs + hooks."""

from pathlib import Path

__version__ = "0.1.0"

#: The directory to pass to ``lm_eval --include_path``.
TASK_DIR: Path = Path(__file__).resolve().parent / "tasks"


def task_config(name: str, protocol: str | None = None, **overrides: object) -> dict:
    """The full config of task ``name`` with ``overrides`` applied, to pass to lm-eval as an inline task.

    lm-eval builds a dict spec as a new task rather than merging it into the registered one, so the
    YAML (with its ``include`` resolved) is loaded here first. ``protocol`` (a key of
    :data:`xdet_tasks.protocols.PROTOCOLS`) sets a generation task's samples per prompt and sampling;
    ``overrides`` win over it (``repeats=K``).
    """
    from lm_eval.tasks._yaml_loader import load_yaml

    from xdet_tasks.protocols import get_protocol

    path = TASK_DIR / f"{name}.yaml"
    if not path.is_file():
        raise KeyError(f"unknown xdet task {name!r} (no {path.name} in {TASK_DIR})")
    chosen = get_protocol(protocol).task_overrides() if protocol else {}
    return {**load_yaml(path, resolve_func=True), **chosen, **overrides}
