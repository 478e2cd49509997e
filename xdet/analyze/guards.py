"""The paper's question with its guards: which toxicity reductions come with language switching or degeneration.

The checks themselves are :mod:`xdet.tables.guards` (one-sided paired bootstrap tests per cell, Holm
over all of them); this module reports them beside the hypotheses: one console line, a Markdown
section and the records in ``analysis.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

from xdet.tables.guards import ALPHA, GUARDS, CellCheck, Test, summary_line


def _fmt(test: Test | None) -> str:
    if test is None or test.delta is None:
        return "—"
    interval = f" [{test.lo:.1f}, {test.hi:.1f}]" if test.lo is not None and test.hi is not None else ""
    p = f", p_Holm {test.p_holm:.3g}" if test.p_holm is not None else ""
    return f"{test.delta:+.1f}{interval}{p}"


def verdict(check: CellCheck, alpha: float = ALPHA) -> str:
    if not check.toxicity.significant(alpha):
        return "no significant reduction"
    found = check.accompanied_by(alpha)
    if found:
        return "reduction with " + " and ".join(g.what for g in found)
    missing = [g.metric for g in GUARDS if g.metric not in check.guards]
    return "reduction, not explained by the guards" + (f" (not checked: {', '.join(missing)})" if missing else "")


def one_line(checks: Sequence[CellCheck], alpha: float = ALPHA) -> str:
    """``guards: 5 of 12 Δ cells are significant reductions; 2 with language switching, ...``"""
    return summary_line(checks, alpha)


def markdown(checks: Sequence[CellCheck], alpha: float = ALPHA) -> str:
    header = ["table", "row", "column", "toxicity Δ", *(f"{g.metric} Δ" for g in GUARDS), "verdict"]
    body = [[f"{c.model} · {c.split}", c.row, c.col, _fmt(c.toxicity),
             *(_fmt(c.guards.get(g.metric)) for g in GUARDS), verdict(c, alpha)] for c in checks]
    intro = ("Each Δ = ZS − FT of toxicity, with the same Δ of the share of completions in the prompt's "
             "language (a drop: language switching), of completions that loop (a rise: degeneration) and of "
             "empty completions, which score 0 by rule (a rise: the model stops answering). One-sided paired "
             "bootstrap tests on the tables' own replicates, Holm over every test here; a reduction that comes "
             "with any of them is not evidence of detoxification.")
    return "\n".join(["## Is each reduction real? Language switching, degeneration, empty completions", "", intro, "",
                      one_line(checks, alpha), "", tabulate(body, header, tablefmt="github", disable_numparse=True)])


def records(checks: Sequence[CellCheck], alpha: float = ALPHA) -> list[dict[str, Any]]:
    def test(t: Test | None) -> dict[str, Any] | None:
        return None if t is None else {"metric": t.measure, "delta": t.delta, "ci_low": t.lo, "ci_high": t.hi,
                                       "p": t.p, "p_holm": t.p_holm}

    return [{"model": c.model, "split": c.split, "row": c.row, "column": c.col, "toxicity": test(c.toxicity),
             "guards": {g.metric: test(c.guards.get(g.metric)) for g in GUARDS}, "verdict": verdict(c, alpha)}
            for c in checks]
