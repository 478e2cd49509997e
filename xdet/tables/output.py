"""The tables folder: every table in every format plus ``index.csv``, written atomically, and its checks."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xdet.tables.build import Table
from xdet.tables.render import csv_text, heatmap_png, latex_text, markdown_text, pm_bars_png
from xdet_tasks.io import atomic_write_bytes, atomic_write_text

INDEX_HEADER = ("stem", "model", "measure", "metric", "split", "rows", "cells", "missing_cells", "files")


def write_tables(
    tables: Sequence[Table], out_dir: str | Path, *, ci: bool = False, png: bool = True
) -> list[Path]:
    """CSV, Markdown, LaTeX and PNG(s) per table plus ``index.csv``; every file written atomically."""
    out = Path(out_dir)
    written: list[Path] = []
    index_rows = []
    for t in tables:
        files = {
            f"{t.stem}.csv": csv_text(t).encode(),
            f"{t.stem}.md": markdown_text(t, ci=ci).encode(),
            f"{t.stem}.tex": latex_text(t, ci=ci).encode(),
        }
        if png:
            files[f"{t.stem}.png"] = heatmap_png(t)
            bars = pm_bars_png(t)
            if bars is not None:
                files[f"{t.stem}__pm-ft.png"] = bars
        for name, data in files.items():
            written.append(atomic_write_bytes(out / name, data))
        n_cells = (len(t.rows) + 1) * (len(t.columns) + 1) + len(t.columns)
        index_rows.append(
            [
                t.stem,
                t.model,
                t.measure,
                t.metric,
                t.split,
                len(t.rows),
                n_cells,
                len(t.missing_cells()),
                ";".join(files),
            ]
        )
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(INDEX_HEADER)
    writer.writerows(index_rows)
    written.append(atomic_write_text(out / "index.csv", buf.getvalue()))
    return written


def read_tables_index(out_dir: str | Path) -> list[dict[str, str]] | None:
    """The rows of a tables folder's ``index.csv`` (None when the folder has none)."""
    index = Path(out_dir) / "index.csv"
    if not index.is_file():
        return None
    with index.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def check_tables_dir(out_dir: str | Path) -> list[str]:
    """Problems with a folder :func:`write_tables` produced (empty list: complete and well-formed)."""
    out = Path(out_dir)
    index = out / "index.csv"
    entries = read_tables_index(out)
    if entries is None:
        return [f"{index} missing"]
    problems: list[str] = []
    if not entries:
        problems.append(f"{index}: no tables")
    for e in entries:
        for name in e["files"].split(";"):
            path = out / name
            if not path.is_file() or path.stat().st_size == 0:
                problems.append(f"{path}: missing or empty")
            elif name.endswith(".png"):
                problems += _check_png(path)
            elif name.endswith(".csv"):
                problems += _check_csv(path)
    return problems


def _check_png(path: Path) -> list[str]:
    from matplotlib.image import imread

    try:
        img = imread(path)
    except Exception as err:  # noqa: BLE001 - any decoder failure is a broken file
        return [f"{path}: not a readable PNG ({err})"]
    if img.ndim != 3 or img.shape[0] < 50 or img.shape[1] < 50:
        return [f"{path}: unexpected image shape {img.shape}"]
    if float(np.ptp(img[..., :3])) == 0.0:
        return [f"{path}: blank image"]
    return []


def _check_csv(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        rec = list(csv.reader(fh))
    if not rec or rec[0][0] != "row" or "AVG" not in rec[0]:
        return [f"{path}: header {rec[0] if rec else None} is not the paper layout"]
    if [r[0] for r in rec[1:]][:1] != ["ZS"] or rec[-1][0] != "AVG":
        return [f"{path}: rows must start with ZS and end with AVG"]
    for line, r in enumerate(rec[1:], start=2):
        if len(r) != len(rec[0]):
            return [f"{path}:{line}: {len(r)} cells, header has {len(rec[0])}"]
        for name, v in zip(rec[0][1:], r[1:], strict=True):
            if v and not name.endswith("_scorer") and not math.isfinite(float(v)):
                return [f"{path}:{line}: non-finite value {v!r}"]
    return []


def read_table_csv(path: str | Path) -> dict[tuple[str, str], float | None]:
    """A CSV :func:`csv_text` wrote, as ``{(row, col): value}`` (``None`` = missing)."""
    with Path(path).open(newline="", encoding="utf-8") as fh:
        rec = list(csv.reader(fh))
    header = rec[0]
    cols = header[1 : header.index("AVG") + 1]
    return {(r[0], c): (float(r[i + 1]) if r[i + 1] else None) for r in rec[1:] for i, c in enumerate(cols)}


def read_table_scorers(path: str | Path) -> dict[str, str]:
    """The scorer of each column of a toxicity CSV (its ``<col>_scorer`` columns); ``{}`` for other tables."""
    with Path(path).open(newline="", encoding="utf-8") as fh:
        rec = list(csv.reader(fh))
    header, first = rec[0], rec[1] if len(rec) > 1 else []
    return {name[: -len("_scorer")]: first[i] for i, name in enumerate(header)
            if name.endswith("_scorer") and i < len(first) and first[i]}
