"""Comparing regenerated tables with the paper's printed ones (what ``pytest repro --results`` runs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from xdet.runs.folder import Run
from xdet.tables.build import Cell, Table, build_tables
from xdet.tables.paper import PaperTable, find_paper_table
from xdet.tables.shape import MODES, ShapeComparison, ShapeTolerance, compare_shape, sign_agreement, spearman
from xdet_tasks.scoring.routing import ROUTED

#: The scorer behind the paper's toxicity numbers (the backend name our runs record for it).
PAPER_SCORER = "perspective"


@dataclass(frozen=True)
class Tolerance:
    """Per-measure thresholds of the comparison with the paper (see ``repro/tolerances.yaml``)."""

    cell_abs: float
    cell_rel: float = 0.0
    sign_agreement_min: float = 0.0
    spearman_min: float = -1.0
    require_complete: bool = False

    def for_cell(self, paper_zs: float) -> float:
        return max(self.cell_abs, self.cell_rel * abs(paper_zs))


@dataclass
class CellDiff:
    row: str
    col: str
    ours: float
    paper: float
    tol: float

    @property
    def diff(self) -> float:
        return self.ours - self.paper

    @property
    def ok(self) -> bool:
        return abs(self.diff) <= self.tol

    def describe(self) -> str:
        what = "ZS" if self.row == "ZS" else ("AVG" if self.row == "AVG" else f"Δ {self.row}")
        return (
            f"row {what}, column {self.col}: ours {self.ours:.2f} vs paper {self.paper:.2f} "
            f"(|diff| {abs(self.diff):.2f} > tol {self.tol:.2f})"
        )


@dataclass
class Comparison:
    paper: PaperTable
    ours: Table
    tolerance: Tolerance
    cells: list[CellDiff]
    missing: list[tuple[str, str]]
    sign_agreement: float | None
    spearman: dict[str, float | None]

    @property
    def bad_cells(self) -> list[CellDiff]:
        return [c for c in self.cells if not c.ok]

    def failures(self) -> list[str]:
        t = self.tolerance
        out = [c.describe() for c in self.bad_cells]
        if not self.cells:
            out.append("no cell of the paper's table exists in our results")
        if t.require_complete and self.missing:
            out.append("missing cells: " + ", ".join(f"{r}/{c}" for r, c in self.missing))
        if self.sign_agreement is not None and self.sign_agreement < t.sign_agreement_min:
            out.append(f"Δ sign agreement {self.sign_agreement:.2f} < {t.sign_agreement_min:.2f}")
        for col, rho in self.spearman.items():
            if rho is not None and rho < t.spearman_min:
                out.append(
                    f"column {col}: Spearman rho of training-language order {rho:.2f} < {t.spearman_min:.2f}"
                )
        return out

    @property
    def ok(self) -> bool:
        return not self.failures()

    def report(self) -> str:
        head = (
            f"{self.paper.title} vs ours ({self.ours.metric}): {len(self.cells)} cells compared, "
            f"{len(self.bad_cells)} out of tolerance, {len(self.missing)} missing"
        )
        sign = "n/a" if self.sign_agreement is None else f"{self.sign_agreement:.2f}"
        rhos = ", ".join(f"{c}={'n/a' if r is None else f'{r:.2f}'}" for c, r in self.spearman.items())
        lines = [head, f"  sign agreement {sign}; Spearman per column: {rhos}"]
        return "\n".join(lines + [f"  FAIL {f}" for f in self.failures()])


def compare_with_paper(ours: Table, paper: PaperTable, tolerance: Tolerance) -> Comparison:
    """Cell-by-cell |ours − paper|, Δ sign agreement and per-column Spearman of the row order."""
    cells: list[CellDiff] = []
    missing: list[tuple[str, str]] = []
    cols = (*paper.columns, "AVG")

    def add(row: str, col: str, ours_cell: Cell | None) -> None:
        ref_zs = paper.zs_avg if col == "AVG" else paper.zs[col]
        if ours_cell is None or ours_cell.value is None:
            missing.append((row, col))
        else:
            cells.append(
                CellDiff(row, col, ours_cell.value, paper.cell(row, col), tolerance.for_cell(ref_zs))
            )

    def ours_cell(row: str, col: str) -> Cell | None:
        if col != "AVG" and col not in ours.columns:
            return None
        if row == "ZS":
            return ours.zs.get(col)
        if row == "AVG":
            return ours.col_avg.get(col)
        return ours.delta[row].get(col) if row in ours.delta else None

    for col in cols:
        add("ZS", col, ours_cell("ZS", col))
    for row in paper.rows:
        for col in cols:
            add(row, col, ours_cell(row, col))
    for col in paper.columns:
        add("AVG", col, ours_cell("AVG", col))

    sign = sign_agreement([(c.ours, c.paper) for c in cells if c.row in paper.rows and c.col != "AVG"])
    rho: dict[str, float | None] = {}
    for col in paper.columns:
        column = [c for c in cells if c.col == col and c.row in paper.rows]
        rho[col] = spearman([c.ours for c in column], [c.paper for c in column])
    return Comparison(paper, ours, tolerance, cells, missing, sign, rho)


def compare_runs_with_paper(
    runs: Sequence[Run],
    tolerances: Mapping[str, Tolerance],
    metrics: Mapping[str, str] | None = None,
    *,
    modes: Mapping[str, str] | None = None,
    shape: Mapping[str, ShapeTolerance] | None = None,
    allow_different: Sequence[str] = (),
) -> list[Comparison | ShapeComparison]:
    """Regenerate tables from ``runs`` and compare each one the paper prints (by model, measure, set).

    ``modes[measure]`` is ``exact`` (cell by cell, the default) or ``shape`` (:mod:`xdet.tables.shape`,
    for tables scored by another scorer than the paper's), with ``shape[measure]`` its thresholds.
    """
    out: list[Comparison | ShapeComparison] = []
    for table in build_tables(runs, metrics=metrics, layout="paper", n_boot=0, allow_different=allow_different):
        paper = find_paper_table(table.model, table.measure, table.split)
        if paper is None:
            continue
        if (modes or {}).get(table.measure, "exact") == "shape":
            out.append(compare_shape(table, paper, (shape or {})[table.measure]))
        else:
            out.append(compare_with_paper(table, paper, tolerances[table.measure]))
    return sorted(out, key=lambda c: c.paper.number)


def recorded_scorers(runs: Sequence[Run]) -> set[str]:
    """The scorer backends the runs' records name (``perspective``, ``hf``, ``local``, a preset...)."""
    found = set()
    for run in runs:
        scorer = run.info.raw.get("scorer") or {}
        # a routing list: the scorer of each language
        for one in (scorer.get("languages") or {}).values() if scorer.get("backend") == ROUTED else [scorer]:
            found.add(str(one.get("preset") or one.get("backend") or one.get("name") or "unknown"))
    return found


def choose_mode(runs: Sequence[Run], override: str | None = None) -> tuple[str, str]:
    """``(mode, why)`` for the toxicity tables: exact only when every run was scored by the paper's scorer."""
    scorers = sorted(recorded_scorers(runs))
    if override:
        if override not in MODES:
            raise ValueError(f"repro mode {override!r}: expected one of {', '.join(MODES)}")
        return override, f"set explicitly; the results were scored by {', '.join(scorers)}"
    if scorers == [PAPER_SCORER]:
        return "exact", "the results were scored by Perspective, as the paper's were"
    return "shape", (f"the results were scored by {', '.join(scorers)}, the paper's by Perspective: absolute "
                     "values are not comparable, so the shape of each table is compared")
