"""Where the analysed Δ matrices come from: the paper's transcription, a tables folder, or run folders.

All three end as :class:`~xdet.analyze.inputs.DeltaMatrix` objects built from the same table
objects ``xdet tables`` builds. Run folders (a sweep) also give per-prompt bootstrap replicates, so
their intervals are sample-level; a tables folder and the paper only give cell values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from xdet.analyze.inputs import AmountRow, DeltaMatrix
from xdet.runs import read_results
from xdet.runs.record import ResultsError
from xdet.tables.build import Table, build_tables
from xdet.tables.guards import CellCheck, annotate
from xdet.tables.measures import MEASURES
from xdet.tables.metric_options import on_language_only as restrict
from xdet.tables.output import read_table_csv, read_table_scorers, read_tables_index
from xdet.tables.paper import PaperTable, load_paper_table, table_numbers
from xdet_tasks.errors import XdetError
from xdet_tasks.names import DEFAULT_METRICS
from xdet_tasks.suites.records import LANGUAGES
from xdet_train.strategies import STRATEGIES, Strategy

#: The paper reports AT (mean toxicity, 0-100) and a per-token perplexity that lm-eval cannot see.
PAPER_METRICS: dict[str, str] = {"toxicity": "avg_toxicity", "perplexity": "perplexity (per token, paper)"}


def from_paper_table(table: PaperTable) -> DeltaMatrix:
    delta = np.array([[table.delta[(r, c)] for c in table.columns] for r in table.rows])
    return DeltaMatrix(
        f"Table {table.number}", table.model, PAPER_METRICS[table.measure], table.measure, table.split,
        table.rows, table.columns, delta,
    )


def paper_matrices() -> list[DeltaMatrix]:
    """The paper's 24 X-FT tables."""
    return [from_paper_table(load_paper_table(n)) for n in table_numbers()]


def from_table(table: Table) -> DeltaMatrix | None:
    """A regenerated table's cross-lingual rows (those with any value) and its data-amount rows."""
    cols = table.columns
    rows = [r for r in table.rows_in("cross-lingual") if r in LANGUAGES
            and any(table.delta[r][c].value is not None for c in cols)]
    if not rows:
        return None

    def values(row: str) -> np.ndarray:
        return np.array([np.nan if table.delta[row][c].value is None else table.delta[row][c].value for c in cols])

    def replicates(row: str) -> np.ndarray | None:
        reps = [table.replicates.get(row, {}).get(c) for c in cols]
        if all(r is None for r in reps):
            return None
        size = next(len(r) for r in reps if r is not None)
        return np.stack([np.full(size, np.nan) if r is None else r for r in reps], axis=1)  # (B, cols)

    row_reps = [replicates(r) for r in rows]
    stacked = None if any(r is None for r in row_reps) else np.stack(row_reps, axis=1)  # (B, rows, cols)
    amounts = []
    for label in table.rows_in("data-amount"):
        kind = table.row_strategy[label]
        fraction = STRATEGIES[kind].data_fraction(Strategy(kind, pct=table.row_pct.get(label)))
        if fraction is not None and not np.isnan(values(label)).all():
            amounts.append(AmountRow(label, fraction, values(label), replicates(label)))
    return DeltaMatrix(
        table.stem, table.model, table.metric, table.measure, table.split, tuple(rows), cols,
        np.stack([values(r) for r in rows]), stacked, tuple(amounts),
        {c: table.scorers[c] for c in cols if table.scorers.get(c)},
    )


def matrices_from_tables(tables: Iterable[Table]) -> list[DeltaMatrix]:
    """The analysable matrices of regenerated tables (those with X-FT rows holding values)."""
    return [m for m in (from_table(t) for t in tables) if m is not None]


def run_matrices(
    results_dir: str | Path, *, metrics: Mapping[str, str] | None = None, n_boot: int = 1000, seed: int = 0,
    strategies: Mapping[str, str] | None = None, newest: bool = False, allow_different: Sequence[str] = (),
    notices: list[str] | None = None, fluency_model: str | None = None, guards: list[CellCheck] | None = None,
) -> list[DeltaMatrix]:
    """Matrices from every run under ``results_dir`` (a sweep folder's ``runs/`` is found); a Δ between
    runs made with different settings is refused as in ``xdet tables`` (``allow_different``); fluency
    (``metrics`` naming it) reads the fluency files under ``fluency_model``; ``guards`` receives the
    guards of every toxicity Δ (:mod:`xdet.tables.guards`)."""
    root = Path(results_dir)
    if (root / "runs").is_dir():
        root = root / "runs"
    runs = read_results(root, strategies=dict(strategies or {}), newest=newest, notices=notices)
    tables = build_tables(runs, metrics=metrics, n_boot=n_boot, seed=seed, allow_different=allow_different,
                          fluency_model=fluency_model)
    if guards is not None:
        guards += annotate(tables, runs, n_boot=n_boot, seed=seed, allow_different=allow_different)
    return matrices_from_tables(tables)


def tables_dir_matrices(tables_dir: str | Path) -> list[DeltaMatrix]:
    """Matrices from an ``xdet tables`` output folder (values only: its CSVs carry no replicates)."""
    folder = Path(tables_dir)
    entries = read_tables_index(folder)
    if entries is None:
        raise ResultsError(f"{folder / 'index.csv'} missing: --tables takes a folder written by `xdet tables`")
    out = []
    for e in entries:
        cells = read_table_csv(folder / f"{e['stem']}.csv")
        cols = tuple(dict.fromkeys(c for _, c in cells if c != "AVG"))
        rows = tuple(r for r in dict.fromkeys(r for r, _ in cells) if r in LANGUAGES
                     and any(cells[(r, c)] is not None for c in cols))
        if not rows:
            continue
        delta = np.array([[np.nan if cells[(r, c)] is None else cells[(r, c)] for c in cols] for r in rows])
        scorers = read_table_scorers(folder / f"{e['stem']}.csv")
        out.append(DeltaMatrix(e["stem"], e["model"], e["metric"], e["measure"], e["split"], rows, cols, delta,
                               scorers={c: scorers[c] for c in cols if c in scorers}))
    return out


def sweep_metrics(folder: str | Path, chosen: Mapping[str, str] | None = None) -> dict[str, str]:
    """The metric per measure to analyse a sweep folder on.

    ``chosen`` (the ``--metric`` options) wins; otherwise the metrics of the tables the sweep itself
    wrote (``tables/index.csv``), so that the analysis tests the numbers those tables show (the demo
    tabulates byte perplexity); otherwise the defaults.
    """
    if chosen:
        return dict(chosen)
    index = Path(folder) / "tables"
    seen: dict[str, str] = {}
    for e in read_tables_index(index) or ():
        measure, metric = e.get("measure", ""), e.get("metric", "")
        if measure not in MEASURES or not metric:
            raise ResultsError(f"{index / 'index.csv'}: table {e.get('stem')!r} has measure {measure!r}, "
                               f"metric {metric!r}; expected one of {', '.join(MEASURES)} and a metric")
        if seen.setdefault(measure, metric) != metric:
            raise ResultsError(f"{index / 'index.csv'}: two {measure} metrics ({seen[measure]}, {metric}); "
                               "choose one with --metric")
    return DEFAULT_METRICS | seen


def collect(
    *, paper: bool = False, tables: Iterable[str | Path] = (), runs: Iterable[str | Path] = (),
    metrics: Mapping[str, str] | None = None, n_boot: int = 1000, seed: int = 0,
    strategies: Mapping[str, str] | None = None, newest: bool = False, allow_different: Sequence[str] = (),
    notices: list[str] | None = None, fluency_model: str | None = None, guards: list[CellCheck] | None = None,
    on_language_only: bool = False,
) -> list[DeltaMatrix]:
    """Matrices of every input; ``metrics`` (measure -> metric), ``strategies`` (``--strategy-of``),
    ``newest``, ``allow_different``, ``fluency_model`` and ``on_language_only`` (toxicity over on-language
    completions, ``--on-language-only``) apply to runs only."""
    matrices = paper_matrices() if paper else []
    for folder in tables:
        matrices += tables_dir_matrices(folder)
    for folder in runs:
        chosen = sweep_metrics(folder, metrics)
        matrices += run_matrices(folder, metrics=restrict(chosen) if on_language_only else chosen,
                                 n_boot=n_boot, seed=seed,
                                 strategies=strategies, newest=newest, allow_different=allow_different,
                                 notices=notices, fluency_model=fluency_model, guards=guards)
    if not matrices:
        raise XdetError("nothing to analyse: no X-FT rows with values in the given input")
    return matrices
