"""The transcribed tables (tables/paper/) are internally consistent and match the paper's text."""

from __future__ import annotations

import re

import pytest

from xdet.tables.paper import PAPER_MODELS, load_paper_table, paper_index, table_numbers

NUMBERS = table_numbers()

#: Cells read off the paper's text by hand, two per table, across rows, columns and AVGs.
SPOT_CHECKS: list[tuple[int, str, str, float]] = [
    (1, "de", "es", 17.19),
    (1, "AVG", "es", 5.50),
    (3, "ZS", "de", 32.68),
    (3, "zh", "ru", -18.41),
    (4, "en", "AVG", -10.56),
    (4, "hi", "de", -18.16),
    (5, "es", "am", 10.53),
    (5, "AVG", "de", 4.97),
    (6, "ZS", "de", 38.48),
    (6, "ar", "de", 15.67),
    (7, "zh", "de", -20.8),
    (7, "es", "ru", 8.5),
    (8, "ZS", "de", 43.58),
    (8, "AVG", "hi", 15.85),
    (9, "ar", "de", 35.0),
    (9, "zh", "AVG", 16.86),
    (10, "en", "en", -1.25),
    (10, "AVG", "ru", 7.20),
    (11, "en", "en", -12.43),
    (11, "ZS", "AVG", 19.90),
    (12, "en", "es", 14.43),
    (12, "hi", "hi", -11.53),
    (13, "hi", "hi", -21.51),
    (13, "AVG", "ru", 7.11),
    (14, "ZS", "es", 8.51),
    (14, "es", "hi", -145.96),
    (15, "en", "en", 11.33),
    (15, "AVG", "en", 9.51),
    (16, "es", "am", -123.02),
    (16, "ZS", "AVG", 35.01),
    (17, "de", "en", 49.94),
    (17, "AVG", "ar", 11.57),
    (18, "en", "ru", -50.35),
    (18, "zh", "AVG", -2.54),
    (19, "es", "es", -64.98),
    (19, "ZS", "en", 67.60),
    (20, "ZS", "ar", 418.68),
    (20, "ru", "am", -69.79),
    (21, "es", "es", -113.59),
    (21, "AVG", "ar", 546.61),
    (22, "hi", "es", -105.15),
    (22, "ZS", "AVG", 69.75),
    (23, "ZS", "ar", 2259.35),
    (23, "ru", "es", -445.47),
    (24, "ru", "hi", -388.32),
    (24, "AVG", "ru", 175.23),
    (25, "ru", "hi", -319.17),
    (25, "ZS", "en", 126.36),
]


def test_index_has_the_24_tables_once_each():
    index = paper_index()
    assert [e.number for e in index] == [1, *range(3, 26)]
    keys = {(e.model, e.measure, e.split) for e in index}
    assert len(keys) == 24
    assert {e.model for e in index} == set(PAPER_MODELS)


def test_spot_checks_cover_every_table():
    assert {n for n, *_ in SPOT_CHECKS} == set(NUMBERS)


@pytest.mark.parametrize(("number", "row", "col", "printed"), SPOT_CHECKS)
def test_spot_check(number, row, col, printed):
    assert load_paper_table(number).cell(row, col) == pytest.approx(printed, abs=1e-9)


@pytest.mark.parametrize("number", NUMBERS)
def test_row_avg_is_mean_of_cells(number, tolerances):
    t = load_paper_table(number)
    tol = tolerances["transcription_abs"]
    zs_mean = sum(t.zs.values()) / len(t.zs)
    bad = [f"ZS: printed {t.zs_avg}, mean {zs_mean:.4f}"] if abs(zs_mean - t.zs_avg) > tol else []
    for row in t.rows:
        mean = sum(t.delta[(row, c)] for c in t.columns) / len(t.columns)
        if abs(mean - t.row_avg[row]) > tol:
            bad.append(f"row {row}: printed AVG {t.row_avg[row]}, mean of cells {mean:.4f}")
    assert not bad, f"{t.title}: " + "; ".join(bad)


@pytest.mark.parametrize("number", NUMBERS)
def test_bottom_avg_is_mean_of_delta_rows(number, tolerances):
    t = load_paper_table(number)
    tol = tolerances["transcription_abs"]
    bad = []
    for col in t.columns:
        mean = sum(t.delta[(r, col)] for r in t.rows) / len(t.rows)
        if abs(mean - t.col_avg[col]) > tol:
            bad.append(f"column {col}: printed AVG {t.col_avg[col]}, mean of Δ rows {mean:.4f}")
    assert not bad, f"{t.title}: " + "; ".join(bad)


def _printed_blocks(text: str) -> dict[int, list[list[str]]]:
    """Each table's printed rows: the block that ends right before its caption ``Table N:``."""
    lines = text.splitlines()
    blocks = {}
    for i, line in enumerate(lines):
        m = re.match(r"^Table (\d+):", line)
        if not m or m.group(1) == "2":
            continue
        j = max(k for k in range(i) if lines[k].split() == ["am", "ar", "de", "en", "es", "hi", "ru", "AVG"])
        rows = [ln.split() for ln in lines[j + 1 : i] if ln.strip() and not ln.startswith("XX-FT")]
        blocks[int(m.group(1))] = rows
    return blocks


def test_every_cell_matches_the_paper_text(paper_text):
    blocks = _printed_blocks(paper_text)
    assert sorted(blocks) == list(NUMBERS)
    mismatches = []
    for number, rows in blocks.items():
        t = load_paper_table(number)
        for tokens in rows:
            label = "ZS" if tokens[0] == "ZSZS" else tokens[0]
            for col, text in zip((*t.columns, "AVG"), tokens[1:], strict=False):
                if t.cell(label, col) != float(text):
                    mismatches.append(
                        f"table {number} {label}/{col}: csv {t.cell(label, col)} vs text {text}"
                    )
    assert not mismatches, "\n".join(mismatches)


def test_index_matches_the_captions(paper_text):
    captions = dict(re.findall(r"^Table (\d+): (.*)$", paper_text, flags=re.M))
    for e in paper_index():
        caption = captions[str(e.number)]
        assert f"for {e.model} over the {e.split} evaluation set" in caption, (e, caption)
        assert caption.startswith(f"Actual {e.measure} scores"), (e, caption)
