"""Reading and writing run folders (the contract in ``docs/ARCHITECTURE.md``).

A run folder holds ``xdet_run.json`` (written last: the run is complete) and lm-eval's own outputs
under ``lm_eval/<model>/``: ``results_<ts>.json`` (aggregates under ``results[task]["metric,filter"]``)
and ``samples_<task>_<ts>.jsonl`` (one line per document with the per-sample metric values as
top-level keys). The reader merges several results files (a task's newest value wins), so a run
evaluated in more than one lm-eval call still reads as one. The writer produces the same layout from
given per-sample values is :mod:`xdet.run_writer`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xdet_tasks.errors import DataError
from xdet_tasks.io import atomic_write_json, iter_jsonl
from xdet_tasks.metrics import aggregate, pairs_per_sample
from xdet_tasks.names import parse_task
from xdet_train.manifest import describe_differences
from xdet_train.strategies import STRATEGIES

log = logging.getLogger(__name__)

RUN_FILE = "xdet_run.json"
RUN_SCHEMA = "xdet-run/1"
LM_EVAL_DIR = "lm_eval"
_TS_RE = re.compile(r"_(\d{4}-\d{2}-\d{2}T[\d\-.]+)\.jsonl?$")


class ResultsError(DataError):
    """A run folder or results file is missing, corrupt or inconsistent; the message names the file."""


@dataclass(frozen=True)
class RunInfo:
    """The run manifest (``xdet_run.json``): which model, strategy, languages and percentage."""

    model: str
    model_name: str
    strategy: str
    train_langs: tuple[str, ...]
    pct: int | None
    seed: int | None
    peft: str | None
    raw: dict[str, Any] = field(compare=False, repr=False)


@dataclass(frozen=True)
class SampleValues:
    """Per-sample values of one metric of one task, in file order."""

    doc_ids: np.ndarray  # (n,) int
    values: np.ndarray  # (n,) float, or (n, 2) for weighted perplexities; NaN = unscored
    path: Path


@dataclass
class Run:
    """One complete run folder: manifest, merged aggregates and (lazily read) per-sample values."""

    path: Path
    info: RunInfo
    results_files: list[Path]
    aggregates: dict[str, dict[str, Any]]
    task_source: dict[str, Path]
    _samples: dict[tuple[str, str, str], SampleValues | None] = field(default_factory=dict, repr=False)

    @property
    def tasks(self) -> list[str]:
        return sorted(self.aggregates)

    def value(self, task: str, metric: str, filt: str | None = None) -> float | None:
        """The aggregate lm-eval reported, or ``None`` when absent or not a finite number."""
        if task not in self.aggregates:
            return None
        entry = self.aggregates[task]
        filt = filt or task_filter(task)
        raw = entry.get(f"{metric},{filt}")
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
            return None
        return float(raw)

    def samples_file(self, task: str) -> Path | None:
        """``samples_<task>_<ts>.jsonl`` beside the results file that gave this task (same ts first)."""
        source = self.task_source.get(task)
        if source is None:
            return None
        candidates = sorted(source.parent.glob(f"samples_{task}_*.jsonl"), key=timestamp_order)
        if not candidates:
            return None
        same = [c for c in candidates if file_timestamp(c) == file_timestamp(source)]
        return same[-1] if same else candidates[-1]

    def samples(self, task: str, metric: str, filt: str | None = None) -> SampleValues | None:
        filt = filt or task_filter(task)
        key = (task, metric, filt)
        if key not in self._samples:
            path = self.samples_file(task)
            self._samples[key] = read_samples(path, metric, filt) if path else None
        return self._samples[key]


def task_filter(task: str) -> str:
    ref = parse_task(task)
    return ref.family.filter if ref else "none"


def samples_task(path: str | Path) -> str | None:
    """The task of an lm-eval samples file: ``samples_<task>_<ts>.jsonl`` (or ``samples_<task>.jsonl``)."""
    name = Path(path).name
    if not name.startswith("samples_"):
        return None
    stem = _TS_RE.sub("", name) if _TS_RE.search(name) else name.removesuffix(".jsonl")
    return stem.removeprefix("samples_")


def file_timestamp(path: Path) -> str:
    m = _TS_RE.search(path.name)
    return m.group(1) if m else ""


def timestamp_order(path: Path) -> tuple[str, float]:
    return (file_timestamp(path), path.stat().st_mtime)


def _load_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ResultsError(f"{path}: not UTF-8 text ({err})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ResultsError(
            f"{path}: corrupt or truncated JSON at line {err.lineno} column {err.colno}: {err.msg}"
        ) from None


def read_run_record(run_dir: str | Path) -> dict[str, Any] | None:
    """The raw record of a complete run folder, or ``None`` if the folder holds no complete run."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ResultsError(f"{path}: corrupt run record ({err}); delete the folder to redo the run") from None


#: Fields of a run record that decide whether an existing run answers a new request.
IDENTITY_FIELDS: tuple[str, ...] = (
    "model", "peft", "tasks", "limit", "seed", "batch_size", "repeats", "protocol", "backend",
)


def run_identity(record: dict[str, Any]) -> dict[str, Any]:
    """What makes two runs the same request: the identity fields, the scorer version and the data hash."""
    return {k: record.get(k) for k in IDENTITY_FIELDS} | {
        "scorer": (record.get("scorer") or {}).get("version"),
        "data_hash": (record.get("data") or {}).get("fingerprint"),
    }


def identity_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``field: old -> new`` for each identity field that differs (what a user must know to decide)."""
    return describe_differences(run_identity(old), run_identity(new))


def complete_run(run_dir: str | Path, record: dict[str, Any]) -> Path:
    """Write ``xdet_run.json``: the last write of a run, which marks everything before it complete."""
    return atomic_write_json(Path(run_dir) / RUN_FILE, record)


def read_run_info(run_dir: str | Path) -> RunInfo:
    """Parse and check ``xdet_run.json``; a missing or bad field raises naming file and field."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise ResultsError(f"{path} missing: not a complete run folder (xdet eval writes it last)")
    raw = _load_json(path)
    if not isinstance(raw, dict):
        raise ResultsError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    schema = raw.get("schema", RUN_SCHEMA)
    if schema != RUN_SCHEMA:
        raise ResultsError(f"{path}: field 'schema' is {schema!r}, this reader knows {RUN_SCHEMA!r}")
    for key in ("model", "strategy"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ResultsError(f"{path}: field {key!r} missing or not a string: {raw.get(key)!r}")
    record = STRATEGIES.get(raw["strategy"])
    if record is None:
        raise ResultsError(f"{path}: field 'strategy' is {raw['strategy']!r}; expected one of {', '.join(STRATEGIES)}")
    langs = raw.get("train_langs") or []
    if not isinstance(langs, list) or not all(isinstance(x, str) for x in langs):
        raise ResultsError(f"{path}: field 'train_langs' must be a list of language codes, got {langs!r}")
    pct = raw.get("pct")
    if pct is not None and (isinstance(pct, bool) or not isinstance(pct, int)):
        raise ResultsError(f"{path}: field 'pct' must be an integer or null, got {pct!r}")
    if "lang" in record.required and not langs:
        raise ResultsError(f"{path}: strategy {record.kind!r} needs 'train_langs' (the source language)")
    if "pct" in record.required and pct is None:
        raise ResultsError(f"{path}: strategy {record.kind!r} needs 'pct'")
    seed = raw.get("seed")
    return RunInfo(
        model=raw["model"],
        model_name=str(raw.get("model_name") or raw["model"]),
        strategy=raw["strategy"],
        train_langs=tuple(langs),
        pct=pct,
        seed=seed if isinstance(seed, int) else None,
        peft=raw.get("peft"),
        raw=raw,
    )


def read_run(run_dir: str | Path, *, from_samples: bool = False) -> Run:
    """Read one complete run folder; all its ``results_*.json`` are merged, newest value per task.

    ``from_samples`` rebuilds every aggregate from the samples files alone (the per-sample values the
    tasks logged, toxicity scores included), so published samples files reproduce every number
    without calling a scorer, and a run whose results files are missing still reads.
    """
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    if from_samples:
        samples = sorted((run_dir / LM_EVAL_DIR).rglob("samples_*.jsonl"))
        aggregates, source = aggregates_from_samples(samples, run_dir / LM_EVAL_DIR)
        return Run(path=run_dir, info=info, results_files=[], aggregates=aggregates, task_source=source)
    files = (
        set((run_dir / LM_EVAL_DIR).rglob("results_*.json")) if (run_dir / LM_EVAL_DIR).is_dir() else set()
    )
    named = info.raw.get("results_file")
    if named:
        named_path = run_dir / named
        if not named_path.is_file():
            raise ResultsError(
                f"{run_dir / RUN_FILE}: field 'results_file' names {named_path}, which is missing "
                "(rebuild from the samples files with --from-samples)"
            )
        files.add(named_path)
    if not files:
        raise ResultsError(f"{run_dir}: no lm-eval results_*.json under {run_dir / LM_EVAL_DIR}")
    ordered = sorted(files, key=timestamp_order)
    aggregates, source = merge_results(ordered)
    return Run(path=run_dir, info=info, results_files=ordered, aggregates=aggregates, task_source=source)


def load_results_file(path: Path) -> dict[str, Any]:
    """An lm-eval results file, checked to hold a ``results`` object of per-task objects."""
    data = _load_json(path)
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, dict):
        raise ResultsError(f"{path}: no 'results' object (is this an lm-eval results file?)")
    for task, entry in results.items():
        if not isinstance(entry, dict):
            raise ResultsError(f"{path}: results[{task!r}] is not an object")
    return data


def merge_results(ordered: list[Path]) -> tuple[dict[str, dict[str, Any]], dict[str, Path]]:
    """Per task the newest aggregates of several results files (oldest first) and the file that gave them."""
    aggregates: dict[str, dict[str, Any]] = {}
    source: dict[str, Path] = {}
    for path in ordered:
        for task, entry in load_results_file(path)["results"].items():
            aggregates[task] = entry
            source[task] = path
    return aggregates, source


def aggregates_from_samples(samples: list[Path], where: Path) -> tuple[dict[str, dict[str, Any]], dict[str, Path]]:
    """``results``-shaped aggregates computed from the newest samples file of each xdet task."""
    newest: dict[str, Path] = {}
    for path in sorted(samples, key=timestamp_order):
        task = samples_task(path)
        if task and parse_task(task):
            newest[task] = path
    if not newest:
        raise ResultsError(f"{where}: no xdet samples_*.jsonl to rebuild from")
    aggregates: dict[str, dict[str, Any]] = {}
    for task, path in newest.items():
        family = parse_task(task).family
        entry: dict[str, Any] = {}
        for metric in family.metrics:
            values = read_samples(path, metric, family.filter).values
            if values.size:
                value = aggregate(metric, values)
                entry[f"{metric},{family.filter}"] = value if math.isfinite(value) else None
        aggregates[task] = entry
    return aggregates, newest


def read_samples(path: str | Path, metric: str, filt: str | None = None) -> SampleValues:
    """Per-sample ``metric`` values of a samples jsonl; lines of another lm-eval filter are skipped.

    A line without the metric (an unscored prompt) gives NaN, which every aggregate leaves out.
    """
    path = Path(path)
    weighted = pairs_per_sample(metric)
    doc_ids: list[int] = []
    values: list[Any] = []
    present = 0
    for lineno, rec in iter_jsonl(path, ResultsError):
        if not isinstance(rec, dict) or "doc_id" not in rec:
            raise ResultsError(f"{path}:{lineno}: no 'doc_id' in sample line")
        if filt is not None and "filter" in rec and rec["filter"] != filt:
            continue
        doc_ids.append(int(rec["doc_id"]))
        # an unscored prompt reports only ``unscored``: its value is missing, never 0
        values.append(_sample_value(rec.get(metric), weighted, path, lineno, metric))
        present += metric in rec
    if values and not present:
        log.warning("%s: no line has a per-sample %r value", path, metric)
    shape = (len(values), 2) if weighted else (len(values),)
    arr = np.asarray(values, dtype=float).reshape(shape)
    return SampleValues(np.asarray(doc_ids, dtype=int), arr, path)


def _sample_value(raw: Any, weighted: bool, path: Path, lineno: int, metric: str) -> Any:
    if weighted:
        if raw is None:
            return [math.nan, math.nan]
        if isinstance(raw, (list, tuple)) and len(raw) == 2 and all(_is_number(x) for x in raw):
            return [float(raw[0]), float(raw[1])]
        raise ResultsError(f"{path}:{lineno}: {metric!r} must be a [loglikelihood, count] pair, got {raw!r}")
    if raw is None:
        return math.nan
    if _is_number(raw):
        return float(raw)
    raise ResultsError(f"{path}:{lineno}: {metric!r} must be a number, got {raw!r}")


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def find_runs(results_dir: str | Path) -> list[Path]:
    """Every ``xdet eval`` run folder (a folder with ``xdet_run.json``) at or below ``results_dir``, sorted."""
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"results folder not found: {root}")
    return sorted({p.parent for p in root.rglob(RUN_FILE)})


def read_results(results_dir: str | Path, *, from_samples: bool = False,
                 strategies: dict[str, str] | None = None) -> list[Run]:
    """All complete runs under ``results_dir``: ``xdet eval`` run folders and plain ``lm_eval
    --log_samples --output_path`` output (:mod:`xdet.runs_lm_eval`; ``strategies`` are the
    ``--strategy-of`` answers for adapters whose manifest is not here). None at all is an error."""
    from xdet.runs_lm_eval import read_plain_runs

    root = Path(results_dir)
    if not root.is_dir():
        raise ResultsError(f"results folder not found: {root}")
    runs = [read_run(p, from_samples=from_samples) for p in find_runs(root)]
    runs += read_plain_runs(root, strategies, from_samples=from_samples)
    if not runs:
        raise ResultsError(
            f"{results_dir}: no results found: neither xdet eval run folders ({RUN_FILE}) nor lm_eval output "
            "(results_*.json with xdet tasks, from lm_eval --log_samples --output_path DIR)"
        )
    return runs
