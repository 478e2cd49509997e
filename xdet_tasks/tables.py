"""The paper's table layout, regenerated from our run folders, and its comparison with the paper.

For each model × split × metric family one :class:`Table`: the zero-shot row of actual scores, one Δ
row per training configuration (X-FT source languages, then P-FT percentages, M-FT, DPO), the row
AVG column and a bottom AVG row over the X-FT rows (as printed). Δ = ZS − FT, so a positive toxicity
Δ is a reduction and a positive perplexity Δ a lower perplexity. A cell without data is missing
(empty / "—"), never 0, and an AVG is only given when every cell it averages exists, so it always
means what the paper's AVG means.

Every cell carries a percentile bootstrap 95 % interval from the per-sample values. Resamples of a
column's documents are shared by all rows of that column (paired: ZS and FT see the same documents),
and row/column averages average the replicates, so their intervals are consistent with the cells.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xdet_tasks.data import LANGUAGES, PAPER_EVAL_LANGUAGES, PAPER_TRAIN_LANGUAGES
from xdet_tasks.io import atomic_write_bytes, atomic_write_text
from xdet_tasks.paper import PaperTable
from xdet_tasks.results import (
    FAMILY_FILTER,
    ResultsError,
    Run,
    RunInfo,
    aggregate_many,
    parse_task,
    task_name,
)

log = logging.getLogger(__name__)

FAMILIES: tuple[str, ...] = ("toxicity", "perplexity")
DEFAULT_METRICS: dict[str, str] = {"toxicity": "avg_toxicity", "perplexity": "mean_sentence_word_perplexity"}
KNOWN_METRICS: dict[str, tuple[str, ...]] = {
    "toxicity": ("avg_toxicity", "toxic_rate", "exp_max_toxicity"),
    "perplexity": (
        "mean_sentence_word_perplexity",
        "mean_sentence_byte_perplexity",
        "word_perplexity",
        "byte_perplexity",
        "bits_per_byte",
    ),
}
SPLITS: tuple[str, ...] = ("toxic-train", "toxic-test", "neutral-test")
MISSING_MD = "—"
CI_LEVEL = 0.95


def row_label(info: RunInfo) -> str:
    """The Δ row a run fills: ``de`` (X-FT), ``p-ft 10%``, ``m-ft``, ``dpo``; ``ZS`` for zero-shot."""
    langs = "+".join(info.train_langs)
    if info.strategy == "zs":
        return "ZS"
    if info.strategy == "x-ft":
        return langs
    if info.strategy == "p-ft":
        return f"p-ft {info.pct}%" + (f" {langs}" if len(info.train_langs) == 1 else "")
    if info.strategy == "m-ft":
        return "m-ft" + (f" {langs}" if len(info.train_langs) == 1 else "")
    return info.strategy + (f" {langs}" if len(info.train_langs) == 1 else "")


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
    family: str
    metric: str
    split: str
    columns: tuple[str, ...]
    rows: tuple[str, ...]
    row_strategy: dict[str, str]
    zs: dict[str, Cell]
    delta: dict[str, dict[str, Cell]]
    col_avg: dict[str, Cell]
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", self.model).strip("_") or "model"
        return f"{slug}__{self.family}__{self.split}"

    @property
    def title(self) -> str:
        return f"{self.model} · {self.family} ({self.metric}) · {self.split}"

    @property
    def xft_rows(self) -> tuple[str, ...]:
        return tuple(r for r in self.rows if self.row_strategy[r] == "x-ft")

    @property
    def pm_rows(self) -> tuple[str, ...]:
        return tuple(r for r in self.rows if self.row_strategy[r] in ("p-ft", "m-ft"))

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
        return out + [("AVG", c) for c in self.columns if self.col_avg[c].missing]


# ------------------------------------------------------------------------------------------ build


def parse_metric_options(options: Iterable[str] | None) -> dict[str, str]:
    """``["toxicity=toxic_rate", "word_perplexity"]`` -> metric per family (defaults elsewhere)."""
    metrics = dict(DEFAULT_METRICS)
    for opt in options or ():
        family, _, metric = opt.partition("=") if "=" in opt else ("", "", opt)
        if not family:
            family = next((f for f, known in KNOWN_METRICS.items() if metric in known), "")
            if not family:
                raise ResultsError(
                    f"--metric {opt!r}: unknown metric; write FAMILY=METRIC (families: {', '.join(FAMILIES)})"
                )
        if family not in FAMILIES:
            raise ResultsError(f"--metric {opt!r}: unknown family {family!r}; expected one of {FAMILIES}")
        if not metric:
            raise ResultsError(f"--metric {opt!r}: no metric name after '='")
        metrics[family] = metric
    return metrics


def resolve_columns(spec: str | Sequence[str] | None, found: Iterable[str]) -> tuple[str, ...]:
    """``paper`` (default: am..ru as printed), ``all`` (every evaluated language) or an explicit list."""
    if spec is None or spec == "paper":
        return PAPER_EVAL_LANGUAGES
    if spec == "all":
        found = set(found)
        return tuple(lang for lang in LANGUAGES if lang in found) + tuple(sorted(found - set(LANGUAGES)))
    langs = tuple(x.strip() for x in (spec.split(",") if isinstance(spec, str) else spec) if x.strip())
    if not langs:
        raise ResultsError(f"empty language list {spec!r}")
    return langs


def _row_order(labels: Iterable[tuple[str, str, int | None]]) -> list[str]:
    """X-FT rows (the paper's seven, then others), P-FT by percentage, M-FT, DPO, others."""
    rank = {"x-ft": 0, "p-ft": 1, "m-ft": 2, "dpo": 3}
    lang_pos = {lang: i for i, lang in enumerate((*PAPER_TRAIN_LANGUAGES, *LANGUAGES))}
    return [
        label
        for label, _, _ in sorted(
            labels, key=lambda x: (rank.get(x[1], 9), x[2] or 0, lang_pos.get(x[0], 99), x[0])
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
    columns: str | Sequence[str] | None = "paper",
    n_boot: int = 1000,
    seed: int = 0,
) -> list[Table]:
    """Every model × family × split that some run has tasks for, in the paper's layout.

    ``n_boot=0`` skips the bootstrap (no intervals).
    """
    metrics = {**DEFAULT_METRICS, **(metrics or {})}
    tables: list[Table] = []
    for model, by_row in group_runs(runs).items():
        for family in FAMILIES:
            for split in SPLITS:
                found = {
                    ref.lang
                    for run in by_row.values()
                    for t in run.aggregates
                    if (ref := parse_task(t)) and ref.family == family and ref.split == split
                }
                if not found:
                    continue
                cols = resolve_columns(columns, found)
                table = _build_one(model, family, metrics[family], split, cols, by_row, n_boot, seed)
                tables.append(table)
    return tables


def _build_one(
    model: str,
    family: str,
    metric: str,
    split: str,
    cols: tuple[str, ...],
    by_row: Mapping[str, Run],
    n_boot: int,
    seed: int,
) -> Table:
    zs_run = by_row.get("ZS")
    if zs_run is None:
        log.warning("model %s: no zero-shot run, so no Δ can be computed", model)
    ft = {label: run for label, run in by_row.items() if label != "ZS"}
    x_langs = [lang for lang in PAPER_TRAIN_LANGUAGES]
    x_langs += [label for label, run in ft.items() if run.info.strategy == "x-ft" and label not in x_langs]
    specs = [(lang, "x-ft", None) for lang in x_langs]
    specs += [
        (label, run.info.strategy, run.info.pct) for label, run in ft.items() if run.info.strategy != "x-ft"
    ]
    rows = tuple(_row_order(specs))
    row_strategy = {label: strat for label, strat, _ in specs}
    filt = FAMILY_FILTER[family]

    zs_val: dict[str, float | None] = {}
    zs_rep: dict[str, np.ndarray | None] = {}
    d_val: dict[str, dict[str, float | None]] = {r: {} for r in rows}
    d_rep: dict[str, dict[str, np.ndarray | None]] = {r: {} for r in rows}
    for col in cols:
        task = task_name(family, split, col)
        zs_val[col] = zs_run.value(task, metric, filt) if zs_run else None
        reps = _column_replicates(task, metric, filt, zs_run, ft, n_boot, seed) if n_boot > 0 else {}
        zs_rep[col] = reps.get("ZS")
        for r in rows:
            run = ft.get(r)
            ft_val = run.value(task, metric, filt) if run else None
            ok = zs_val[col] is not None and ft_val is not None
            d_val[r][col] = zs_val[col] - ft_val if ok else None
            rz, rf = reps.get("ZS"), reps.get(r)
            d_rep[r][col] = rz - rf if ok and rz is not None and rf is not None else None

    def cell(value: float | None, rep: np.ndarray | None) -> Cell:
        if value is None:
            return Cell(None)
        lo, hi = _interval(rep)
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
    xft = [r for r in rows if row_strategy[r] == "x-ft"]
    col_avg = {c: mean_cell([d_val[r][c] for r in xft], [d_rep[r][c] for r in xft]) for c in cols}
    sources = {label: str(run.path) for label, run in by_row.items()}
    return Table(model, family, metric, split, cols, rows, row_strategy, zs, delta, col_avg, sources)


def _interval(rep: np.ndarray | None) -> tuple[float | None, float | None]:
    if rep is None:
        return None, None
    rep = rep[np.isfinite(rep)]
    if rep.size == 0:
        return None, None
    alpha = (1 - CI_LEVEL) / 2 * 100
    lo, hi = np.percentile(rep, [alpha, 100 - alpha])
    return float(lo), float(hi)


def _column_replicates(
    task: str,
    metric: str,
    filt: str,
    zs_run: Run | None,
    ft: Mapping[str, Run],
    n_boot: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Bootstrap replicates of ``metric`` on ``task`` for every run that has its samples.

    One resample of document positions per replicate, shared by all runs whose documents are the
    zero-shot run's (paired Δ); a run with other documents is resampled on its own.
    """
    rng = np.random.default_rng([seed, zlib.crc32(task.encode())])
    runs = {"ZS": zs_run, **ft} if zs_run else dict(ft)
    samples = {
        label: run.samples(task, metric, filt) for label, run in runs.items() if task in run.aggregates
    }
    samples = {k: v for k, v in samples.items() if v is not None and len(v.doc_ids)}
    if not samples:
        return {}
    ref = samples.get("ZS") or next(iter(samples.values()))
    ref_ids = ref.doc_ids
    idx = rng.integers(0, len(ref_ids), size=(n_boot, len(ref_ids)))
    out: dict[str, np.ndarray] = {}
    for label, s in samples.items():
        if len(s.doc_ids) == len(ref_ids) and set(s.doc_ids.tolist()) == set(ref_ids.tolist()):
            order = np.argsort(s.doc_ids)[np.argsort(np.argsort(ref_ids))]
            values = s.values[order]
            own = idx
        else:
            values = s.values
            own = rng.integers(0, len(values), size=(n_boot, len(values)))
        out[label] = aggregate_many(metric, values[own])
    return out


# ---------------------------------------------------------------------------------------- outputs


def _fmt(v: float | None, digits: int = 2) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def csv_text(table: Table) -> str:
    """The paper's columns first (``row,am,...,ru,AVG``), then ``<col>_lo``/``<col>_hi`` CI columns."""
    cols = (*table.columns, "AVG")
    header = ["row", *cols] + [f"{c}_{b}" for c in cols for b in ("lo", "hi")]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in ("ZS", *table.rows, "AVG"):
        cells = [
            table.zs[c]
            if row == "ZS"
            else table.col_avg.get(c, Cell(None))
            if row == "AVG"
            else table.delta[row][c]
            for c in cols
        ]
        writer.writerow(
            [row]
            + [_fmt(c.value, 4) for c in cells]
            + [x for c in cells for x in (_fmt(c.lo, 4), _fmt(c.hi, 4))]
        )
    return buf.getvalue()


def _display_rows(table: Table, with_ci: bool, missing: str) -> tuple[list[str], list[list[str]]]:
    cols = (*table.columns, "AVG")

    def show(c: Cell) -> str:
        if c.value is None:
            return missing
        text = f"{c.value:.2f}"
        if with_ci and c.lo is not None:
            text += f" [{c.lo:.2f}, {c.hi:.2f}]"
        return text

    body = [["ZS (actual)", *[show(table.zs[c]) for c in cols]]]
    body += [[f"Δ {r}", *[show(table.delta[r][c]) for c in cols]] for r in table.rows]
    body.append(["AVG (X-FT Δ)", *[show(table.col_avg[c]) for c in table.columns], ""])
    return ["", *cols], body


def _direction(table: Table) -> str:
    return "less toxic" if table.family == "toxicity" else "lower perplexity"


def markdown_text(table: Table, *, ci: bool = False) -> str:
    from tabulate import tabulate

    header, body = _display_rows(table, ci, MISSING_MD)
    note = f"Δ = ZS − FT (positive: fine-tuned model is {_direction(table)}); {MISSING_MD} = missing" + (
        "; [lo, hi] = bootstrap 95 % interval" if ci else ""
    )
    return (
        f"### {table.title}\n\n{tabulate(body, header, tablefmt='github', disable_numparse=True)}\n\n{note}\n"
    )


def latex_text(table: Table, *, ci: bool = False) -> str:
    from tabulate import tabulate

    header, body = _display_rows(table, ci, "--")
    body = [[x.replace("Δ", r"$\Delta$").replace("%", r"\%") for x in row] for row in body]
    tab = tabulate(body, header, tablefmt="latex_booktabs", disable_numparse=True)
    return f"% {table.title}; Delta = ZS - FT; -- = missing\n{tab}\n"


def _annotate(ax, data: np.ndarray, norm_max: float, skip: tuple[int, int] | None = None) -> None:
    for (i, j), v in np.ndenumerate(data):
        if (i, j) == skip:
            continue
        text = MISSING_MD if np.isnan(v) else (f"{v:.1f}" if abs(v) >= 100 else f"{v:.2f}")
        dark = not np.isnan(v) and norm_max > 0 and abs(v) / norm_max > 0.6
        ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if dark else "black")


def _nan(table: Table, row: str, col: str) -> float:
    if row == "AVG" and col == "AVG":  # the paper leaves this corner empty
        return np.nan
    v = table.cell(row, col).value
    return np.nan if v is None else v


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def heatmap_png(table: Table) -> bytes:
    """ZS strip (actual scores) above a diverging Δ heatmap, missing cells grey with a dash."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    cols = (*table.columns, "AVG")
    rows = (*table.rows, "AVG")
    zs = np.array([[_nan(table, "ZS", c) for c in cols]])
    d = np.array([[_nan(table, r, c) for c in cols] for r in rows])
    fig = Figure(figsize=(2.2 + 0.75 * len(cols), 1.7 + 0.36 * (len(rows) + 1)), layout="constrained")
    ax_zs, ax_d = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1, len(rows)]})
    zmax = float(np.nanmax(np.abs(zs))) if np.isfinite(zs).any() else 1.0
    seq = colormaps["Oranges" if table.family == "toxicity" else "Purples"].with_extremes(bad="#dddddd")
    ax_zs.imshow(np.ma.masked_invalid(zs), cmap=seq, norm=Normalize(0, 1.6 * (zmax or 1.0)), aspect="auto")
    _annotate(ax_zs, zs, 1.6 * zmax)
    ax_zs.set_yticks([0], ["ZS"])
    ax_zs.set_xticks(range(len(cols)), cols)
    ax_zs.xaxis.tick_top()
    ax_zs.axvline(len(table.columns) - 0.5, color="black", lw=0.8)
    dmax = float(np.nanmax(np.abs(d))) if np.isfinite(d).any() else 1.0
    div = colormaps["RdBu"].with_extremes(bad="#dddddd")
    im = ax_d.imshow(
        np.ma.masked_invalid(d), cmap=div, norm=Normalize(-(dmax or 1), dmax or 1), aspect="auto"
    )
    _annotate(ax_d, d, dmax, skip=(len(rows) - 1, len(cols) - 1))
    ax_d.set_yticks(range(len(rows)), [*(f"Δ {r}" for r in table.rows), "AVG"])
    ax_d.set_xticks(range(len(cols)), cols)
    ax_d.axhline(len(table.rows) - 0.5, color="black", lw=0.8)
    ax_d.axvline(len(table.columns) - 0.5, color="black", lw=0.8)
    fig.colorbar(im, ax=[ax_zs, ax_d], shrink=0.8, label=f"Δ {table.metric} (ZS − FT)")
    fig.suptitle(f"{table.title}\nΔ > 0: fine-tuned model {_direction(table)}; grey = missing", fontsize=9)
    return _png(fig)


def pm_bars_png(table: Table) -> bytes | None:
    """Grouped bars of Δ per evaluation language for the P-FT and M-FT rows (the paper's Figure 3)."""
    from matplotlib.figure import Figure

    rows = table.pm_rows
    if not rows:
        return None
    cols = (*table.columns, "AVG")
    fig = Figure(figsize=(1.5 + 0.9 * len(cols), 3.6), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(rows)
    x = np.arange(len(cols))
    for k, r in enumerate(rows):
        cells = [table.delta[r][c] for c in cols]
        vals = np.array([np.nan if c.value is None else c.value for c in cells])
        has_ci = [c.value is not None and c.lo is not None for c in cells]
        err = np.array(
            [
                [c.value - c.lo if ok else 0.0 for c, ok in zip(cells, has_ci, strict=True)],
                [c.hi - c.value if ok else 0.0 for c, ok in zip(cells, has_ci, strict=True)],
            ]
        )
        pos = x - 0.4 + width * (k + 0.5)
        ax.bar(
            pos,
            np.nan_to_num(vals),
            width,
            yerr=err if any(has_ci) else None,
            capsize=2,
            label="100% (m-ft)" if r.startswith("m-ft") else r.replace("p-ft ", ""),
        )
        for p, v in zip(pos, vals, strict=True):
            if np.isnan(v):
                ax.text(p, 0, "n/a", ha="center", va="bottom", fontsize=6, rotation=90)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(x, cols)
    ax.set_ylabel(f"Δ {table.metric} (ZS − FT)")
    ax.set_title(f"P-FT vs M-FT · {table.title}", fontsize=9)
    ax.legend(fontsize=7, ncols=min(len(rows), 4))
    return _png(fig)


INDEX_HEADER = ("stem", "model", "family", "metric", "split", "rows", "cells", "missing_cells", "files")


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
                t.family,
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


def check_tables_dir(out_dir: str | Path) -> list[str]:
    """Problems with a folder :func:`write_tables` produced (empty list: complete and well-formed)."""
    out = Path(out_dir)
    index = out / "index.csv"
    if not index.is_file():
        return [f"{index} missing"]
    problems: list[str] = []
    with index.open(newline="", encoding="utf-8") as fh:
        entries = list(csv.DictReader(fh))
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
        for v in r[1:]:
            if v and not math.isfinite(float(v)):
                return [f"{path}:{line}: non-finite value {v!r}"]
    return []


def read_table_csv(path: str | Path) -> dict[tuple[str, str], float | None]:
    """A CSV :func:`csv_text` wrote, as ``{(row, col): value}`` (``None`` = missing)."""
    with Path(path).open(newline="", encoding="utf-8") as fh:
        rec = list(csv.reader(fh))
    header = rec[0]
    cols = header[1 : header.index("AVG") + 1]
    return {(r[0], c): (float(r[i + 1]) if r[i + 1] else None) for r in rec[1:] for i, c in enumerate(cols)}


# ------------------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Tolerance:
    """Per-metric-family thresholds of the comparison with the paper (see ``repro/tolerances.yaml``)."""

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
    from scipy.stats import spearmanr

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

    pairs = [(c.ours, c.paper) for c in cells if c.row in paper.rows and c.col != "AVG" and c.paper != 0]
    sign = float(np.mean([np.sign(a) == np.sign(b) for a, b in pairs])) if pairs else None
    spearman: dict[str, float | None] = {}
    for col in paper.columns:
        pts = [(c.ours, c.paper) for c in cells if c.col == col and c.row in paper.rows]
        if len(pts) < 3 or len({p for _, p in pts}) < 2 or len({o for o, _ in pts}) < 2:
            spearman[col] = None
            continue
        rho = spearmanr([o for o, _ in pts], [p for _, p in pts]).statistic
        spearman[col] = None if rho is None or math.isnan(rho) else float(rho)
    return Comparison(paper, ours, tolerance, cells, missing, sign, spearman)


def compare_runs_with_paper(
    runs: Sequence[Run],
    tolerances: Mapping[str, Tolerance],
    metrics: Mapping[str, str] | None = None,
) -> list[Comparison]:
    """Regenerate tables from ``runs`` and compare each one the paper prints (by model, family, split)."""
    from xdet_tasks.paper import find_paper_table

    out = []
    for table in build_tables(runs, metrics=metrics, columns="paper", n_boot=0):
        paper = find_paper_table(table.model, table.family, table.split)
        if paper is not None:
            out.append(compare_with_paper(table, paper, tolerances[table.family]))
    return sorted(out, key=lambda c: c.paper.number)
