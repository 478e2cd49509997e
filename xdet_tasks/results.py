"""Reading and writing run folders (the contract in ``docs/ARCHITECTURE.md``).

A run folder holds ``xdet_run.json`` (written last: the run is complete) and lm-eval's own outputs
under ``lm_eval/<model>/``: ``results_<ts>.json`` (aggregates under ``results[task]["metric,filter"]``)
and ``samples_<task>_<ts>.jsonl`` (one line per document with the per-sample metric values as
top-level keys). The reader merges several results files (a task's newest value wins), so a run
evaluated in more than one lm-eval call still reads as one. The writer produces the same layout from
given per-sample values; tests and the repro round trip use it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from xdet_tasks.data import DataError
from xdet_tasks.io import iter_jsonl

log = logging.getLogger(__name__)

RUN_FILE = "xdet_run.json"
RUN_SCHEMA = "xdet-run/1"
LM_EVAL_DIR = "lm_eval"
STRATEGIES: tuple[str, ...] = ("zs", "x-ft", "p-ft", "m-ft", "dpo")
#: Task split slug (in task names) <-> the paper's split name.
SPLIT_SLUGS: dict[str, str] = {
    "toxic_train": "toxic-train",
    "toxic_test": "toxic-test",
    "neutral_test": "neutral-test",
    "train": "train",
    "test": "test",
}
FAMILY_PREFIX: dict[str, str] = {"toxicity": "xdet_", "perplexity": "xdet_ppl_", "preference": "xdet_pref_"}
#: lm-eval filter name each family's metrics are reported under.
FAMILY_FILTER: dict[str, str] = {"toxicity": "toxicity", "perplexity": "none", "preference": "none"}
#: Corpus-level metrics whose per-sample value is a ``[loglikelihood, count]`` pair.
WEIGHTED_PERPLEXITY: frozenset[str] = frozenset({"word_perplexity", "byte_perplexity"})
BITS_PER_BYTE: frozenset[str] = frozenset({"bits_per_byte"})

_TASK_RE = re.compile(
    r"^xdet_(?:(?P<fam>ppl|pref)_)?(?P<split>toxic_train|toxic_test|neutral_test|train|test)_(?P<lang>[a-z]{2,3})$"
)
_TS_RE = re.compile(r"_(\d{4}-\d{2}-\d{2}T[\d\-.]+)\.jsonl?$")


class ResultsError(DataError):
    """A run folder or results file is missing, corrupt or inconsistent; the message names the file."""


@dataclass(frozen=True)
class TaskRef:
    """What an xdet task name means: metric family, the paper's split name, evaluation language."""

    task: str
    family: str
    split: str
    lang: str


def parse_task(task: str) -> TaskRef | None:
    """``xdet_ppl_toxic_test_de`` -> (perplexity, toxic-test, de); ``None`` for other tasks."""
    m = _TASK_RE.match(task)
    if not m:
        return None
    family = {"ppl": "perplexity", "pref": "preference", None: "toxicity"}[m.group("fam")]
    split = m.group("split")
    if (family == "preference") != (split in ("train", "test")):
        return None
    return TaskRef(task, family, SPLIT_SLUGS[split], m.group("lang"))


def task_name(family: str, split: str, lang: str) -> str:
    """Inverse of :func:`parse_task`: (toxicity, toxic-test, de) -> ``xdet_toxic_test_de``."""
    return f"{FAMILY_PREFIX[family]}{split.replace('-', '_')}_{lang}"


def metric_kind(metric: str) -> str:
    """How per-sample values aggregate: ``mean``, ``weighted_perplexity`` or ``bits_per_byte``."""
    if metric in WEIGHTED_PERPLEXITY:
        return "weighted_perplexity"
    if metric in BITS_PER_BYTE:
        return "bits_per_byte"
    return "mean"


def aggregate(metric: str, values: np.ndarray) -> float:
    """lm-eval's aggregation of per-sample values along axis 0; NaN (unscored) samples are left out.

    ``values`` is ``(n,)`` for mean metrics and ``(n, 2)`` ``[loglikelihood, count]`` pairs for
    weighted ones. Returns NaN when nothing is left (never 0).
    """
    return float(aggregate_many(metric, values[None, ...])[0])


def aggregate_many(metric: str, values: np.ndarray) -> np.ndarray:
    """:func:`aggregate` over the leading axis of ``(b, n[, 2])`` resamples (for the bootstrap)."""
    kind = metric_kind(metric)
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "mean":
            ok = ~np.isnan(values)
            count = ok.sum(axis=-1)
            total = np.where(ok, values, 0.0).sum(axis=-1)
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)
        ok = ~np.isnan(values).any(axis=-1)
        ll = np.where(ok, values[..., 0], 0.0).sum(axis=-1)
        n = np.where(ok, values[..., 1], 0.0).sum(axis=-1)
        if kind == "weighted_perplexity":
            return np.where(n > 0, np.exp(-ll / np.where(n > 0, n, 1)), np.nan)
        return np.where(n > 0, -ll / np.where(n > 0, n, 1) / math.log(2), np.nan)


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
        ref = parse_task(task)
        filt = filt or (FAMILY_FILTER[ref.family] if ref else "none")
        raw = entry.get(f"{metric},{filt}")
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
            return None
        return float(raw)

    def samples_file(self, task: str) -> Path | None:
        """``samples_<task>_<ts>.jsonl`` beside the results file that gave this task (same ts first)."""
        source = self.task_source.get(task)
        if source is None:
            return None
        candidates = sorted(source.parent.glob(f"samples_{task}_*.jsonl"), key=_timestamp_key)
        if not candidates:
            return None
        same = [c for c in candidates if _timestamp(c) == _timestamp(source)]
        return same[-1] if same else candidates[-1]

    def samples(self, task: str, metric: str, filt: str | None = None) -> SampleValues | None:
        ref = parse_task(task)
        filt = filt or (FAMILY_FILTER[ref.family] if ref else "none")
        key = (task, metric, filt)
        if key not in self._samples:
            path = self.samples_file(task)
            self._samples[key] = read_samples(path, metric, filt) if path else None
        return self._samples[key]


def samples_task(path: str | Path) -> str | None:
    """The task of an lm-eval samples file: ``samples_<task>_<ts>.jsonl`` (or ``samples_<task>.jsonl``)."""
    name = Path(path).name
    if not name.startswith("samples_"):
        return None
    stem = _TS_RE.sub("", name) if _TS_RE.search(name) else name.removesuffix(".jsonl")
    return stem.removeprefix("samples_")


def _timestamp(path: Path) -> str:
    m = _TS_RE.search(path.name)
    return m.group(1) if m else ""


def _timestamp_key(path: Path) -> tuple[str, float]:
    return (_timestamp(path), path.stat().st_mtime)


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
    if raw["strategy"] not in STRATEGIES:
        raise ResultsError(f"{path}: field 'strategy' is {raw['strategy']!r}; expected one of {STRATEGIES}")
    langs = raw.get("train_langs") or []
    if not isinstance(langs, list) or not all(isinstance(x, str) for x in langs):
        raise ResultsError(f"{path}: field 'train_langs' must be a list of language codes, got {langs!r}")
    pct = raw.get("pct")
    if pct is not None and (isinstance(pct, bool) or not isinstance(pct, int)):
        raise ResultsError(f"{path}: field 'pct' must be an integer or null, got {pct!r}")
    if raw["strategy"] == "x-ft" and not langs:
        raise ResultsError(f"{path}: strategy 'x-ft' needs 'train_langs' (the source language)")
    if raw["strategy"] == "p-ft" and pct is None:
        raise ResultsError(f"{path}: strategy 'p-ft' needs 'pct'")
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


def read_run(run_dir: str | Path) -> Run:
    """Read one complete run folder; all its ``results_*.json`` are merged, newest value per task."""
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    files = (
        set((run_dir / LM_EVAL_DIR).rglob("results_*.json")) if (run_dir / LM_EVAL_DIR).is_dir() else set()
    )
    named = info.raw.get("results_file")
    if named:
        named_path = run_dir / named
        if not named_path.is_file():
            raise ResultsError(
                f"{run_dir / RUN_FILE}: field 'results_file' names {named_path}, which is missing"
            )
        files.add(named_path)
    if not files:
        raise ResultsError(f"{run_dir}: no lm-eval results_*.json under {run_dir / LM_EVAL_DIR}")
    ordered = sorted(files, key=_timestamp_key)
    aggregates: dict[str, dict[str, Any]] = {}
    source: dict[str, Path] = {}
    for path in ordered:
        data = _load_json(path)
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, dict):
            raise ResultsError(f"{path}: no 'results' object (is this an lm-eval results file?)")
        for task, entry in results.items():
            if not isinstance(entry, dict):
                raise ResultsError(f"{path}: results[{task!r}] is not an object")
            aggregates[task] = entry
            source[task] = path
    if len(ordered) > 1:
        log.info("%s: merged %d results files (newest value per task wins)", run_dir, len(ordered))
    return Run(path=run_dir, info=info, results_files=ordered, aggregates=aggregates, task_source=source)


def read_samples(path: str | Path, metric: str, filt: str | None = None) -> SampleValues:
    """Per-sample ``metric`` values of a samples jsonl; lines of another lm-eval filter are skipped.

    A line without the metric (an unscored prompt) gives NaN, which every aggregate leaves out.
    """
    path = Path(path)
    weighted = metric_kind(metric) != "mean"
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
    """Every run folder (a folder with ``xdet_run.json``) at or below ``results_dir``, sorted.

    Folders with lm-eval output but no ``xdet_run.json`` are unfinished runs: logged and skipped.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"results folder not found: {root}")
    runs = sorted({p.parent for p in root.rglob(RUN_FILE)})
    complete = set(runs)
    for lm_dir in root.rglob(LM_EVAL_DIR):
        if lm_dir.is_dir() and lm_dir.parent not in complete:
            log.warning("%s: lm-eval output without %s (unfinished run), skipped", lm_dir.parent, RUN_FILE)
    return runs


def read_results(results_dir: str | Path) -> list[Run]:
    """All complete runs under ``results_dir``; none at all is an error naming the folder."""
    paths = find_runs(results_dir)
    if not paths:
        raise ResultsError(f"{results_dir}: no run folders (folders with {RUN_FILE}) found")
    return [read_run(p) for p in paths]


# ----------------------------------------------------------------------------------------- writer


def sanitize_model_name(model: str) -> str:
    """lm-eval's folder name for a model (same rule as ``lm_eval.utils.sanitize_model_name``)."""
    return re.sub(r"[\"<>:/|\\?*\[\]]+", "__", model)


def write_run(
    run_dir: str | Path,
    *,
    model: str,
    samples: Mapping[str, Mapping[str, Sequence[Any]]],
    model_name: str | None = None,
    strategy: str = "zs",
    train_langs: Iterable[str] = (),
    pct: int | None = None,
    seed: int | None = 0,
    peft: str | None = None,
    adapter_manifest: dict[str, Any] | None = None,
    scorer: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    limit: int | None = None,
    timestamp: str | None = None,
) -> Path:
    """Write a complete run folder from per-sample values: ``samples[task][metric] = [v_doc0, ...]``.

    Aggregates are computed with :func:`aggregate` (lm-eval's rules); ``None`` is an unscored
    sample. The folder is built beside ``run_dir`` and renamed into place, so it appears complete
    or not at all; an existing non-empty folder is never overwritten.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise ResultsError(f"{run_dir} exists and is not empty: refusing to overwrite a run")
    if strategy not in STRATEGIES:
        raise ResultsError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.", suffix=".partial", dir=run_dir.parent))
    try:
        _write_run_files(
            staging,
            model=model,
            samples=samples,
            model_name=model_name,
            strategy=strategy,
            train_langs=train_langs,
            pct=pct,
            seed=seed,
            peft=peft,
            adapter_manifest=adapter_manifest,
            scorer=scorer,
            data=data,
            limit=limit,
            timestamp=timestamp,
        )
        os.replace(staging, run_dir)  # the whole folder appears at once (rename over an empty dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return run_dir


def _write_run_files(
    run_dir: Path,
    *,
    model: str,
    samples: Mapping[str, Mapping[str, Sequence[Any]]],
    model_name: str | None,
    strategy: str,
    train_langs: Iterable[str],
    pct: int | None,
    seed: int | None,
    peft: str | None,
    adapter_manifest: dict[str, Any] | None,
    scorer: dict[str, Any] | None,
    data: dict[str, Any] | None,
    limit: int | None,
    timestamp: str | None,
) -> None:
    ts = timestamp or datetime.now().isoformat().replace(":", "-")
    out = run_dir / LM_EVAL_DIR / sanitize_model_name(model)
    out.mkdir(parents=True)
    results: dict[str, dict[str, Any]] = {}
    n_samples: dict[str, dict[str, int]] = {}
    for task, metrics in samples.items():
        ref = parse_task(task)
        filt = FAMILY_FILTER[ref.family] if ref else "none"
        entry: dict[str, Any] = {"alias": task}
        lengths = {len(v) for v in metrics.values()}
        if len(lengths) != 1:
            raise ResultsError(f"task {task}: metrics have different sample counts {sorted(lengths)}")
        n = lengths.pop()
        arrays = {}
        for metric, vals in metrics.items():
            weighted = metric_kind(metric) != "mean"
            arr = np.asarray(
                [
                    [math.nan, math.nan] if (weighted and v is None) else (math.nan if v is None else v)
                    for v in vals
                ],
                dtype=float,
            ).reshape((n, 2) if weighted else (n,))
            arrays[metric] = arr
            value = aggregate(metric, arr)
            entry[f"{metric},{filt}"] = value if math.isfinite(value) else None
            entry[f"{metric}_stderr,{filt}"] = "N/A"
        results[task] = entry
        n_samples[task] = {"original": n, "effective": n}
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
        (out / f"samples_{task}_{ts}.jsonl").write_text(
            "\n".join(lines) + ("\n" if lines else ""), encoding="utf-8"
        )
    results_path = out / f"results_{ts}.json"
    _write_json(
        results_path,
        {
            "results": results,
            "n-samples": n_samples,
            "versions": {t: 1.0 for t in results},
            "config": {"model": "hf", "model_args": f"pretrained={model}", "limit": limit},
            "model_name": model,
            "model_name_sanitized": sanitize_model_name(model),
            "date": datetime.now(timezone.utc).timestamp(),
        },
    )
    _write_json(
        run_dir / RUN_FILE,
        {
            "schema": RUN_SCHEMA,
            "model": model,
            "model_name": model_name or model,
            "peft": peft,
            "strategy": strategy,
            "train_langs": list(train_langs),
            "pct": pct,
            "seed": seed,
            "adapter_manifest": adapter_manifest,
            "scorer": scorer or {"name": "synthetic"},
            "data": data or {},
            "tasks": sorted(results),
            "limit": limit,
            "results_file": results_path.relative_to(run_dir).as_posix(),
            "created": datetime.now(timezone.utc).isoformat(),
        },
    )


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
