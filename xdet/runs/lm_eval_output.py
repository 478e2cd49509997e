"""Plain ``lm_eval ... --log_samples --output_path DIR`` output read as runs, beside ``xdet eval`` folders.

lm-eval writes ``DIR/<model, sanitised>/results_<ts>.json`` and ``samples_<task>_<ts>.jsonl`` per
invocation; given ``--output_path FILE.json`` it writes ``FILE_<ts>.json`` with the samples beside it.
Both are found. Everything a table needs is recovered from lm-eval's own results file and the adapter:

* the model and the adapter from ``config.model_args`` (``pretrained``; ``peft`` for hf,
  ``lora_local_path`` for vLLM); a relative adapter path is resolved against the directory lm-eval
  ran in, which the plugin records in each task's metadata, else against the results file's folders
  (and the table says which);
* the strategy, training languages and percentage from the adapter's ``xdet_adapter.json``
  (no adapter: zero-shot);
* per task, the settings its numbers were made with (:mod:`xdet.runs.settings`), the scorer included.

What cannot be recovered (an adapter that is not on this machine or has no xdet manifest) is asked
for by ``--strategy-of <folder or adapter path>=<strategy spec>``. Results files of one folder with the
same model and adapter are merged like the results files of one run folder (:func:`merge_results`:
settings must agree), each task with the samples of its own invocation. A results file carrying
xdet's own ``"xdet"`` block belongs to an ``xdet eval`` run folder; one found outside a complete run
folder is an interrupted run: skipped, and named in a notice, as is every results file without xdet tasks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xdet.runs.folder import Run, check_samples, load_results_file, merge_results, settings_beside_samples
from xdet.runs.record import RUN_FILE, RUN_SCHEMA, ResultsError, RunInfo, model_display_name
from xdet.runs.samples import aggregates_from_samples, file_timestamp, samples_task, timestamp_order
from xdet.runs.settings import filter_provenance
from xdet_tasks.names import parse_task
from xdet_tasks.preflight import launch_directory_of
from xdet_train.manifest import MANIFEST_NAME, read_manifest
from xdet_train.strategies import parse_strategy

FLAG = "--strategy-of"
#: An lm-eval results file: ``results_<ts>.json``, or ``<name>_<ts>.json`` for ``--output_path <name>.json``.
_RESULTS_NAME = re.compile(r"^(?!samples_).+_\d{4}-\d{2}-\d{2}T[\d\-.]+\.json$")


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


def plain_results(root: Path, notices: list[str]) -> dict[tuple[Path, str, str | None, str | None], list[Path]]:
    """lm-eval results files under ``root`` outside every ``xdet eval`` run folder, grouped by folder,
    model, adapter and the directory lm-eval ran in (oldest first); what cannot be placed goes into
    ``notices``."""
    groups: dict[tuple[Path, str, str | None, str | None], list[Path]] = {}
    foreign: list[Path] = []
    names = (p for p in root.rglob("*.json") if _RESULTS_NAME.match(p.name))
    for path in sorted(names, key=timestamp_order):
        if _inside_run_folder(path, root):
            continue
        data = load_results_file(path)
        if "xdet" in data:  # written by xdet eval, whose run record never came: an interrupted run
            notices.append(f"skipped {path}: results of an interrupted xdet eval run (no {RUN_FILE} in its "
                           "folder); rerun that xdet eval command to complete it")
            continue
        if not any(parse_task(task) for task in data["results"]):
            foreign.append(path)
            continue
        model, adapter = _model_and_adapter(path, data)
        groups.setdefault((path.parent, model, adapter, launch_directory(data)), []).append(path)
    if foreign:
        notices.append(f"skipped {len(foreign)} lm-eval results file(s) without xdet tasks: "
                       f"{', '.join(map(str, foreign[:3]))}{' ...' if len(foreign) > 3 else ''}")
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


def launch_directory(data: Mapping[str, Any]) -> str | None:
    """The directory lm-eval ran in, as the plugin recorded it in the tasks' metadata."""
    for config in (data.get("configs") or {}).values():
        found = launch_directory_of(config)
        if found:
            return found
    return None


def resolve_adapter(adapter: str, results_file: Path, data: Mapping[str, Any], notices: list[str]) -> Path | None:
    """The adapter folder lm-eval loaded for ``peft=adapter``, or ``None`` when it is not on this machine.

    An absolute path is itself. A relative one is what lm-eval resolved: against the directory it ran
    in (recorded by the plugin). Where that is not here (results read on another machine, or written
    before the plugin recorded it), the folders holding the results file are tried, nearest first; two
    different adapters found there are refused, one is used and named in ``notices``. The directory
    ``xdet`` itself runs in is never tried: the same relative name there may be another adapter.
    """
    path = Path(adapter).expanduser()
    if path.is_absolute():
        return path if (path / MANIFEST_NAME).is_file() else None
    cwd = launch_directory(data)
    if cwd and (Path(cwd) / path / MANIFEST_NAME).is_file():
        return Path(cwd) / path
    found = [d / path for d in results_file.resolve().parents if (d / path / MANIFEST_NAME).is_file()]
    if not found:
        return None
    manifests = {(f / MANIFEST_NAME).read_bytes() for f in found}
    if len(manifests) > 1:
        raise ResultsError(f"{results_file}: its adapter {adapter} (a relative path) names different adapters in "
                           f"the folders above it ({found[0]}, {found[1]}); pass {FLAG} {results_file.parent}=<strategy>")
    why = f"not found where lm_eval ran ({cwd})" if cwd else "lm_eval's directory is not recorded"
    notices.append(f"{results_file}: adapter {adapter} resolved relative to the results file as {found[0]} ({why})")
    return found[0]


def read_plain_run(folder: Path, model: str, adapter: str | None, files: list[Path], strategies: Mapping[str, str],
                   notices: list[str], *, from_samples: bool = False, newest: bool = False) -> Run:
    """One run from a model folder's results files (and the samples files of the same invocations)."""
    stamps = {file_timestamp(f) for f in files}
    samples = [p for p in folder.glob("samples_*.jsonl") if file_timestamp(p) in stamps and samples_task(p)]
    if not samples:
        raise ResultsError(f"{files[-1]}: no samples_*.jsonl of its invocation beside it: rerun lm_eval with "
                           "--log_samples (the tables' intervals are computed over its per-prompt values)")
    newest_data = load_results_file(files[-1])
    info = _run_info(folder, model, adapter, files[-1], newest_data, strategies, notices)
    if from_samples:
        aggregates, source = aggregates_from_samples(samples, folder)
        return Run(path=folder, info=info, results_files=[], aggregates=aggregates, task_source=source,
                   settings=settings_beside_samples(source))
    aggregates, source, settings = merge_results(files, newest=newest)
    check_samples(folder, aggregates, source)
    return Run(path=folder, info=info, results_files=files, aggregates=aggregates, task_source=source,
               settings=settings)


def _run_info(folder: Path, model: str, adapter: str | None, results_file: Path, data: Mapping[str, Any],
              strategies: Mapping[str, str], notices: list[str]) -> RunInfo:
    spec = _override(folder, adapter, strategies)
    manifest = None
    resolved = None
    if spec is None and adapter is not None:
        resolved = resolve_adapter(adapter, results_file, data, notices)
        if resolved is None:
            raise ResultsError(
                f"{folder}: its adapter {adapter} (model_args) has no {MANIFEST_NAME} where lm_eval ran or above "
                f"the results file, so its strategy is unknown; pass {FLAG} {folder}=<strategy, e.g. x-ft:de>"
            )
        manifest = read_manifest(resolved)
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
        "peft": adapter, "peft_resolved": str(resolved) if resolved else None, **strategy,
        "seed": seed if isinstance(seed, int) else None, "adapter_manifest": manifest,
        "scorer": scorer_of(data), "tasks": sorted(t for t in data.get("results", {}) if parse_task(t)),
        "results_file": str(results_file), "limit": config.get("limit"),
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
    """The scorer provenance of the first generation task in a results file's task configs (a routing
    list's names the scorer of each language)."""
    for task, config in sorted((data.get("configs") or {}).items()):
        if parse_task(task) and isinstance(config, dict) and (found := filter_provenance(config)):
            return found
    return None


def read_plain_runs(root: Path, strategies: Mapping[str, str] | None = None, *, from_samples: bool = False,
                    newest: bool = False, notices: list[str] | None = None) -> list[Run]:
    """Every plain lm-eval run under ``root`` (see the module docstring); notices go into ``notices``."""
    notices = notices if notices is not None else []
    return [read_plain_run(folder, model, adapter, files, strategies or {}, notices, from_samples=from_samples,
                           newest=newest)
            for (folder, model, adapter, _), files in plain_results(root, notices).items()]

