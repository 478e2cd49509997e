"""lm-eval's samples files: their names, their order, and the per-sample values they hold.

``samples_<task>_<ts>.jsonl`` has one line per document with the per-sample metric values as
top-level keys, so every number of a run can be rebuilt from these files alone.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xdet.runs.record import ResultsError
from xdet_tasks.io import iter_jsonl
from xdet_tasks.metrics.aggregation import aggregate, pairs_per_sample
from xdet_tasks.names import parse_task

log = logging.getLogger(__name__)
_TS_RE = re.compile(r"_(\d{4}-\d{2}-\d{2}T[\d\-.]+)\.jsonl?$")


@dataclass(frozen=True)
class SampleValues:
    """Per-sample values of one metric of one task, in file order."""

    doc_ids: np.ndarray  # (n,) int
    values: np.ndarray  # (n,) float, or (n, 2) for weighted perplexities; NaN = unscored
    path: Path
    present: int = 0  # lines that hold the metric (0: the task does not report it, e.g. an at-k metric with k >= K)


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
            found = read_samples(path, metric, family.filter, warn_absent=False)
            if found.present:  # a metric no line has is not the task's (lm-eval's results lack it too)
                value = aggregate(metric, found.values)
                entry[f"{metric},{family.filter}"] = value if math.isfinite(value) else None
        aggregates[task] = entry
    return aggregates, newest


def read_samples(path: str | Path, metric: str, filt: str | None = None, *, warn_absent: bool = True) -> SampleValues:
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
    if values and not present and warn_absent:
        log.warning("%s: no line has a per-sample %r value", path, metric)
    shape = (len(values), 2) if weighted else (len(values),)
    arr = np.asarray(values, dtype=float).reshape(shape)
    return SampleValues(np.asarray(doc_ids, dtype=int), arr, path, present)


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
