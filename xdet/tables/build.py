"""The paper's table layout regenerated from run folders: ZS row, Δ rows, AVGs, bootstrap intervals.

For each model × measure (toxicity, perplexity) × evaluation set (the paper's three, and the
natural-prompt suites' ``rtplx`` and ``ptp``, whose columns are the suite's languages) one :class:`Table`: the zero-shot
row of actual scores, one Δ row per training configuration (X-FT source languages, then P-FT
percentages, M-FT, DPO, ordered by the strategy records), the row AVG column and a bottom AVG row over
the cross-lingual (X-FT) rows, as printed. Δ = ZS − FT, so a positive toxicity Δ is a reduction and
a positive perplexity Δ a lower perplexity. A cell without data is missing (empty / "—"), never 0,
and an AVG is only given when every cell it averages exists, so it always means what the paper's
AVG means.

Every cell carries a percentile bootstrap 95 % interval from the per-sample values. Resamples of a
column's documents are shared by all rows of that column (paired: ZS and FT see the same documents),
and row/column averages average the replicates, so their intervals are consistent with the cells.
The replicates are kept on the table (:attr:`Table.replicates`) for the analysis.

A Δ is only taken between runs whose settings agree (:mod:`xdet.runs.settings`: sampling, samples per
prompt, documents, seed, scorer, task version, ...): otherwise the tables are refused in one line naming
the cell, the setting and both values, unless ``allow_different`` names that setting (then every table
it affects says so in its caption). Every toxicity cell names its scorer (:attr:`Table.scorers`). The
benchmark is zero-shot: a run with few-shot examples is refused.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from xdet.runs.folder import Run
from xdet.runs.record import ResultsError, RunInfo
from xdet.stats import keyed_rng, percentile_interval, resample_indices
from xdet.tables.comparable import (
    check_comparable,
    column_scorer,
    refuse_few_shot,
    run_metric,
    samples_per_prompt,
)
from xdet.tables.measures import MEASURES, Source
from xdet.tables.metric_options import scored
from xdet_tasks.languages import PAPER_EVAL_LANGUAGES, PAPER_TRAIN_LANGUAGES, order_languages
from xdet_tasks.metrics import at_k
from xdet_tasks.metrics.aggregation import aggregate_many
from xdet_tasks.names import BY_MEASURE, DEFAULT_METRICS, parse_task, task_name
from xdet_tasks.suites.records import LANGUAGES, SUITE_OF_SET
from xdet_train.strategies import STRATEGIES

log = logging.getLogger(__name__)

EVAL_SETS_TABLED: tuple[str, ...] = BY_MEASURE["toxicity"].sets
MISSING_MD = "—"
#: bootstrap resamples of a table's intervals unless asked otherwise (``--n-boot``)
DEFAULT_N_BOOT = 1000


def row_label(info: RunInfo) -> str:
    """The Δ row a run fills (``de``, ``p-ft 10%``, ``m-ft``, ``dpo``); ``ZS`` for zero-shot."""
    return STRATEGIES[info.strategy].row_label(info.train_langs, info.pct)


@dataclass
class Cell:
    value: float | None
    lo: float | None = None
    hi: float | None = None

    @property
    def missing(self) -> bool:
        return self.value is None


@dataclass
class Table:
    """One regenerated table; ``delta[row][col]`` and ``zs[col]`` include the ``AVG`` column."""

    model: str
    measure: str
    metric: str
    split: str
    columns: tuple[str, ...]
    rows: tuple[str, ...]
    row_strategy: dict[str, str]
    zs: dict[str, Cell]
    delta: dict[str, dict[str, Cell]]
    col_avg: dict[str, Cell]
    sources: dict[str, str] = field(default_factory=dict)
    #: Paired bootstrap replicates of each Δ cell (``None`` without per-sample values).
    replicates: dict[str, dict[str, np.ndarray | None]] = field(default_factory=dict, repr=False)
    row_pct: dict[str, int | None] = field(default_factory=dict)
    #: the scorer (``backend@version``) of each column's numbers, ``AVG`` included (toxicity tables)
    scorers: dict[str, str | None] = field(default_factory=dict)
    #: settings that differ between a Δ's two runs and were allowed to (``--allow-different``): how
    allowed: dict[str, list[str]] = field(default_factory=dict)
    #: further caption lines (what the guards found, :mod:`xdet.tables.guards`)
    notes: list[str] = field(default_factory=list)
    #: fluency tables: the reference model of each column's perplexities
    references: dict[str, str | None] = field(default_factory=dict)
    #: an at-k table: each row's samples per prompt K (``"25"``, ``"10/25"`` over columns, ``"?"``)
    samples_per_prompt: dict[str, str] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", self.model).strip("_") or "model"
        return f"{slug}__{self.measure}__{self.split}"

    @property
    def title(self) -> str:
        return f"{self.model} · {self.measure} ({self.metric}) · {self.split}"

    def rows_in(self, block: str) -> tuple[str, ...]:
        """The rows whose strategy sits in table ``block`` (``cross-lingual``, ``data-amount``, ``other``)."""
        return tuple(r for r in self.rows if STRATEGIES[self.row_strategy[r]].table_block == block)

    def cell(self, row: str, col: str) -> Cell:
        if row == "ZS":
            return self.zs[col]
        if row == "AVG":
            return self.col_avg[col]
        return self.delta[row][col]

    def value(self, row: str, col: str) -> float | None:
        return self.cell(row, col).value

    def missing_cells(self) -> list[tuple[str, str]]:
        cols = (*self.columns, "AVG")
        out = [("ZS", c) for c in cols if self.zs[c].missing]
        out += [(r, c) for r in self.rows for c in cols if self.delta[r][c].missing]
        if not self.rows_in("cross-lingual"):  # no X-FT row: the bottom AVG has nothing to average
            return out
        return out + [("AVG", c) for c in self.columns if self.col_avg[c].missing]


# ------------------------------------------------------------------------------------------ build


LAYOUTS: tuple[str, ...] = ("present", "paper")


def resolve_columns(spec: str | Sequence[str] | None, found: Iterable[str], split: str | None = None) -> tuple[str, ...]:
    """``present``/``all`` (the evaluated languages, the default), ``paper`` (the published layout: the
    paper's am..ru, or every language of a natural-prompt suite's set) or a list."""
    if spec == "paper":
        suite = SUITE_OF_SET.get(split or "")
        return suite.languages if suite is not None and suite.natural else PAPER_EVAL_LANGUAGES
    if spec in (None, "present", "all"):
        return tuple(order_languages(set(found)))
    langs = tuple(x.strip() for x in (spec.split(",") if isinstance(spec, str) else spec) if x.strip())
    if not langs:
        raise ResultsError(f"empty language list {spec!r}")
    return langs


def _row_order(labels: Iterable[tuple[str, str, int | None]]) -> list[str]:
    """Rows by their strategy's table rank (X-FT first: the paper's seven, then others), then percentage."""
    lang_pos = {lang: i for i, lang in enumerate((*PAPER_TRAIN_LANGUAGES, *LANGUAGES))}
    return [
        label
        for label, _, _ in sorted(
            labels, key=lambda x: (STRATEGIES[x[1]].table_rank, x[2] or 0, lang_pos.get(x[0], 99), x[0])
        )
    ]


def group_runs(runs: Sequence[Run]) -> dict[str, dict[str, Run]]:
    """``{model_name: {row label: run}}``; two runs for one row raise an error naming both folders."""
    grouped: dict[str, dict[str, Run]] = {}
    for run in runs:
        label = row_label(run.info)
        by_row = grouped.setdefault(run.info.model_name, {})
        if label in by_row:
            raise ResultsError(
                f"two runs give model {run.info.model_name!r} row {label!r}: {by_row[label].path} and "
                f"{run.path}; keep one of them in the results folder"
            )
        by_row[label] = run
    return grouped


def build_tables(
    runs: Sequence[Run],
    *,
    metrics: Mapping[str, str] | None = None,
    layout: str = "present",
    columns: str | Sequence[str] | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    allow_different: Sequence[str] = (),
    measures: Sequence[str] | None = None,
    fluency_model: str | None = None,
) -> list[Table]:
    """Every model × measure × evaluation set that some run has tasks for (fluency: when ``metrics`` has it).

    ``layout="present"``: the evaluated languages as columns, a row per configuration run;
    ``layout="paper"``: the paper's seven columns and its seven X-FT rows, filled or missing.
    ``columns`` overrides the columns. ``n_boot=0`` skips the bootstrap (no intervals).
    ``allow_different``: settings (:data:`xdet.runs.settings.KEYS`) a Δ's two runs may differ in.
    ``fluency_model``: the reference model of the fluency files read, where a folder has several.
    """
    if layout not in LAYOUTS:
        raise ResultsError(f"unknown table layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    refuse_few_shot(runs)
    columns = columns or ("paper" if layout == "paper" else "present")
    metrics = {**DEFAULT_METRICS, **(metrics or {})}
    tables: list[Table] = []
    for model, by_row in group_runs(runs).items():
        for measure in (m for m in MEASURES if m in metrics and (measures is None or m in measures)):
            source = Source(measure, fluency_model)
            for split in EVAL_SETS_TABLED:
                found = {
                    ref.lang
                    for run in by_row.values()
                    for t in run.aggregates
                    if (ref := parse_task(t)) and ref.measure == source.task_measure and ref.set == split
                    and (not source.derived or run.fluency(t, fluency_model) is not None)
                }
                if not found:
                    continue
                cols = resolve_columns(columns, found, split)
                table = _build_one(model, source, metrics[measure], split, cols, by_row, n_boot, seed,
                                   paper_rows=layout == "paper", allowed=tuple(allow_different))
                tables.append(table)
    return tables


def _build_one(
    model: str,
    source: Source,
    metric: str,
    split: str,
    cols: tuple[str, ...],
    by_row: Mapping[str, Run],
    n_boot: int,
    seed: int,
    *,
    paper_rows: bool,
    allowed: tuple[str, ...] = (),
) -> Table:
    zs_run = by_row.get("ZS")
    if zs_run is None:
        log.warning("model %s: no zero-shot run, so no Δ can be computed", model)
    ft = {label: run for label, run in by_row.items() if label != "ZS"}
    cross = [label for label, run in ft.items() if STRATEGIES[run.info.strategy].table_block == "cross-lingual"]
    listed = PAPER_TRAIN_LANGUAGES if paper_rows else ()
    x_langs = [*listed, *(label for label in cross if label not in listed)]
    specs = [(lang, "x-ft", None) for lang in x_langs]
    specs += [(label, run.info.strategy, run.info.pct) for label, run in ft.items() if label not in x_langs]
    rows = tuple(_row_order(specs))
    row_strategy = {label: strat for label, strat, _ in specs}
    measure = source.measure
    at_k_table = at_k.parse_metric(metric) is not None
    # an at-k estimate means the same at every K >= k: runs with different K compare (the caption says so)
    exempt = ("samples_per_prompt",) if at_k_table else ()
    ks: dict[str, set[int | None]] = {label: set() for label in by_row}

    zs_val: dict[str, float | None] = {}
    zs_rep: dict[str, np.ndarray | None] = {}
    d_val: dict[str, dict[str, float | None]] = {r: {} for r in rows}
    d_rep: dict[str, dict[str, np.ndarray | None]] = {r: {} for r in rows}
    scorers: dict[str, str | None] = {}
    references: dict[str, str | None] = {}
    allowed_seen: dict[str, list[str]] = {}
    for col in cols:
        task = task_name(source.task_measure, split, col)
        scorers[col] = column_scorer(task, [zs_run, *ft.values()])
        references[col] = source.label(task, [zs_run, *ft.values()])
        for r, run in ft.items():
            if zs_run is not None:
                check_comparable(task, zs_run, run, r, allowed + exempt, allowed_seen)
                source.check(task, zs_run, run, r)
        for label, run in by_row.items():
            if task in run.aggregates:
                ks[label].add(samples_per_prompt(task, run))
        zs_val[col] = source.value(zs_run, task, run_metric(zs_run, task, metric)) if zs_run else None
        reps = _column_replicates(task, metric, source, zs_run, ft, n_boot, seed) if n_boot > 0 else {}
        zs_rep[col] = reps.get("ZS")
        for r in rows:
            run = ft.get(r)
            ft_val = source.value(run, task, run_metric(run, task, metric)) if run else None
            ok = zs_val[col] is not None and ft_val is not None
            d_val[r][col] = zs_val[col] - ft_val if ok else None
            rz, rf = reps.get("ZS"), reps.get(r)
            d_rep[r][col] = rz - rf if ok and rz is not None and rf is not None else None

    def cell(value: float | None, rep: np.ndarray | None) -> Cell:
        if value is None:
            return Cell(None)
        lo, hi = percentile_interval(rep)
        return Cell(float(value), lo, hi)

    def mean_cell(values: list[float | None], reps: list[np.ndarray | None]) -> Cell:
        if not values or any(v is None for v in values):
            return Cell(None)
        rep = None if any(x is None for x in reps) else np.mean(np.stack(reps), axis=0)
        return cell(float(np.mean(values)), rep)

    zs = {c: cell(zs_val[c], zs_rep[c]) for c in cols}
    zs["AVG"] = mean_cell([zs_val[c] for c in cols], [zs_rep[c] for c in cols])
    delta = {}
    for r in rows:
        delta[r] = {c: cell(d_val[r][c], d_rep[r][c]) for c in cols}
        delta[r]["AVG"] = mean_cell([d_val[r][c] for c in cols], [d_rep[r][c] for c in cols])
    xft = [r for r in rows if STRATEGIES[row_strategy[r]].table_block == "cross-lingual"]
    col_avg = {c: mean_cell([d_val[r][c] for r in xft], [d_rep[r][c] for r in xft]) for c in cols}
    sources = {label: str(run.path) for label, run in by_row.items()}
    row_pct = {label: pct for label, _, pct in specs}
    if measure == "toxicity" and scored(metric):
        present = {v for v in scorers.values() if v}
        scorers["AVG"] = next(iter(present)) if len(present) == 1 else ("mixed" if present else None)
    else:
        scorers = {}
    if at_k_table and "samples_per_prompt" not in allowed:
        allowed_seen.pop("samples_per_prompt", None)
    shown_k = {label: "/".join(str(k) if k else "?" for k in sorted(ks[label], key=lambda k: k or 0))
               for label in ("ZS", *rows) if ks.get(label)}
    return Table(model, measure, metric, split, cols, rows, row_strategy, zs, delta, col_avg, sources, d_rep, row_pct,
                 scorers, allowed_seen, references=references if source.derived else {},
                 samples_per_prompt=shown_k if at_k_table else {})


def _column_replicates(
    task: str,
    metric: str,
    source: Source,
    zs_run: Run | None,
    ft: Mapping[str, Run],
    n_boot: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Bootstrap replicates of ``metric`` on ``task`` for every run that has its samples.

    One resample of document positions per replicate, shared by all runs whose documents are the
    zero-shot run's (paired Δ); a run with other documents is resampled on its own.
    """
    rng = keyed_rng(seed, task)
    runs = {"ZS": zs_run, **ft} if zs_run else dict(ft)
    samples = {
        label: source.samples(run, task, run_metric(run, task, metric))
        for label, run in runs.items() if task in run.aggregates
    }
    samples = {k: v for k, v in samples.items() if v is not None and len(v.doc_ids)}
    if not samples:
        return {}
    ref = samples.get("ZS") or next(iter(samples.values()))
    ref_ids = ref.doc_ids
    idx = resample_indices(rng, len(ref_ids), n_boot)
    out: dict[str, np.ndarray] = {}
    for label, s in samples.items():
        if len(s.doc_ids) == len(ref_ids) and set(s.doc_ids.tolist()) == set(ref_ids.tolist()):
            order = np.argsort(s.doc_ids)[np.argsort(np.argsort(ref_ids))]
            values = s.values[order]
            own = idx
        else:
            values = s.values
            own = resample_indices(rng, len(values), n_boot)
        out[label] = aggregate_many(metric, values[own])
    return out


def missing_summary(tables: Sequence[Table]) -> str:
    """One line saying which cells are missing and why (AVG cells follow from the cells they average)."""
    count = sum(len(t.missing_cells()) for t in tables)
    if not count:
        return "no missing cells"
    no_run: set[str] = set()
    no_value: dict[str, dict[str, set[str]]] = {}  # row -> table (measure, metric, set) -> columns
    no_zs: set[str] = set()
    for t in tables:
        if "ZS" not in t.sources:
            no_zs.add(t.model)
        for row, col in t.missing_cells():
            if col == "AVG" or row == "AVG":
                continue
            if row != "ZS" and row not in t.sources:
                no_run.add(row)
            elif row in t.sources:
                no_value.setdefault(row, {}).setdefault(f"{t.measure} {t.metric} {t.split}", set()).add(col)
    reasons = []
    if no_zs:
        reasons.append(f"no zero-shot run for {', '.join(sorted(no_zs))} (every Δ needs one)")
    if no_run:
        reasons.append(f"no run for row(s) {', '.join(_row_order((r, 'x-ft', None) for r in no_run))}")
    for row, where in sorted(no_value.items()):
        reasons.append(f"{row} has no value for " + ", ".join(
            f"{', '.join(order_languages(cols))} ({table})" for table, cols in sorted(where.items())))
    return f"{count} missing cell(s): " + "; ".join(reasons)
