"""The table code gives the paper's tables back from results built out of the paper's own numbers.

Each printed table becomes a zero-shot run (the ZS row) and seven X-FT runs (FT = ZS − Δ per cell),
written in our run-folder format with synthetic per-sample scores whose means are those values; the
regenerated table must equal the printed one within rounding, AVGs included.
"""

from __future__ import annotations

import pytest

from xdet.runs import read_results
from xdet.tables.build import build_tables
from xdet.tables.paper import find_paper_table, load_paper_table, table_numbers
from xdet_tasks.names import TABLE_MEASURES

NUMBERS = table_numbers()


@pytest.fixture(scope="session")
def regenerated(paper_results, tolerances):
    metrics = {family: tolerances[family][0] for family in TABLE_MEASURES}
    tables = build_tables(read_results(paper_results), metrics=metrics, layout="paper", n_boot=0)
    out = {}
    for t in tables:
        paper = find_paper_table(t.model, t.measure, t.split)
        assert paper is not None, f"regenerated table {t.title} has no paper counterpart"
        out[paper.number] = t
    return out


def test_one_table_per_paper_table(regenerated):
    assert sorted(regenerated) == list(NUMBERS)


@pytest.mark.parametrize("number", NUMBERS)
def test_round_trip(number, regenerated, tolerances):
    paper = load_paper_table(number)
    ours = regenerated[number]
    assert ours.columns == paper.columns
    assert ours.rows_in("cross-lingual") == paper.rows
    tol = tolerances["round_trip_abs"]
    cells = [("ZS", c) for c in (*paper.columns, "AVG")]
    cells += [(r, c) for r in paper.rows for c in (*paper.columns, "AVG")]
    cells += [("AVG", c) for c in paper.columns]
    bad = []
    for row, col in cells:
        value = ours.value(row, col)
        if value is None or abs(value - paper.cell(row, col)) > tol:
            bad.append(f"{row}/{col}: ours {value} vs paper {paper.cell(row, col)}")
    assert not bad, f"{paper.title}: " + "; ".join(bad)
