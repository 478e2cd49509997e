"""``xdet tables --check``: are the committed tables what the committed results produce?

A lab commits its results and the tables made from them; its CI regenerates the tables into a
temporary folder and compares, file by file, with the committed folder. A CSV is compared cell by
cell, so the report names the table, the row, the column and both values; Markdown and LaTeX render
the same numbers and are compared whole; ``index.csv`` row by row, without its list of figure files.
Figures (PNG) are not compared: they carry the numbers only as colours, and their bytes depend on the
plotting library's version.
"""

from __future__ import annotations

import csv
from pathlib import Path

TEXT_SUFFIXES = (".csv", ".md", ".tex")


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def csv_differences(fresh: Path, committed: Path, limit: int = 5) -> list[str]:
    """``row R, column C: committed X, regenerated Y`` per differing cell of a table CSV (at most ``limit``)."""
    new, old = _rows(fresh), _rows(committed)
    if not new or not old or new[0] != old[0]:
        return [f"columns {old[0] if old else []} -> {new[0] if new else []}"]
    new_rows, old_rows = {r[0]: r for r in new[1:]}, {r[0]: r for r in old[1:]}
    out = [f"row {r} {'removed' if r in old_rows else 'added'}" for r in sorted(set(new_rows) ^ set(old_rows))]
    for row in (r for r in new_rows if r in old_rows):
        for col, a, b in zip(new[0][1:], old_rows[row][1:], new_rows[row][1:], strict=False):
            if a != b:
                out.append(f"row {row}, column {col}: committed {a or 'missing'}, regenerated {b or 'missing'}")
    return out[:limit] + ([f"... {len(out) - limit} more"] if len(out) > limit else [])


def _index(path: Path) -> list[list[str]]:
    rows = _rows(path)
    drop = rows[0].index("files") if rows and "files" in rows[0] else None
    return [[v for i, v in enumerate(r) if i != drop] for r in rows]


def compare_tables(fresh: Path, committed: Path) -> list[str]:
    """What differs between regenerated tables (``fresh``) and the committed folder; empty: they match."""
    if not committed.is_dir():
        return [f"{committed}: no committed tables folder"]
    problems: list[str] = []
    names = {p.name for p in fresh.iterdir() if p.suffix in TEXT_SUFFIXES}
    kept = {p.name for p in committed.iterdir() if p.suffix in TEXT_SUFFIXES}
    for name in sorted(kept - names):
        problems.append(f"{committed / name}: stale (the results no longer produce this table)")
    for name in sorted(names):
        new, old = fresh / name, committed / name
        if name not in kept:
            problems.append(f"{old}: missing (the results produce this table)")
        elif name == "index.csv":
            if _index(new) != _index(old):
                problems.append(f"{old}: the list of tables differs")
        elif new.read_bytes() != old.read_bytes():
            cells = csv_differences(new, old) if name.endswith(".csv") else []
            problems.append(f"{old}: differs" + (f" ({'; '.join(cells)})" if cells else ""))
    return problems
