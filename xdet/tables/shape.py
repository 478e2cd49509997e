"""Comparing a table with the paper's when the two were scored differently: the shape, not the values.

The paper's toxicity Δ values are Perspective scores. A table regenerated with another scorer (an
open classifier, the local development scorer) measures toxicity on another scale, so a per-cell
tolerance would compare apples with oranges. What can agree across scorers is the *shape* of the
table: which transfers help more than others (the Spearman correlation of the Δ cells), which
direction each goes (the share of cells with the paper's sign), and which source language transfers
best and worst (the rows with the highest and lowest row average). Thresholds live in
``repro/tolerances.yaml`` under ``<measure>.shape``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xdet.tables.build import Table
from xdet.tables.paper import PaperTable

MODES: tuple[str, ...] = ("exact", "shape")
MIN_CELLS = 3


@dataclass(frozen=True)
class ShapeTolerance:
    spearman_min: float
    sign_agreement_min: float
    same_extremes: bool = True


@dataclass
class ShapeComparison:
    """``ours`` against ``paper`` on the Δ cells both have (row = training language, column = evaluation)."""

    paper: PaperTable
    ours: Table
    tolerance: ShapeTolerance
    pairs: list[tuple[str, str, float, float]]  # row, column, ours, paper
    spearman: float | None
    sign_agreement: float | None
    extremes: dict[str, tuple[str | None, str]]  # "best"/"worst" -> (ours, paper)
    mode: str = "shape"

    def failures(self) -> list[str]:
        t, name = self.tolerance, self.paper.title
        if len(self.pairs) < MIN_CELLS:
            return [f"{name}: only {len(self.pairs)} Δ cell(s) in common with the paper; the shape needs {MIN_CELLS}"]
        out = []
        if self.spearman is None or self.spearman < t.spearman_min:
            shown = "undefined" if self.spearman is None else f"{self.spearman:.2f}"
            out.append(f"{name}: Spearman correlation of the Δ cells with the paper's {shown} < {t.spearman_min:.2f}")
        if self.sign_agreement is not None and self.sign_agreement < t.sign_agreement_min:
            out.append(f"{name}: share of Δ cells with the paper's sign {self.sign_agreement:.2f} "
                       f"< {t.sign_agreement_min:.2f}")
        if t.same_extremes:
            for which, (ours, paper) in self.extremes.items():
                if ours != paper:
                    rank = "highest" if which == "best" else "lowest"
                    out.append(f"{name}: {which} source language ({rank} row AVG Δ) is {ours} here, {paper} in the paper")
        return out

    @property
    def ok(self) -> bool:
        return not self.failures()

    @property
    def cells(self) -> list[tuple[str, str, float, float]]:
        return self.pairs

    def report(self) -> str:
        rho = "n/a" if self.spearman is None else f"{self.spearman:.2f}"
        sign = "n/a" if self.sign_agreement is None else f"{self.sign_agreement:.2f}"
        best, worst = self.extremes["best"], self.extremes["worst"]
        head = (f"{self.paper.title} vs ours ({self.ours.metric}), shape mode: {len(self.pairs)} Δ cells, Spearman "
                f"{rho}, sign agreement {sign}, best source {best[0]} (paper {best[1]}), worst {worst[0]} "
                f"(paper {worst[1]})")
        return "\n".join([head, *(f"  FAIL {f}" for f in self.failures())])


def _row_averages(ours: Table, paper: PaperTable) -> dict[str, float]:
    """Row averages of our table over the paper's columns, for the rows that have every one of them."""
    out = {}
    for row in paper.rows:
        values = [ours.delta.get(row, {}).get(col) for col in paper.columns]
        if all(v is not None and v.value is not None for v in values):
            out[row] = float(np.mean([v.value for v in values]))
    return out


def sign_agreement(pairs: list[tuple[float, float]]) -> float | None:
    """Share of ``(ours, paper)`` cells with the same sign, over the cells where the paper's is not 0."""
    signed = [(o, p) for o, p in pairs if p != 0]
    return float(np.mean([np.sign(o) == np.sign(p) for o, p in signed])) if signed else None


def spearman(ours: list[float], paper: list[float]) -> float | None:
    """Spearman's rho, or None where it is undefined (too few cells, or one side constant)."""
    from scipy.stats import spearmanr

    if len(ours) < MIN_CELLS or len(set(ours)) < 2 or len(set(paper)) < 2:
        return None
    rho = spearmanr(ours, paper).statistic
    return None if rho is None or math.isnan(rho) else float(rho)


def compare_shape(ours: Table, paper: PaperTable, tolerance: ShapeTolerance) -> ShapeComparison:
    pairs = []
    for row in paper.rows:
        for col in paper.columns:
            cell = ours.delta.get(row, {}).get(col)
            if cell is not None and cell.value is not None:
                pairs.append((row, col, cell.value, paper.delta[(row, col)]))
    rho = spearman([p[2] for p in pairs], [p[3] for p in pairs])
    sign = sign_agreement([(o, p) for _, _, o, p in pairs])
    ours_avg = _row_averages(ours, paper)
    extremes = {
        "best": (max(ours_avg, key=ours_avg.get) if ours_avg else None, max(paper.row_avg, key=paper.row_avg.get)),
        "worst": (min(ours_avg, key=ours_avg.get) if ours_avg else None, min(paper.row_avg, key=paper.row_avg.get)),
    }
    return ShapeComparison(paper, ours, tolerance, pairs, rho, sign, extremes)
