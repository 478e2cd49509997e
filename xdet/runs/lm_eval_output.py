"""Plain ``lm_eval ... --log_samples --output_path DIR`` output read as runs, beside ``xdet eval`` folders.

lm-eval writes ``DIR/<model, sanitised>/results_<ts>.json`` and ``samples_<task>_<ts>.jsonl`` per
invocation. Everything a table needs is recovered from lm-eval's own results file and the adapter:

* the model and the adapter from ``config.model_args`` (``pretrained``; ``peft`` for hf,
  ``lora_local_path`` for vLLM), the seed from ``config.torch_seed``;
* the strategy, training languages and percentage from the adapter's ``xdet_adapter.json``
  (no adapter: zero-shot);
* the scorer from the provenance each generation task's filter carries in ``configs``.

What cannot be recovered (an adapter that is not on this machine or has no xdet manifest) is asked
for by ``--strategy-of <folder or adapter path>=<strategy spec>``. Results files of one folder with the
same model and adapter are merged like the results files of one run folder (newest value per task).
A results file carrying xdet's own ``"xdet"`` block belongs to an ``xdet eval`` run folder; one
found outside a complete run folder is an interrupted run and is skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xdet.runs.folder import Run, load_results_file, merge_results
from xdet.runs.record import RUN_FILE, RUN_SCHEMA, ResultsError, RunInfo, model_display_name
from xdet.runs.samples import aggregates_from_samples, file_timestamp, samples_task, timestamp_order
from xdet_tasks.names import parse_task
from xdet_tasks.scoring.completions import parse_provenance
from xdet_train.manifest import MANIFEST_NAME, read_manifest
from xdet_train.strategies import parse_strategy

log = logging.getLogger(__name__)
FLAG = "--strategy-of"


def parse_strategy_of(values: list[str] | None) -> dict[str, str]:
    """``--strategy-of KEY=SPEC`` values -> ``{KEY: SPEC}``; each spec is checked (``x-ft:de``, ``zs``, ...)."""
    out: dict[str, str] = {}
    for value in values or []:
        key, sep, spec = value.rpartition("=")
        if not sep or not key or not spec:
            raise ResultsError(f"{FLAG} {value!r}: expected <results folder or adapter path>=<strategy>, "
                               "e.g. results/ft-de=x-ft:de")
        parse_strategy(spec)
        out[key] = spec
    return out


def _inside_run_folder(path: Path, root: Path) -> bool:
    return any((parent / RUN_FILE).is_file() for parent in path.parents if parent == root or root in parent.parents)


def plain_results(root: Path) -> dict[tuple[Path, str, str | None], list[Path]]:
    """lm-eval results files under ``root`` outside every ``xdet eval`` run folder, grouped by folder,
    model and adapter (oldest first)."""
    groups: dict[tuple[Path, str, str | None], list[Path]] = {}
    for path in sorted(root.rglob("results_*.json"), key=timestamp_order):
        if _inside_run_folder(path, root):
            continue
        data = load_results_file(path)
        if "xdet" in data:  # written by xdet eval, whose run record never came: an interrupted run
            log.warning("%s: results of an interrupted xdet eval run (no %s), skipped", path, RUN_FILE)
            continue
        if not any(parse_task(task) for task in data["results"]):
            log.debug("%s: no xdet task, skipped", path)
            continue
        model, adapter = _model_and_adapter(path, data)
        groups.setdefault((path.parent, model, adapter), []).append(path)
    return groups


def _model_and_adapter(path: Path, data: Mapping[str, Any]) -> tuple[str, str | None]:
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    args = config.get("model_args")
    if isinstance(args, str):
        from lm_eval.utils import simple_parse_args_string

        args = simple_parse_args_string(args)
    if not isinstance(args, dict) or not args:
        raise ResultsError(f"{path}: names no model arguments (config.model_args); xdet needs "
                           "--model_args pretrained=... to know which model the results belong to")
    model = args.get("pretrained") or args.get("model")
    if not isinstance(model, str) or not model:
        raise ResultsError(f"{path}: config.model_args names no 'pretrained' model: {args!r}")
    adapter = args.get("peft") or args.get("lora_local_path")
    return model, str(adapter) if adapter else None


def read_plain_run(folder: Path, model: str, adapter: str | None, files: list[Path],
                   strategies: Mapping[str, str], *, from_samples: bool = False) -> Run:
    """One run from a model folder's results files (and their samples files)."""
    newest = load_results_file(files[-1])
    stamps = {file_timestamp(f) for f in files}
    samples = [p for p in folder.glob("samples_*.jsonl") if file_timestamp(p) in stamps and samples_task(p)]
    xdet_tasks = [t for f in files for t in load_results_file(f)["results"] if parse_task(t)]
    if not samples:
        raise ResultsError(f"{files[-1]}: no samples_*.jsonl beside it: rerun lm_eval with --log_samples "
                           "(the tables' intervals are computed over its per-prompt values)")
    missing = sorted({t for t in xdet_tasks if not any(samples_task(p) == t for p in samples)})
    if missing:
        raise ResultsError(f"{folder}: no samples file for {', '.join(missing[:3])}: rerun lm_eval with --log_samples")
    config = newest.get("config") or {}
    info = _run_info(folder, model, adapter, newest, strategies)
    info.raw["results_file"] = str(files[-1])
    info.raw["limit"] = config.get("limit")
    if from_samples:
        aggregates, source = aggregates_from_samples(samples, folder)
        return Run(path=folder, info=info, results_files=[], aggregates=aggregates, task_source=source)
    aggregates, source = merge_results(files)
    return Run(path=folder, info=info, results_files=files, aggregates=aggregates, task_source=source)


def _run_info(folder: Path, model: str, adapter: str | None, data: Mapping[str, Any],
              strategies: Mapping[str, str]) -> RunInfo:
    spec = _override(folder, adapter, strategies)
    manifest = None
    if spec is None and adapter is not None:
        manifest_path = Path(adapter).expanduser() / MANIFEST_NAME
        if not manifest_path.is_file():
            relative = "" if Path(adapter).is_absolute() else (
                f" (a relative path, read from {Path.cwd()}: run from the folder lm_eval ran in, or)")
            raise ResultsError(
                f"{folder}: its adapter {adapter} (model_args) has no {MANIFEST_NAME} here, so its strategy is "
                f"unknown;{relative} pass {FLAG} {folder}=<strategy, e.g. x-ft:de>"
            )
        manifest = read_manifest(adapter)
        _check_base(folder, manifest, model)
        strategy = {"strategy": manifest["strategy"], "train_langs": list(manifest.get("train_langs") or []),
                    "pct": manifest.get("pct")}
    else:
        parsed = parse_strategy(spec or "zs")
        strategy = {"strategy": parsed.kind, "train_langs": list(parsed.langs if parsed.single_language else ()),
                    "pct": parsed.pct}
    config = data.get("config") or {}
    seed = config.get("torch_seed")
    raw = {
        "schema": RUN_SCHEMA, "source": "lm_eval", "model": model, "model_name": model_display_name(model),
        "peft": adapter, **strategy, "seed": seed if isinstance(seed, int) else None, "adapter_manifest": manifest,
        "scorer": scorer_of(data), "tasks": sorted(t for t in data.get("results", {}) if parse_task(t)),
    }
    return RunInfo(model=model, model_name=raw["model_name"], strategy=raw["strategy"],
                   train_langs=tuple(raw["train_langs"]), pct=raw["pct"], seed=raw["seed"], peft=adapter, raw=raw)


def _override(folder: Path, adapter: str | None, strategies: Mapping[str, str]) -> str | None:
    """The ``--strategy-of`` spec naming this folder (or a folder above it) or this adapter path."""
    here = folder.resolve()
    for key, spec in strategies.items():
        target = Path(key).expanduser()
        if key == adapter or (target.exists() and (target.resolve() == here or target.resolve() in here.parents)):
            return spec
    return None


def _check_base(folder: Path, manifest: Mapping[str, Any], model: str) -> None:
    """The adapter's base must be the model lm_eval ran; a path that moved (results read on another
    machine, or from another folder than lm_eval ran in) is the same model when its name is."""
    from xdet_train.manifest import normalize_model_id

    base = str(manifest["base_model"])
    if base not in (model, normalize_model_id(model)) and Path(base).name != Path(model.rstrip("/")).name:
        raise ResultsError(f"{folder}: the adapter was trained on {manifest['base_model']!r}, but lm_eval ran "
                           f"pretrained={model!r}")


def scorer_of(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The scorer provenance of the first generation task in a results file's task configs."""
    for task, config in sorted((data.get("configs") or {}).items()):
        if not parse_task(task) or not isinstance(config, dict):
            continue
        for entry in config.get("filter_list") or []:
            for step in (entry.get("filter") or []) if isinstance(entry, dict) else []:
                found = parse_provenance(step.get("provenance")) if isinstance(step, dict) else None
                if found:
                    return found
    return None


def read_plain_runs(root: Path, strategies: Mapping[str, str] | None = None, *,
                    from_samples: bool = False) -> list[Run]:
    """Every plain lm-eval run under ``root`` (see the module docstring)."""
    return [read_plain_run(folder, model, adapter, files, strategies or {}, from_samples=from_samples)
            for (folder, model, adapter), files in plain_results(root).items()]
