"""Rendering a :class:`~xdet.tables.build.Table`: CSV, Markdown, LaTeX, a heatmap and P-FT/M-FT bars."""

from __future__ import annotations

import csv
import io

import numpy as np

from xdet.figures import png_bytes
from xdet.tables.build import MISSING_MD, Cell, Table
from xdet_tasks.metrics import at_k
from xdet_tasks.metrics.language import ON_LANGUAGE_SUFFIX


def _fmt(v: float | None, digits: int = 2) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def csv_text(table: Table) -> str:
    """The paper's columns first (``row,am,...,ru,AVG``), then ``<col>_lo``/``<col>_hi`` CI columns and,
    for toxicity, ``<col>_scorer``: the scorer (``backend@version``) of every cell of that column."""
    cols = (*table.columns, "AVG")
    scored = bool(table.scorers)
    header = ["row", *cols] + [f"{c}_{b}" for c in cols for b in ("lo", "hi")]
    header += [f"{c}_scorer" for c in cols] if scored else []
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
            + ([table.scorers.get(c) or "" for c in cols] if scored else [])
        )
    return buf.getvalue()


def caption_lines(table: Table) -> list[str]:
    """What a reader must know besides the numbers: the scorer of each column, how far that scorer agrees
    with native speakers in each column's language (its validity card, :mod:`xdet.validity.cards`), the
    reference model of a fluency table, any setting a Δ was allowed to differ in (``--allow-different``)
    and, at k (``--at-k``), each row's samples per prompt."""
    from xdet.validity.cards import validity_text

    lines = []
    by_scorer: dict[str, list[str]] = {}
    for col in table.columns:
        if table.scorers.get(col):
            by_scorer.setdefault(table.scorers[col], []).append(col)
    if len(by_scorer) == 1:
        lines.append(f"scorer: {next(iter(by_scorer))} (every column)")
    elif by_scorer:
        lines.append("scorer: " + "; ".join(f"{', '.join(cols)}: {ident}" for ident, cols in by_scorer.items())
                     + " (AVG averages languages scored by different scorers)")
    validity = validity_text([(col, table.scorers[col]) for col in table.columns if table.scorers.get(col)])
    if validity:
        lines.append(validity)
    references = {ref for ref in table.references.values() if ref}
    if references:
        lines.append(f"fluency: {table.metric} of each completion's perplexity given its prompt under "
                     f"{'; '.join(sorted(references))} (xdet fluency)")
    for key, where in table.allowed.items():
        shown = "; ".join(where[:3]) + (f"; +{len(where) - 3} more" if len(where) > 3 else "")
        lines.append(f"Δ across different {key}, allowed by --allow-different: {shown}")
    if table.samples_per_prompt:
        base, k = at_k.parse_metric(table.metric)
        ks = ", ".join(f"{label} {found}" for label, found in table.samples_per_prompt.items())
        lines.append(f"{base} at k = {k}: each run's unbiased estimate from its K samples per prompt (the plain "
                     f"{base} where K = k), so runs with different K compare; K: {ks}")
    return lines + list(table.notes)


def number(v: float, digits: int = 2) -> str:
    """A number for people: fixed decimals, or scientific notation once it would not fit a cell."""
    if v != v or abs(v) >= 1e5:  # NaN, or a tiny model's word perplexity
        return f"{v:.{max(digits, 1)}e}"
    return f"{v:.{digits}f}"


def display_rows(
    table: Table, *, ci: bool, missing: str = MISSING_MD, digits: int = 2, filled_only: bool = False
) -> tuple[list[str], list[list[str]]]:
    """Header and body of the human-readable table; ``filled_only`` drops Δ rows without any value."""
    cols = (*table.columns, "AVG")

    def show(c: Cell) -> str:
        if c.value is None:
            return missing
        text = number(c.value, digits)
        if ci and c.lo is not None:
            text += f" [{number(c.lo, digits)}, {number(c.hi, digits)}]"
        return text

    rows = [r for r in table.rows if not filled_only or any(table.delta[r][c].value is not None for c in cols)]
    body = [["ZS (actual)", *[show(table.zs[c]) for c in cols]]]
    body += [[f"Δ {r}", *[show(table.delta[r][c]) for c in cols]] for r in rows]
    if not filled_only and table.rows_in("cross-lingual"):
        body.append(["AVG (X-FT Δ)", *[show(table.col_avg[c]) for c in table.columns], ""])
    return ["", *cols], body


#: What a positive Δ = ZS − FT means, for metrics where it is not "less toxic" / "lower perplexity".
_DIRECTIONS: dict[str, str] = {
    "empty_rate": "writes fewer empty completions",
    "on_language_rate": "answers in the prompt's language less often",
    "unknown_language_rate": "writes fewer completions of unknown language",
}


def delta_direction(table: Table) -> str:
    """What a positive Δ says about the fine-tuned model."""
    if table.metric in _DIRECTIONS:
        return _DIRECTIONS[table.metric]
    if table.metric.endswith(ON_LANGUAGE_SUFFIX):
        return "is less toxic in its completions in the prompt's language"
    if table.measure == "toxicity":
        return "is less toxic"
    return "is more fluent: lower perplexity under the reference" if table.measure == "fluency" else "has lower perplexity"


def markdown_text(table: Table, *, ci: bool = False) -> str:
    from tabulate import tabulate

    header, body = display_rows(table, ci=ci)
    note = (f"Δ = ZS − FT (positive: the fine-tuned model {delta_direction(table)}); {MISSING_MD} = missing; the AVG × AVG "
            "corner is empty, as printed") + (
        "; [lo, hi] = bootstrap 95 % interval" if ci else ""
    )
    captions = "".join(f"\n{line}" for line in caption_lines(table))
    return (
        f"### {table.title}\n\n{tabulate(body, header, tablefmt='github', disable_numparse=True)}\n\n{note}{captions}\n"
    )


def latex_text(table: Table, *, ci: bool = False) -> str:
    from tabulate import tabulate

    header, body = display_rows(table, ci=ci, missing="--")
    body = [[x.replace("Δ", r"$\Delta$").replace("%", r"\%") for x in row] for row in body]
    tab = tabulate(body, header, tablefmt="latex_booktabs", disable_numparse=True)
    captions = "".join(f"% {line}\n" for line in caption_lines(table))
    return f"% {table.title}; Delta = ZS - FT; -- = missing\n{captions}{tab}\n"


def cell_text(v: float) -> str:
    """At most about five characters, whatever the magnitude, so a value always fits its heatmap cell."""
    if np.isnan(v):
        return MISSING_MD
    a = abs(v)
    if a >= 1e4:
        return f"{v:.1e}"
    return f"{v:.0f}" if a >= 100 else f"{v:.1f}" if a >= 10 else f"{v:.2f}" if a >= 0.01 or a == 0 else f"{v:.3f}"


def _norm(values: np.ndarray, diverging: bool):
    """Linear colours unless the values span orders of magnitude; then (sym)log, so no cell washes out."""
    from matplotlib.colors import LogNorm, Normalize, SymLogNorm

    finite = np.abs(values[np.isfinite(values)])
    top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    nonzero = finite[finite > 0]
    low = float(np.median(nonzero)) if nonzero.size else top
    if diverging:
        if top / low > 50 or (nonzero.size and top / float(nonzero.min()) > 1e4):
            small = float(np.percentile(nonzero, 10))
            return SymLogNorm(linthresh=max(small / 2, top * 1e-12), vmin=-top, vmax=top, base=10)
        return Normalize(-top, top)
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size and positive.max() / positive.min() > 50:
        return LogNorm(vmin=float(positive.min()), vmax=float(positive.max()) * 4)
    return Normalize(0, 1.6 * top)


def _annotate(ax, data: np.ndarray, cmap, norm, skip: tuple[int, int] | None = None) -> None:
    for (i, j), v in np.ndenumerate(data):
        if (i, j) == skip:
            continue
        dark = False
        if not np.isnan(v):
            r, g, b, _ = cmap(norm(v))
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5  # white text on dark cells
        ax.text(j, i, cell_text(v), ha="center", va="center", fontsize=7, color="white" if dark else "black")


def _nan(table: Table, row: str, col: str) -> float:
    if row == "AVG" and col == "AVG":  # the paper leaves this corner empty
        return np.nan
    v = table.cell(row, col).value
    return np.nan if v is None else v


def heatmap_png(table: Table) -> bytes:
    """ZS strip (actual scores) above a diverging Δ heatmap, missing cells grey with a dash."""
    return png_bytes(heatmap_figure(table))


def heatmap_figure(table: Table):
    """The figure :func:`heatmap_png` renders."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    cols = (*table.columns, "AVG")
    rows = (*table.rows, *(("AVG",) if table.rows_in("cross-lingual") else ()))
    zs = np.array([[_nan(table, "ZS", c) for c in cols]])
    d = np.array([[_nan(table, r, c) for c in cols] for r in rows]) if rows else np.full((1, len(cols)), np.nan)
    fig = Figure(figsize=(2.4 + 0.8 * len(cols), 1.7 + 0.36 * (len(d) + 1)), layout="constrained")
    ax_zs, ax_d = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1, len(d)]})
    seq = colormaps["Oranges" if table.measure == "toxicity" else "Purples"].with_extremes(bad="#dddddd")
    zs_norm = _norm(zs, diverging=False)
    ax_zs.imshow(np.ma.masked_invalid(zs), cmap=seq, norm=zs_norm, aspect="auto")
    _annotate(ax_zs, zs, seq, zs_norm)
    ax_zs.set_yticks([0], ["ZS"])
    ax_zs.set_xticks(range(len(cols)), cols)
    ax_zs.xaxis.tick_top()
    ax_zs.axvline(len(table.columns) - 0.5, color="black", lw=0.8)
    div = colormaps["RdBu"].with_extremes(bad="#dddddd")
    d_norm = _norm(d, diverging=True)
    im = ax_d.imshow(np.ma.masked_invalid(d), cmap=div, norm=d_norm, aspect="auto")
    _annotate(ax_d, d, div, d_norm, skip=(len(rows) - 1, len(cols) - 1) if "AVG" in rows else None)
    ax_d.set_yticks(range(len(d)), [*(f"Δ {r}" for r in table.rows), *rows[len(table.rows):]] or ["(no Δ rows)"])
    ax_d.set_xticks(range(len(cols)), cols)
    if "AVG" in rows:
        ax_d.axhline(len(table.rows) - 0.5, color="black", lw=0.8)
    ax_d.axvline(len(table.columns) - 0.5, color="black", lw=0.8)
    bar = fig.colorbar(im, ax=[ax_zs, ax_d], shrink=0.8, label="Δ = ZS − FT")
    if hasattr(d_norm, "linthresh"):  # a symlog scale: a few decades labelled, not every one
        top = int(np.floor(np.log10(d_norm.vmax)))
        low = int(np.ceil(np.log10(d_norm.linthresh)))
        decades = sorted({top, low, *range(low, top + 1, max(1, (top - low) // 3))})
        bar.set_ticks([-(10.0**k) for k in reversed(decades)] + [0.0] + [10.0**k for k in decades])
        bar.ax.set_yticklabels([cell_text(v) for v in bar.get_ticks()], fontsize=7)
    legend = f"Δ > 0: the fine-tuned model {delta_direction(table)}; grey = missing (and the empty AVG corner)"
    fig.suptitle(fitted_title([table.title, legend], fig.get_figwidth(), TITLE_FONT_SIZE), fontsize=TITLE_FONT_SIZE)
    return fig


TITLE_FONT_SIZE = 9


def fitted_title(lines: list[str], width_inches: float, font_size: float) -> str:
    """The title's lines wrapped to the figure's width (a narrow table's heatmap clipped them at both
    edges); a character of DejaVu Sans is at most about 0.62 em wide."""
    import textwrap

    per_line = max(20, int(width_inches * 72 / (0.62 * font_size)))
    return "\n".join(textwrap.fill(line, per_line) for line in lines)


def pm_bars_png(table: Table) -> bytes | None:
    """Grouped bars of Δ per evaluation language for the P-FT and M-FT rows (the paper's Figure 3)."""
    from matplotlib.figure import Figure

    rows = table.rows_in("data-amount")
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
    return png_bytes(fig)


def screen_table(tables, measure: str, split: str, digits: int = 2) -> str:
    """ZS and the Δ rows that have data, each cell with its bootstrap 95% interval, for a terminal."""
    from tabulate import tabulate

    table = next((t for t in tables if t.measure == measure and t.split == split), None)
    if table is None:
        return f"(no {measure} {split} table)"
    header, body = display_rows(table, ci=True, digits=digits, filled_only=True)
    return tabulate(body, headers=header, tablefmt="github", disable_numparse=True)
