"""An ``xdet eval`` run folder read as a :class:`Run` (the contract in ``docs/ARCHITECTURE.md``).

A run folder holds ``xdet_run.json`` (:mod:`xdet.runs.record`, written last: the run is complete) and
lm-eval's own outputs under ``lm_eval/<model>/``: ``results_<ts>.json`` (aggregates under
``results[task]["metric,filter"]``) and ``samples_<task>_<ts>.jsonl`` (:mod:`xdet.runs.samples`).
The reader merges several results files (a task's newest value wins), so a run evaluated in more
than one lm-eval call still reads as one. Plain ``lm_eval`` output folders become the same
:class:`Run` in :mod:`xdet.runs.lm_eval_output`; :mod:`xdet.runs.writer` writes a folder from given
per-sample values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xdet.runs.fluency import FluencyFile, select_fluency
from xdet.runs.record import LM_EVAL_DIR, RUN_FILE, ResultsError, RunInfo, load_json, read_run_info
from xdet.runs.samples import (
    SampleValues,
    aggregates_from_samples,
    file_timestamp,
    read_samples,
    timestamp_order,
)
from xdet.runs.settings import describe, differences, samples_settings, task_settings
from xdet_tasks.names import parse_task


@dataclass
class Run:
    """One complete run folder: manifest, merged aggregates and (lazily read) per-sample values."""

    path: Path
    info: RunInfo
    results_files: list[Path]
    aggregates: dict[str, dict[str, Any]]
    task_source: dict[str, Path]
    #: per task, the settings its numbers were made with (:mod:`xdet.runs.settings`)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    _samples: dict[tuple[str, str, str], SampleValues | None] = field(default_factory=dict, repr=False)
    _fluency: dict[tuple[str, str | None], FluencyFile | None] = field(default_factory=dict, repr=False)

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
        """The samples file of the invocation that gave this task: beside its results file, same timestamp
        (never another invocation's: in a shared folder that could be another adapter's)."""
        source = self.task_source.get(task)
        if source is None:
            return None
        if source.name.startswith("samples_"):  # rebuilt from samples
            return source
        return samples_of(source, task)

    def samples(self, task: str, metric: str, filt: str | None = None) -> SampleValues | None:
        filt = filt or task_filter(task)
        key = (task, metric, filt)
        if key not in self._samples:
            path = self.samples_file(task)
            self._samples[key] = read_samples(path, metric, filt) if path else None
        return self._samples[key]

    def fluency(self, task: str, reference: str | None = None) -> FluencyFile | None:
        """The ``xdet fluency`` file of this task's samples file under ``reference`` (:mod:`xdet.runs.fluency`)."""
        key = (task, reference)
        if key not in self._fluency:
            path = self.samples_file(task)
            self._fluency[key] = select_fluency(path, reference) if path else None
        return self._fluency[key]


def task_filter(task: str) -> str:
    ref = parse_task(task)
    return ref.family.filter if ref else "none"


def samples_of(results_file: Path, task: str) -> Path | None:
    """``samples_<task>_<ts>.jsonl`` written by the same lm-eval invocation as ``results_file``."""
    stamp = file_timestamp(results_file)
    found = [p for p in results_file.parent.glob(f"samples_{task}_*.jsonl") if file_timestamp(p) == stamp]
    return max(found, key=timestamp_order) if found else None


def check_samples(where: Path, aggregates: dict[str, dict[str, Any]],
                  source: dict[str, Path]) -> None:
    """Every xdet task has the samples file of the invocation that gave its numbers, or the run is named."""
    missing = sorted(t for t in aggregates if parse_task(t) and samples_of(source[t], t) is None)
    if missing:
        raise ResultsError(
            f"{where}: no samples file from the invocation that wrote {source[missing[0]].name} for "
            f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}: rerun lm_eval with --log_samples "
            "(intervals and pairing use each run's own per-prompt values)")


def read_run(run_dir: str | Path, *, from_samples: bool = False, newest: bool = False) -> Run:
    """Read one complete run folder; its ``results_*.json`` are merged task by task (:func:`merge_results`).

    ``from_samples`` rebuilds every aggregate from the samples files alone (the per-sample values the
    tasks logged, toxicity scores included), so published samples files reproduce every number
    without calling a scorer, and a run whose results files are missing still reads.
    """
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    if from_samples:
        samples = sorted((run_dir / LM_EVAL_DIR).rglob("samples_*.jsonl"))
        aggregates, source = aggregates_from_samples(samples, run_dir / LM_EVAL_DIR)
        return Run(path=run_dir, info=info, results_files=[], aggregates=aggregates, task_source=source,
                   settings=settings_beside_samples(source))
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
    aggregates, source, settings = merge_results(ordered, newest=newest)
    check_samples(run_dir, aggregates, source)
    return Run(path=run_dir, info=info, results_files=ordered, aggregates=aggregates, task_source=source,
               settings=settings)


def load_results_file(path: Path) -> dict[str, Any]:
    """An lm-eval results file, checked to hold a ``results`` object of per-task objects."""
    data = load_json(path)
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, dict):
        raise ResultsError(f"{path}: no 'results' object (is this an lm-eval results file?)")
    for task, entry in results.items():
        if not isinstance(entry, dict):
            raise ResultsError(f"{path}: results[{task!r}] is not an object")
    return data


#: The flag that lets the newest of two differing results of one task win.
NEWEST_FLAG = "--newest"


def merge_results(ordered: list[Path], *, newest: bool = False
                  ) -> tuple[dict[str, dict[str, Any]], dict[str, Path], dict[str, dict[str, Any]]]:
    """Per task the aggregates of several results files (oldest first), the file that gave them and the
    settings it recorded. Two results of one task made with the same settings are a rerun: the newest
    counts. Made with different settings they measured different things: refused, naming both files
    and how they differ, unless ``newest`` (``--newest``) says to take the newest."""
    aggregates: dict[str, dict[str, Any]] = {}
    source: dict[str, Path] = {}
    settings: dict[str, dict[str, Any]] = {}
    for path in ordered:
        data = load_results_file(path)
        for task, entry in data["results"].items():
            found = task_settings(data, task)
            if task in source and not newest and (diff := differences(settings[task], found)):
                raise ResultsError(
                    f"{source[task]} and {path} both have {task}, made with different settings ({describe(diff)}): "
                    f"move one of them out of the folder, or pass {NEWEST_FLAG} to use the newest of each task")
            aggregates[task], source[task], settings[task] = entry, path, found
    return aggregates, source, settings


def settings_beside_samples(source: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Settings of runs rebuilt from samples: the results file of the same invocation where it is there,
    else what the samples file itself records (prompts, sampling arguments, K, scorer)."""
    out: dict[str, dict[str, Any]] = {}
    for task, path in source.items():
        stamp = file_timestamp(path)
        results = [p for p in path.parent.glob(f"*_{stamp}.json") if stamp and not p.name.startswith("samples_")]
        out[task] = (task_settings(load_results_file(results[0]), task) if results
                     else samples_settings(path))
    return out


def find_runs(results_dir: str | Path) -> list[Path]:
    """Every ``xdet eval`` run folder (a folder with ``xdet_run.json``) at or below ``results_dir``, sorted."""
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"results folder not found: {root}")
    return sorted({p.parent for p in root.rglob(RUN_FILE)})
