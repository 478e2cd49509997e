"""Run folders made from given per-sample values, without a model: the paper's numbers, tests, examples.

The folder has exactly the layout :mod:`xdet.runs` reads (lm-eval's results and samples files plus
``xdet_run.json`` last), built in a staging folder and renamed into place.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from xdet.runs.folder import task_filter
from xdet.runs.record import LM_EVAL_DIR, RUN_SCHEMA, ResultsError, complete_run
from xdet_tasks.io import atomic_write_json, atomic_write_text, staged_dir
from xdet_tasks.metrics.aggregation import aggregate, pairs_per_sample
from xdet_train.strategies import STRATEGIES


def sanitize_model_name(model: str) -> str:
    """lm-eval's folder name for a model (same rule as ``lm_eval.utils.sanitize_model_name``)."""
    return re.sub(r"[\"<>:/|\\?*\[\]]+", "__", model)


#: Run-record fields :func:`write_run` accepts, with their defaults.
_RECORD_DEFAULTS: dict[str, Any] = {
    "model_name": None, "peft": None, "strategy": "zs", "train_langs": (), "pct": None, "seed": 0,
    "adapter_manifest": None, "scorer": None, "data": None,
}


def write_run(
    run_dir: str | Path,
    *,
    model: str,
    samples: Mapping[str, Mapping[str, Sequence[Any]]],
    limit: int | None = None,
    timestamp: str | None = None,
    **fields: Any,
) -> Path:
    """Write a complete run folder from per-sample values: ``samples[task][metric] = [v_doc0, ...]``.

    ``fields`` are run-record fields (:data:`_RECORD_DEFAULTS`). Aggregates are computed with
    lm-eval's rules (:func:`xdet_tasks.metrics.aggregate`); ``None`` is an unscored sample. The folder
    is built beside ``run_dir`` and renamed into place, so it appears complete or not at all; an
    existing non-empty folder is never overwritten.
    """
    unknown = set(fields) - set(_RECORD_DEFAULTS)
    if unknown:
        raise TypeError(f"write_run: unknown run-record field(s) {', '.join(sorted(unknown))}")
    record = {**_RECORD_DEFAULTS, **fields}
    if record["strategy"] not in STRATEGIES:
        raise ResultsError(f"unknown strategy {record['strategy']!r}; expected one of {', '.join(STRATEGIES)}")
    run_dir = Path(run_dir)
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise ResultsError(f"{run_dir} exists and is not empty: refusing to overwrite a run")
    ts = timestamp or datetime.now().isoformat().replace(":", "-")
    with staged_dir(run_dir) as staging:
        out = staging / LM_EVAL_DIR / sanitize_model_name(model)
        results = {task: _write_samples(out / f"samples_{task}_{ts}.jsonl", task, metrics)
                   for task, metrics in samples.items()}
        results_path = atomic_write_json(out / f"results_{ts}.json", {
            "results": results,
            "n-samples": {t: {"original": n, "effective": n} for t, n in _sizes(samples).items()},
            "versions": {t: 1.0 for t in results},
            "config": {"model": "hf", "model_args": f"pretrained={model}", "limit": limit},
            "model_name": model,
            "model_name_sanitized": sanitize_model_name(model),
            "date": datetime.now(timezone.utc).timestamp(),
        })
        complete_run(staging, {
            **record,
            "schema": RUN_SCHEMA,
            "model": model,
            "model_name": record["model_name"] or model,
            "train_langs": list(record["train_langs"]),
            "scorer": record["scorer"] or {"name": "synthetic"},
            "data": record["data"] or {},
            "tasks": sorted(results),
            "limit": limit,
            "results_file": results_path.relative_to(staging).as_posix(),
            "created": datetime.now(timezone.utc).isoformat(),
        })
    return run_dir


def _sizes(samples: Mapping[str, Mapping[str, Sequence[Any]]]) -> dict[str, int]:
    sizes = {}
    for task, metrics in samples.items():
        lengths = {len(v) for v in metrics.values()}
        if len(lengths) != 1:
            raise ResultsError(f"task {task}: metrics have different sample counts {sorted(lengths)}")
        sizes[task] = lengths.pop()
    return sizes


def _write_samples(path: Path, task: str, metrics: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """One samples file as lm-eval writes it; returns the task's aggregate entry."""
    n = _sizes({task: metrics})[task]
    filt = task_filter(task)
    entry: dict[str, Any] = {"alias": task}
    arrays = {}
    for metric, vals in metrics.items():
        weighted = pairs_per_sample(metric)
        missing = [math.nan, math.nan] if weighted else math.nan
        arr = np.asarray([missing if v is None else v for v in vals], dtype=float).reshape((n, 2) if weighted else (n,))
        arrays[metric] = arr
        value = aggregate(metric, arr)
        entry[f"{metric},{filt}"] = value if math.isfinite(value) else None
        entry[f"{metric}_stderr,{filt}"] = "N/A"
    lines = []
    for i in range(n):
        rec: dict[str, Any] = {"doc_id": i, "doc": {"index": i}, "filter": filt, "metrics": list(metrics)}
        for metric, arr in arrays.items():
            v = arr[i]
            if arr.ndim == 2:
                rec[metric] = None if np.isnan(v).any() else [float(v[0]), float(v[1])]
            else:
                rec[metric] = None if math.isnan(v) else float(v)
        lines.append(json.dumps(rec, ensure_ascii=False))
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
    return entry
