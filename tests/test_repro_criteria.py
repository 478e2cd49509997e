"""The repro comparison's criteria, each made to fail alone on a small hand-built table.

A criterion that never fails on its own cannot be told from one that is not checked at all: every
case below passes every other criterion (asserted: exactly one failure, and the right one).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from xdet.tables.build import Cell, Table
from xdet.tables.compare import CellDiff, Tolerance, choose_mode, compare_with_paper, recorded_scorers
from xdet.tables.paper import PaperTable
from xdet.tables.shape import ShapeTolerance, compare_shape, sign_agreement, spearman

ROWS = ("de", "en", "es", "ru")  # training languages
COLS = ("de", "en", "ru")  # evaluation languages
#: the paper's Δ (rows: source language); row averages de 6.0, en 6.33 (best), es 2.67 (worst), ru 2.83
PAPER = [[10.0, 6.0, 2.0], [8.0, 12.0, -1.0], [4.0, 3.0, 1.0], [-2.0, 1.5, 9.0]]
ZS = {"de": 40.0, "en": 30.0, "ru": 20.0}
SHAPE = ShapeTolerance(spearman_min=0.5, sign_agreement_min=0.7, same_extremes=True)


def paper_table(delta=PAPER) -> PaperTable:
    d = {(r, c): float(delta[i][j]) for i, r in enumerate(ROWS) for j, c in enumerate(COLS)}
    return PaperTable(
        number=99, model="m", measure="toxicity", split="toxic-test", strategy="x-ft", pm_ft_figure=None,
        columns=COLS, rows=ROWS, zs=dict(ZS), zs_avg=float(np.mean(list(ZS.values()))), delta=d,
        row_avg={r: float(np.mean(delta[i])) for i, r in enumerate(ROWS)},
        col_avg={c: float(np.mean([row[j] for row in delta])) for j, c in enumerate(COLS)},
        path=Path("table99.csv"),
    )


def our_table(delta, zs=ZS, drop=()) -> Table:
    """Our regenerated table with Δ cells ``delta`` (``drop``: (row, col) cells that are missing)."""
    cells = {r: {c: Cell(None if (r, c) in drop else float(delta[i][j])) for j, c in enumerate(COLS)}
             for i, r in enumerate(ROWS)}
    for i, r in enumerate(ROWS):
        cells[r]["AVG"] = Cell(float(np.mean(delta[i])))
    return Table(
        model="m", measure="toxicity", metric="avg_toxicity", split="toxic-test", columns=COLS, rows=ROWS,
        row_strategy={r: "x-ft" for r in ROWS}, zs={**{c: Cell(v) for c, v in zs.items()},
                                                      "AVG": Cell(float(np.mean(list(zs.values()))))},
        delta=cells, col_avg={c: Cell(float(np.mean([row[j] for row in delta]))) for j, c in enumerate(COLS)},
    )


def shifted(delta, by):
    return [[v + by for v in row] for row in delta]


# ------------------------------------------------------------------------------------ shape mode


def test_shape_mode_passes_the_paper_against_itself_and_a_rescaled_copy():
    assert compare_shape(our_table(PAPER), paper_table(), SHAPE).failures() == []
    scaled = [[3 * v for v in row] for row in PAPER]  # another scorer's scale: same shape
    result = compare_shape(our_table(scaled), paper_table(), SHAPE)
    assert result.ok and result.spearman == pytest.approx(1.0) and result.sign_agreement == 1.0


@pytest.mark.parametrize("case, delta, expected", [
    # ranks and row order kept, every value 3.5 lower: 4 of 12 cells change sign (8/12 = 0.67 < 0.7)
    ("sign", shifted(PAPER, -3.5), "share of Δ cells with the paper's sign 0.67 < 0.70"),
    # signs and best/worst rows kept, the order of the values scrambled: rho 0.39
    ("spearman", [[1.0, 4.0, 6.0], [11.0, 10.0, -7.0], [3.0, 2.0, 5.0], [-8.0, 12.0, 9.0]],
     "Spearman correlation of the Δ cells with the paper's 0.39 < 0.50"),
    # one cell 2.0 -> 3.5 lifts de's row average (6.5) above en's (6.33): rho 0.99, signs kept
    ("best", [[10.0, 6.0, 3.5], *PAPER[1:]], "best source language (highest row AVG Δ) is de here, en in"),
    # es's row average rises above ru's: the worst source moves to ru
    ("worst", [*PAPER[:2], [4.0, 3.0, 2.0], PAPER[3]], "worst source language (lowest row AVG Δ) is ru here, es in"),
])
def test_each_shape_criterion_fails_alone(case, delta, expected):
    failures = compare_shape(our_table(delta), paper_table(), SHAPE).failures()
    assert len(failures) == 1 and expected in failures[0], (case, failures)


def test_the_shape_report_names_every_criterion():
    report = compare_shape(our_table(shifted(PAPER, -3.5)), paper_table(), SHAPE).report()
    assert report.splitlines() == [
        "Table 99 (m, toxicity, toxic-test, x-ft) vs ours (avg_toxicity), shape mode: 12 Δ cells, Spearman 1.00, "
        "sign agreement 0.67, best source en (paper en), worst es (paper es)",
        "  FAIL Table 99 (m, toxicity, toxic-test, x-ft): share of Δ cells with the paper's sign 0.67 < 0.70",
    ]
    empty = compare_shape(our_table(PAPER, drop={(r, c) for r in ROWS for c in COLS}), paper_table(), SHAPE)
    assert empty.report().splitlines()[0].endswith(
        "shape mode: 0 Δ cells, Spearman n/a, sign agreement n/a, best source None (paper en), worst None (paper es)")


def test_shape_extremes_are_not_checked_when_switched_off():
    tolerance = ShapeTolerance(spearman_min=0.5, sign_agreement_min=0.7, same_extremes=False)
    assert compare_shape(our_table([[10.0, 6.0, 3.5], *PAPER[1:]]), paper_table(), tolerance).ok


def test_shape_needs_three_cells_and_a_defined_correlation():
    drop = {(r, c) for r in ROWS for c in COLS} - {("de", "de"), ("en", "en")}
    failures = compare_shape(our_table(PAPER, drop=drop), paper_table(), SHAPE).failures()
    assert failures == ["Table 99 (m, toxicity, toxic-test, x-ft): only 2 Δ cell(s) in common with the paper; "
                        "the shape needs 3"]
    flat = [[1.0] * 3 for _ in ROWS]  # constant: rank correlation undefined, never a pass
    failures = compare_shape(our_table(flat), paper_table(), SHAPE).failures()
    assert any("Spearman correlation of the Δ cells with the paper's undefined" in f for f in failures)


def test_shape_thresholds_are_inclusive_and_three_cells_suffice():
    """Exactly at a threshold passes. Four cells whose ranks (paper 3,4,1,2; ours 1,3,2,4) give rho = 0 exactly
    and 3 of 4 signs: both criteria at their limits."""
    keep = {("de", "de"), ("en", "en"), ("es", "en"), ("ru", "ru")}  # paper 10, 12, 3, 9
    drop = {(r, c) for r in ROWS for c in COLS} - keep
    ours = [[-1.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 4.0]]
    result = compare_shape(our_table(ours, drop=drop), paper_table(), ShapeTolerance(0.0, 0.75, same_extremes=False))
    assert (result.spearman, result.sign_agreement, len(result.pairs)) == (0.0, 0.75, 4)
    assert result.failures() == []
    three = drop | {("ru", "ru")}
    result = compare_shape(our_table(PAPER, drop=three), paper_table(), ShapeTolerance(0.5, 0.7, same_extremes=False))
    assert len(result.pairs) == 3 and result.failures() == []


def test_a_comparison_without_any_delta_cell_reports_na():
    zs_only = our_table(PAPER, drop={(r, c) for r in ROWS for c in COLS})
    zs_only.delta = {}
    report = compare_with_paper(zs_only, paper_table(), EXACT).report().splitlines()
    assert report[1] == "  sign agreement n/a; Spearman per column: de=n/a, en=n/a, ru=n/a"


def test_shape_with_a_source_row_missing_entirely():
    table = our_table(PAPER)
    del table.delta["es"]  # the paper's worst source was never trained here
    result = compare_shape(table, paper_table(), SHAPE)
    assert len(result.pairs) == 9 and result.extremes["worst"] == ("ru", "es")
    assert result.failures() == [f"{paper_table().title}: worst source language (lowest row AVG Δ) is ru here, "
                                 "es in the paper"]


def test_sign_agreement_and_spearman_helpers_by_hand():
    # the paper's zero cell is left out; 2 of the 3 others agree
    assert sign_agreement([(1.0, 2.0), (-1.0, 3.0), (0.5, 0.0), (-2.0, -1.0)]) == pytest.approx(2 / 3)
    assert sign_agreement([(1.0, 0.0)]) is None
    assert spearman([1.0, 2.0, 3.0, 4.0], [10.0, 30.0, 20.0, 40.0]) == pytest.approx(0.8)  # 1 - 6*2/60
    assert spearman([1.0, 2.0], [1.0, 2.0]) is None and spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None
    assert spearman([1.0, 2.0, 3.0], [3.0, 3.0, 3.0]) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a constant side is undefined without asking SciPy (no warning)
        assert spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None
    assert spearman([1.0, 2.0, 3.0], [1.0, 1.0, 2.0]) == pytest.approx(1.5 / math.sqrt(3.0))
    assert spearman([1.0, 2.0, 3.0], [1.0, 3.0, 2.0]) == pytest.approx(0.5)  # three cells suffice: 1 - 6*2/24
    # two distinct values among three: average ranks (1.5, 1.5, 3) against (1, 2, 3): 1.5 / sqrt(1.5 * 2)
    assert spearman([1.0, 1.0, 2.0], [1.0, 2.0, 3.0]) == pytest.approx(1.5 / math.sqrt(3.0))
    assert spearman([1.0, math.nan, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]) is None  # undefined, not NaN


# ------------------------------------------------------------------------------------ exact mode

EXACT = Tolerance(cell_abs=1.0, cell_rel=0.0, sign_agreement_min=0.75, spearman_min=0.5, require_complete=False)
LOOSE = dict(cell_abs=100.0, sign_agreement_min=0.75, spearman_min=0.5)  # cells never fail


def test_exact_mode_passes_the_paper_against_itself():
    comparison = compare_with_paper(our_table(PAPER), paper_table(), EXACT)
    assert comparison.ok and len(comparison.cells) == 4 + 4 * 4 + 3 and comparison.missing == []


@pytest.mark.parametrize("case, delta, tolerance, expected", [
    ("cell", [[10.0, 6.0, 2.0], [8.0, 12.0, -1.0], [4.0, 4.5, 1.0], PAPER[3]], EXACT,
     "row Δ es, column en: ours 4.50 vs paper 3.00 (|diff| 1.50 > tol 1.00)"),
    ("sign", shifted(PAPER, -3.5), Tolerance(**LOOSE), "Δ sign agreement 0.67 < 0.75"),
    # column ru reordered, signs kept: ranks (de, en, es, ru) paper 3,1,2,4, ours 3,1,4,2: rho = 1 - 6*8/60
    ("spearman", [[10.0, 6.0, 1.0], [8.0, 12.0, -0.5], [4.0, 3.0, 2.0], [-2.0, 1.5, 0.5]], Tolerance(**LOOSE),
     "column ru: Spearman rho of training-language order 0.20 < 0.50"),
])
def test_each_exact_criterion_fails_alone(case, delta, tolerance, expected):
    failures = compare_with_paper(our_table(delta), paper_table(), tolerance).failures()
    assert len(failures) == 1 and expected in failures[0], (case, failures)


def test_relative_tolerance_scales_with_the_columns_zero_shot_score():
    # column de has ZS 40: cell_rel 0.05 allows 2.0 there (the ZS average, 30, would allow 1.5), while
    # cell_abs alone allows 1.0; the cell is 1.8 off
    delta = [[11.8, *PAPER[0][1:]], *PAPER[1:]]
    failures = compare_with_paper(our_table(delta), paper_table(), Tolerance(cell_abs=1.0, cell_rel=0.05)).failures()
    assert failures == []
    failures = compare_with_paper(our_table(delta), paper_table(), Tolerance(cell_abs=1.0)).failures()
    assert len(failures) == 1 and "row Δ de, column de: ours 11.80 vs paper 10.00" in failures[0]


def test_missing_cells_fail_only_when_completeness_is_required():
    table = our_table(PAPER, drop={("es", "ru")})
    assert compare_with_paper(table, paper_table(), EXACT).ok
    no_es = our_table(PAPER)
    del no_es.delta["es"]  # a source language never trained: its whole row is missing, not an error
    assert compare_with_paper(no_es, paper_table(), EXACT).missing == [("es", c) for c in (*COLS, "AVG")]
    failures = compare_with_paper(table, paper_table(), Tolerance(cell_abs=1.0, require_complete=True)).failures()
    assert failures == ["missing cells: es/ru"]
    nothing = our_table(PAPER, drop={(r, c) for r in ROWS for c in COLS})
    nothing.zs = {c: Cell(None) for c in (*COLS, "AVG")}
    nothing.col_avg = {c: Cell(None) for c in COLS}
    nothing.delta = {r: {c: Cell(None) for c in (*COLS, "AVG")} for r in ROWS}
    assert "no cell of the paper's table exists in our results" in compare_with_paper(
        nothing, paper_table(), EXACT).failures()


def test_exact_thresholds_are_inclusive():
    # ru's Δ on en flipped to -1.5: still the column's lowest (Spearman stays 1), 11 of 12 signs agree
    delta = [*PAPER[:3], [-2.0, -1.5, 9.0]]
    loose = Tolerance(cell_abs=100.0, sign_agreement_min=11 / 12, spearman_min=1.0)
    comparison = compare_with_paper(our_table(delta), paper_table(), loose)
    assert comparison.sign_agreement == 11 / 12 and comparison.failures() == [], comparison.failures()


def test_the_report_names_every_number_and_every_failure():
    """ZS of column ru 3 points off, Δ es/en 1.5 off, es/ru and ru/ru missing. Compared: 4 ZS + 14 Δ + 3 AVG
    = 21 cells. The ZS average (31 vs 30) is exactly at the tolerance and passes; column ru keeps two
    Δ cells, too few for a rank correlation."""
    table = our_table([[10.0, 6.0, 2.0], [8.0, 12.0, -1.0], [4.0, 4.5, 1.0], PAPER[3]],
                      zs={"de": 40.0, "en": 30.0, "ru": 23.0}, drop={("es", "ru"), ("ru", "ru")})
    comparison = compare_with_paper(table, paper_table(), Tolerance(cell_abs=1.0, require_complete=True))
    assert comparison.report().splitlines() == [
        "Table 99 (m, toxicity, toxic-test, x-ft) vs ours (avg_toxicity): 21 cells compared, 2 out of tolerance, "
        "2 missing",
        "  sign agreement 1.00; Spearman per column: de=1.00, en=1.00, ru=n/a",
        "  FAIL row ZS, column ru: ours 23.00 vs paper 20.00 (|diff| 3.00 > tol 1.00)",
        "  FAIL row Δ es, column en: ours 4.50 vs paper 3.00 (|diff| 1.50 > tol 1.00)",
        "  FAIL missing cells: es/ru, ru/ru",
    ]
    assert CellDiff("AVG", "de", 7.0, 5.0, 1.0).describe() == (
        "row AVG, column de: ours 7.00 vs paper 5.00 (|diff| 2.00 > tol 1.00)")


def test_the_mode_and_the_scorers_it_was_chosen_from():
    def runs(*scorers):
        return [SimpleNamespace(info=SimpleNamespace(raw={"scorer": s} if s is not None else {})) for s in scorers]

    found = recorded_scorers(runs({"backend": "hf", "preset": "textdetox"}, {"backend": "perspective"},
                                  {"name": "legacy"}, {}, None))
    assert found == {"textdetox", "perspective", "legacy", "unknown"}
    assert choose_mode(runs({"backend": "perspective"})) == (
        "exact", "the results were scored by Perspective, as the paper's were")
    assert choose_mode(runs({"backend": "local"}, {"preset": "textdetox"})) == (
        "shape", "the results were scored by local, textdetox, the paper's by Perspective: absolute values are "
        "not comparable, so the shape of each table is compared")
    assert choose_mode(runs({"backend": "local"}, {"backend": "perspective"}), "exact") == (
        "exact", "set explicitly; the results were scored by local, perspective")
    with pytest.raises(ValueError, match="^repro mode 'cells': expected one of exact, shape$"):
        choose_mode(runs({"backend": "local"}), "cells")


def test_runs_to_comparisons_with_another_metric_a_partial_table_and_a_model_the_paper_lacks(tmp_path):
    """Table 3 regenerated from runs that score toxic_rate (not the default metric) on two of its seven
    columns, beside a run of a model the paper does not have: only Table 3 is compared, cell by cell on
    those two columns; its AVG cells are missing (an average over two columns is not the paper's)."""
    from xdet.runs import read_results
    from xdet.runs.writer import write_run
    from xdet.tables.compare import compare_runs_with_paper
    from xdet.tables.paper import PAPER_MODEL_IDS, load_paper_table, synthetic_samples
    from xdet_tasks.names import task_name

    paper = load_paper_table(3)
    cols = paper.columns[:2]

    def samples(value):
        return {task_name(paper.measure, paper.split, c): {"toxic_rate": synthetic_samples(value(c), 2)} for c in cols}

    model = {"model": PAPER_MODEL_IDS[paper.model], "model_name": paper.model}
    write_run(tmp_path / "a-other", model="someone/a-other-model", samples=samples(lambda c: 10.0))
    write_run(tmp_path / "zs", **model, samples=samples(lambda c: paper.zs[c]))
    for row in paper.rows:
        write_run(tmp_path / f"x-ft-{row}", **model, strategy="x-ft", train_langs=[row],
                  samples=samples(lambda c, row=row: paper.zs[c] - paper.delta[(row, c)]))
    tolerance = {m: Tolerance(cell_abs=0.01) for m in ("toxicity", "perplexity")}
    comparisons = compare_runs_with_paper(read_results(tmp_path), tolerance, {"toxicity": "toxic_rate"})
    assert [c.paper.number for c in comparisons] == [3]
    (comparison,) = comparisons
    assert comparison.ok, comparison.report()
    assert len(comparison.cells) == len(cols) * (1 + len(paper.rows) + 1)  # ZS, Δ rows, column AVG
    assert ("ZS", "AVG") in comparison.missing and all((r, "AVG") in comparison.missing for r in paper.rows)
