"""The effects figure: one panel per hypothesis (columns) and measure (rows), 95 % intervals per table.

Built on ``matplotlib.figure.Figure`` directly (no pyplot), so it is safe in threads and headless runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from xdet.analyze.results import CLAIM_SIGN, CLAIMS, HYPOTHESES, HypothesisResult
from xdet.figures import png_bytes
from xdet.tables.measures import MEASURES

_SIG, _NOT = "#b2182b", "#4d6a8a"
_XLABEL = {"toxicity": "effect (Δ toxicity points)", "perplexity": "effect (Δ perplexity)",
           "fluency": "effect (Δ completion perplexity)"}


def _label(r: HypothesisResult) -> str:
    return f"{r.table}: {r.model}, {r.metric}, {r.split}"


def _maybe_symlog(ax: Axes, recs: Sequence[HypothesisResult]) -> None:
    """Perplexity effects span orders of magnitude across models; a linear axis would flatten most of them."""
    effects = np.array([abs(r.effect) for r in recs if r.effect is not None])
    ends = np.array([abs(v) for r in recs for v in (r.ci_low, r.ci_high) if v is not None])
    if effects.size == 0 or ends.size == 0:
        return
    typical = float(np.median(effects))
    if typical > 0 and ends.max() > 25 * typical:
        linthresh = float(10 ** np.floor(np.log10(typical)))
        ax.set_xscale("symlog", linthresh=linthresh, linscale=0.6)
        values = [v for r in recs for v in (r.effect, r.ci_low, r.ci_high) if v is not None]
        # autoscaling ignores margins on symlog axes: pad by a fixed factor (about 0.2 decades)
        ax.set_xlim(min(1.6 * min(values), -linthresh), max(1.6 * max(values), linthresh))
        ax.set_xlabel(ax.get_xlabel() + ", symlog scale", fontsize=8.5)


def effects_figure(results: Sequence[HypothesisResult], alpha: float = 0.05) -> Figure:
    hyps = [h for h in HYPOTHESES if any(r.hypothesis == h and r.tested for r in results)]
    measures = [m for m in MEASURES if any(r.measure == m for r in results)]
    if not hyps or not measures:
        fig = Figure(figsize=(6, 2))
        fig.text(
            0.5, 0.5, "no hypothesis was testable on these tables", ha="center", va="center", fontsize=12
        )
        return fig
    tables = {m: list(dict.fromkeys(_label(r) for r in results if r.measure == m)) for m in measures}
    heights = [max(len(tables[m]), 2) * 0.32 + 1.1 for m in measures]
    longest = max(len(label) for labels in tables.values() for label in labels)
    fig = Figure(figsize=(0.075 * longest + 3.2 * len(hyps), sum(heights) + 0.9), layout="constrained")
    axes = fig.subplots(
        len(measures), len(hyps), squeeze=False, sharey="row", gridspec_kw={"height_ratios": heights}
    )
    for i, measure in enumerate(measures):
        labels = tables[measure]
        for j, hyp in enumerate(hyps):
            ax = axes[i][j]
            recs = [r for r in results if r.measure == measure and r.hypothesis == hyp]
            for r in recs:
                y = labels.index(_label(r))
                if not r.tested or r.effect is None:
                    ax.plot([0], [y], marker="x", color="#aaaaaa", markersize=5, linestyle="none")
                    continue
                color = _SIG if r.significant(alpha) else _NOT
                if r.ci_low is not None and r.ci_high is not None:
                    ax.plot([r.ci_low, r.ci_high], [y, y], color=color, linewidth=1.6, solid_capstyle="butt")
                ax.plot(
                    [r.effect],
                    [y],
                    marker="o",
                    markersize=5.5,
                    color=color,
                    markerfacecolor=color if r.significant(alpha) else "white",
                    linestyle="none",
                )
            ax.margins(x=0.06)
            ax.axvline(0, color="#444444", linewidth=0.8, linestyle="--", zorder=0)
            ax.set_ylim(len(labels) - 0.5, -0.5)
            ax.set_yticks(np.arange(len(labels)))
            if j == 0:  # shared y: labels set on a later panel would overwrite these
                ax.set_yticklabels(labels, fontsize=8)
            else:
                ax.tick_params(axis="y", labelleft=False)
            ax.tick_params(axis="x", labelsize=8)
            ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
            corr = hyp in ("H4", "H5")
            ax.set_xlabel("Spearman ρ" if corr else _XLABEL[measure], fontsize=8.5)
            if corr:
                ax.set_xlim(-1.05, 1.05)
            else:
                _maybe_symlog(ax, [r for r in recs if r.tested])
            claim = CLAIM_SIGN[CLAIMS[hyp]]
            ax.set_title(f"{hyp} {HYPOTHESES[hyp]}\n{measure} (claim {claim})", fontsize=9)
    handles = [
        Line2D([], [], color=_SIG, marker="o", label=f"Holm-adjusted p ≤ {alpha}"),
        Line2D([], [], color=_NOT, marker="o", markerfacecolor="white", label="not significant"),
        Line2D([], [], color="#aaaaaa", marker="x", linestyle="none", label="untestable"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8.5, frameon=False)
    fig.suptitle("Effects with 95 % intervals per table (line = interval, dot = effect)", fontsize=10.5)
    return fig


def figure_png(results: Sequence[HypothesisResult], alpha: float = 0.05, dpi: int = 130) -> bytes:
    return png_bytes(effects_figure(results, alpha), dpi=dpi)
