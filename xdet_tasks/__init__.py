"""xdet task plugin for lm-evaluation-harness: data, prompts, metrics, scoring and the task YAMLs + hooks."""

from pathlib import Path

__version__ = "0.1.0"

PACKAGE_DIR: Path = Path(__file__).resolve().parent
#: The paper's benchmark, the directory to pass to ``lm_eval --include_path``: ``--tasks 'xdet_*'``
#: over it runs every ParaDetox task once.
TASK_DIR: Path = PACKAGE_DIR / "tasks"
#: The natural-prompt suites (RTP-LX, PTP), a plugin folder of their own so that ``xdet_*`` over
#: :data:`TASK_DIR` stays the paper's benchmark; ``xdet_*`` over this one runs every natural task once.
NATURAL_TASK_DIR: Path = PACKAGE_DIR / "natural_tasks"
#: Both plugin folders, as ``xdet eval`` indexes them (``TaskManager(include_path=[...])``).
TASK_DIRS: tuple[Path, ...] = (TASK_DIR, NATURAL_TASK_DIR)
#: ``python -m xdet_tasks <name>`` prints these.
PLUGINS: dict[str, Path] = {"paper": TASK_DIR, "natural": NATURAL_TASK_DIR}


def task_config(name: str, protocol: str | None = None, **overrides: object) -> dict:
    """The full config of task ``name`` with ``overrides`` applied, to pass to lm-eval as an inline task.

    lm-eval builds a dict spec as a new task rather than merging it into the registered one, so the
    YAML (with its ``include`` resolved) is loaded here first. ``protocol`` (a key of
    :data:`xdet_tasks.suites.protocols.PROTOCOLS`) sets a generation task's samples per prompt and sampling;
    ``overrides`` win over it (``repeats=K``). A generation task's ``metric_list`` then follows K, as
    the YAMLs' does (:func:`xdet_tasks.names.generation_metrics`: at-k metrics for k < K, distinct-n from 2).
    """
    from lm_eval.tasks._yaml_loader import load_yaml

    from xdet_tasks.metrics.diversity import DISTINCT_METRICS
    from xdet_tasks.names import generation_metrics
    from xdet_tasks.suites.protocols import get_protocol

    found = [path for path in (d / f"{name}.yaml" for d in TASK_DIRS) if path.is_file()]
    if not found:
        raise KeyError(f"unknown xdet task {name!r} (no {name}.yaml in {' or '.join(map(str, TASK_DIRS))})")
    chosen = get_protocol(protocol).task_overrides() if protocol else {}
    config = {**load_yaml(found[0], resolve_func=True), **chosen, **overrides}
    if config.get("output_type") == "generate_until" and "metric_list" not in overrides:
        declared = {entry["metric"]: entry for entry in config.get("metric_list") or []}
        config["metric_list"] = [
            declared.get(m) or {"metric": m, "aggregation": "mean", "higher_is_better": m in DISTINCT_METRICS}
            for m in generation_metrics(int(config.get("repeats", 1)))
        ]
    return config
