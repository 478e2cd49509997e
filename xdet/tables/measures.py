"""What a table's numbers are read from, per measure: lm-eval's aggregates and samples, or fluency files.

Toxicity and perplexity come from the lm-eval tasks of their family (:data:`xdet_tasks.names.TABLE_MEASURES`).
Fluency (:mod:`xdet_tasks.metrics.fluency`) is computed afterwards by ``xdet fluency`` over the
generation tasks' completions, so its tables have the toxicity tables' columns and read the fluency
file beside each task's samples file (:meth:`xdet.runs.folder.Run.fluency`). Its value is an
aggregate of per-completion perplexities (the median by default), and its Δ = ZS − FT, positive
when the fine-tuned model's completions are more fluent (lower perplexity). A Δ between runs scored
under different reference models is refused: the reference is part of what was measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdet.runs.fluency import REFERENCE_FLAG
from xdet.runs.folder import Run
from xdet.runs.record import ResultsError
from xdet.runs.samples import SampleValues
from xdet_tasks.metrics import fluency
from xdet_tasks.metrics.aggregation import aggregate
from xdet_tasks.names import BY_MEASURE, DEFAULT_METRICS, TABLE_MEASURES

#: Every measure a table can show; fluency only when asked for (``--metric fluency``).
MEASURES: tuple[str, ...] = (*TABLE_MEASURES, fluency.MEASURE)
#: The metrics of each measure (``unscored`` is a count, not a tabled metric).
KNOWN_METRICS: dict[str, tuple[str, ...]] = {
    **{m: tuple(x for x in BY_MEASURE[m].metrics if x != "unscored") for m in TABLE_MEASURES},
    fluency.MEASURE: fluency.METRICS,
}
DEFAULTS: dict[str, str] = {**DEFAULT_METRICS, fluency.MEASURE: fluency.DEFAULT_METRIC}
#: The measure whose tasks (and so columns) a derived measure is computed on.
_TASKS_OF: dict[str, str] = {fluency.MEASURE: "toxicity"}


@dataclass(frozen=True)
class Source:
    """Reads one measure's cell values and per-sample values from runs."""

    measure: str
    reference: str | None = None  # fluency: the reference model chosen by --fluency-model

    @property
    def task_measure(self) -> str:
        """The measure whose tasks hold this measure's numbers."""
        return _TASKS_OF.get(self.measure, self.measure)

    @property
    def filter(self) -> str:
        return BY_MEASURE[self.task_measure].filter

    @property
    def derived(self) -> bool:
        return self.measure in _TASKS_OF

    def value(self, run: Run, task: str, metric: str) -> float | None:
        if not self.derived:
            return run.value(task, metric, self.filter)
        found = run.fluency(task, self.reference) if task in run.aggregates else None
        if found is None:
            return None
        value = aggregate(metric, found.perplexity)
        return value if math.isfinite(value) else None

    def samples(self, run: Run, task: str, metric: str) -> SampleValues | None:
        if not self.derived:
            return run.samples(task, metric, self.filter)
        found = run.fluency(task, self.reference)
        return found.values() if found is not None else None

    def check(self, task: str, zs: Run, ft: Run, row: str) -> None:
        """Fluency: both runs' completions scored under the same reference model, or the Δ is refused."""
        if not self.derived or task not in zs.aggregates or task not in ft.aggregates:
            return
        a, b = zs.fluency(task, self.reference), ft.fluency(task, self.reference)
        if a is not None and b is not None and a.reference["ident"] != b.reference["ident"]:
            raise ResultsError(
                f"Δ fluency {task} row {row}: the zero-shot run's completions were scored under {a.label} ({a.path}) "
                f"and the fine-tuned run's under {b.label} ({b.path}): perplexities under different reference "
                f"models are not comparable; score both under one (xdet fluency ... --model REF; then "
                f"{REFERENCE_FLAG} REF if a folder has several)")

    def label(self, task: str, runs: list[Run | None]) -> str | None:
        """Fluency: the reference model of a column (its runs agree, else the Δ was refused)."""
        if not self.derived:
            return None
        return next((f.label for r in runs if r is not None and task in r.aggregates
                     and (f := r.fluency(task, self.reference)) is not None), None)
