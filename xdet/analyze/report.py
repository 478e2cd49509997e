"""Everything a person reads: analysis.json, analysis.md, analysis.png and short text summaries.

The prose verdicts are computed from the records (counts, directions, floors), never written by hand,
so the report cannot drift from the numbers.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tabulate import tabulate

from xdet.analyze.figure import figure_png
from xdet.analyze.inputs import DeltaMatrix, LanguageInfo
from xdet.analyze.results import CLAIM_SIGN, CLAIMS, HYPOTHESES, SCHEMA, HypothesisResult, _clean
from xdet.tables.measures import MEASURES
from xdet_tasks.io import atomic_write_bytes, atomic_write_json, atomic_write_text


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    return (
        f"{value:.{digits}g}"
        if abs(value) < 1e-3 and value != 0
        else f"{value:.{digits}f}".rstrip("0").rstrip(".")
    )


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def _alpha(results: Sequence[HypothesisResult]) -> float:
    return float(getattr(results, "settings", {}).get("alpha", 0.05))


def _stats(recs: list[HypothesisResult], alpha: float) -> dict[str, Any]:
    tested = [r for r in recs if r.tested]
    effects = [r.effect for r in tested if r.effect is not None]
    return {
        "total": len(recs),
        "tested": len(tested),
        "untestable": len(recs) - len(tested),
        "significant": sum(r.significant(alpha) for r in tested),
        "raw": sum(r.p is not None and r.p <= alpha for r in tested),
        "against": sum(r.significant(alpha) and r.in_claimed_direction() is False for r in tested),
        "claimed": sum(bool(r.in_claimed_direction()) for r in tested),
        "median": statistics.median(effects) if effects else None,
        "floors": [r.p_floor for r in tested if r.p_floor is not None],
        "reasons": sorted({r.reason for r in recs if not r.tested and r.reason}),
    }


def _summary_rows(results: Sequence[HypothesisResult], alpha: float) -> list[list[str]]:
    rows = []
    for hyp, name in HYPOTHESES.items():
        for measure in MEASURES:
            recs = [r for r in results if r.hypothesis == hyp and r.measure == measure]
            if not recs:
                continue
            st = _stats(recs, alpha)
            claim = CLAIM_SIGN[CLAIMS[hyp]]
            rows.append(
                [
                    f"{hyp} {name}",
                    measure,
                    f"{st['tested']}/{st['total']}",
                    f"{st['significant']}/{st['tested']}" if st["tested"] else "–",
                    _num(st["median"]),
                    claim,
                    f"{st['claimed']}/{st['tested']}" if st["tested"] else "–",
                ]
            )
    return rows


_SUMMARY_HEADER = [
    "Hypothesis",
    "Measure",
    "Tested",
    "Significant (Holm)",
    "Median effect",
    "Claim",
    "In claimed direction",
]


def summary_markdown(results: Sequence[HypothesisResult]) -> str:
    """One GitHub-markdown table (hypothesis × measure) for a README; same inputs, same text."""
    alpha = _alpha(results)
    header = [h.replace("(Holm)", f"(Holm ≤ {alpha:g})") for h in _SUMMARY_HEADER]
    return tabulate(_summary_rows(results, alpha), headers=header, tablefmt="github", disable_numparse=True)


def console_summary(results: Sequence[HypothesisResult]) -> str:
    alpha = _alpha(results)
    body = tabulate(
        _summary_rows(results, alpha), headers=_SUMMARY_HEADER, tablefmt="simple", disable_numparse=True
    )
    return f"{one_line(results)}\n{body}"


def one_line(results: Sequence[HypothesisResult]) -> str:
    """``analysis: H1 0/24 tables significant after Holm, H3 20/24, H4 untestable, ...``"""
    alpha = _alpha(results)
    parts, first = [], True
    for hyp in HYPOTHESES:
        st = _stats([r for r in results if r.hypothesis == hyp], alpha)
        if not st["total"]:
            continue
        if not st["tested"]:
            parts.append(f"{hyp} untestable")
            continue
        text = f"{hyp} {st['significant']}/{st['tested']}" + (
            " tables significant after Holm" if first else ""
        )
        if st["untestable"]:
            text += f" ({st['untestable']} untestable)"
        parts.append(text)
        first = False
    return "analysis: " + (", ".join(parts) if parts else "nothing analysed")


def _verdict(hyp: str, st: dict[str, Any], alpha: float) -> str:
    if not st["tested"]:
        return f"Not testable on these tables: {'; '.join(st['reasons'])}."
    n, k, j = st["tested"], st["significant"], st["claimed"]
    claim = {"-": "a negative correlation", "+": "a positive effect"}[CLAIMS[hyp]]
    text = (
        f"Tested in {n} of {st['total']} tables; p ≤ {alpha:g} before correction in {st['raw']}, after Holm "
        f"in {k}; effect in the claimed direction ({claim}) in {j} of {n}."
    )
    if st["floors"]:
        lo, hi = min(st["floors"]), max(st["floors"])
        floor = _p(lo) if lo == hi else f"{_p(lo)}–{_p(hi)}"
        text += f" Smallest attainable p per table: {floor}."
    if k - st["against"] == n:
        text += " Every tested table supports the claim after correction."
    elif k - st["against"] > 0:
        text += f" The claim is supported in {k - st['against']} of {n} tables, not in general."
    elif j * 2 > n:
        text += (
            " The effect usually points the claimed way, but no table supports it at the family-wise level."
        )
    elif j * 2 == n:
        text += (
            " The effect points the claimed way in only half the tables: no consistent direction, no support."
        )
    else:
        text += " The data do not support the claim: the effect mostly points the other way."
    if st["against"]:
        text += f" {st['against']} table(s) are significant in the opposite direction."
    if st["untestable"]:
        text += f" Untestable in {st['untestable']}: {'; '.join(st['reasons'])}."
    return text


def _hypothesis_table(recs: list[HypothesisResult], alpha: float) -> str:
    rows = []
    for r in recs:
        if not r.tested:
            rows.append([r.table, r.model, r.metric, r.split, "untestable", "", "", "", "", r.reason or ""])
            continue
        ci = f"[{_num(r.ci_low)}, {_num(r.ci_high)}]" if r.ci_low is not None else "–"
        perms = f"{r.n_permutations}{' (exact)' if r.exact else ''}"
        rows.append(
            [
                r.table,
                r.model,
                r.metric,
                r.split,
                _num(r.effect),
                ci,
                _p(r.p),
                _p(r.p_holm),
                "yes" if r.significant(alpha) else "no",
                f"{perms}, {r.ci_method}",
            ]
        )
    header = [
        "Table",
        "Model",
        "Metric",
        "Split",
        "Effect",
        "95 % CI",
        "p",
        "p (Holm)",
        "Sig.",
        "Relabellings, interval",
    ]
    return tabulate(rows, headers=header, tablefmt="github", disable_numparse=True)


def _notes(results: Sequence[HypothesisResult]) -> list[str]:
    """Each distinct note once, with the hypotheses and tables it applies to."""
    seen: dict[str, tuple[dict[str, None], dict[str, None]]] = {}
    for r in results:
        for note in r.notes:
            hyps, tables = seen.setdefault(note, ({}, {}))
            hyps[r.hypothesis] = None
            tables[r.table] = None
    every = len({r.table for r in results})
    out = []
    for note, (hyps, tables) in seen.items():
        where = "all tables" if len(tables) == every else ", ".join(tables)
        out.append(f"- **{', '.join(hyps)}** ({where}): {note}")
    return out


_METHOD = """\
Each test keeps the Δ values (Δ = ZS − FT; positive = less toxic or lower perplexity) where they are and
permutes a label: script labels among all languages of the table (H1), Indo-European labels among the
training languages (H2), the evaluation-language labels among the columns (H3), the languages of the
distance matrix, rows and columns together (H4, Mantel-style), and the data-amount labels among the
amount rows (H5). All distinct relabellings are enumerated when there are at most {max_exact}, otherwise
{n_perm} random ones are drawn (seed {seed}) and the observed labelling is added. The p-value is the
share of relabellings whose statistic is at least the observed one, the observed one included
({alternative_text}). Holm's step-down correction runs over all {family} tested records together.
Intervals are 95 % percentile bootstraps: `sample-bootstrap` re-computes the effect on paired
prompt-level replicates; `cell-bootstrap` resamples table cells within each compared group (or cell
pairs for ρ), treating cells as independent, so it is narrower than the truth and not comparable to the
former. H4/H5 use Spearman's ρ so single extreme cells (perplexity) cannot dominate. `p_floor` is the
smallest p the design can give: many tables have few distinct relabellings, which bounds what any table
can show on its own."""


def scorer_validity(matrices: Iterable[DeltaMatrix]) -> list[dict[str, Any]]:
    """The validity of each toxicity table's scorers per language (:mod:`xdet.validity.cards`), tables with
    the same scorers per language grouped: ``[{"tables": [...], "validity": "validity (...): de 0.52 ..."}]``."""
    from xdet.validity.cards import load_cards, validity_text

    cards = load_cards()
    grouped: dict[str, list[str]] = {}
    for m in matrices:
        pairs = [(c, m.scorers[c]) for c in m.cols if m.measure == "toxicity" and m.scorers.get(c)]
        text = validity_text(pairs, cards)
        if text:
            grouped.setdefault(text, []).append(m.table)
    return [{"tables": tables, "validity": text} for text, tables in grouped.items()]


def validity_lines(validity: Sequence[Mapping[str, Any]]) -> list[str]:
    return [f"{entry['validity']} ({', '.join(entry['tables'])})" for entry in validity]


def analysis_markdown(results: Sequence[HypothesisResult], validity: Sequence[Mapping[str, Any]] = ()) -> str:
    alpha = _alpha(results)
    settings = dict(getattr(results, "settings", {}))
    alt = settings.get("alternative", "greater")
    alternative_text = (
        "one-sided, in the paper's claimed direction"
        if alt == "greater"
        else "two-sided, distance from the permutation mean"
    )
    lines = [
        "# xdet analyze: the paper's findings as hypothesis tests",
        "",
        "## Method",
        "",
        _METHOD.format(
            max_exact=settings.get("max_exact", "max_exact"),
            n_perm=settings.get("n_perm", "n_perm"),
            seed=settings.get("seed", "?"),
            alternative_text=alternative_text,
            family=sum(r.tested for r in results),
        ),
        "",
        "## Summary",
        "",
        summary_markdown(results),
        "",
        "## What the numbers support",
        "",
    ]
    for hyp, name in HYPOTHESES.items():
        recs = [r for r in results if r.hypothesis == hyp]
        if recs and not any(r.tested for r in recs):
            lines.append(f"- **{hyp} {name}.** {_verdict(hyp, _stats(recs, alpha), alpha)}")
            continue
        for measure in MEASURES:  # toxicity and perplexity effects are different quantities
            sub = [r for r in recs if r.measure == measure]
            if sub:
                lines.append(f"- **{hyp} {name}, {measure}.** {_verdict(hyp, _stats(sub, alpha), alpha)}")
    for hyp, name in HYPOTHESES.items():
        recs = [r for r in results if r.hypothesis == hyp]
        if not recs:
            continue
        lines += [
            "",
            f"## {hyp}: {name}",
            "",
            f"Effect: {recs[0].description}.",
            "",
            _hypothesis_table(recs, alpha),
        ]
    notes = _notes(results)
    if notes:
        lines += ["", "## Confounds and caveats", "", *notes]
    if validity:
        lines += ["", "## How far the toxicity scorers agree with native speakers", "",
                  *(f"- {line}" for line in validity_lines(validity))]
    return "\n".join(lines) + "\n"


def _languages_json(languages: Mapping[str, LanguageInfo]) -> dict[str, Any]:
    return {code: asdict(info) for code, info in sorted(languages.items())}


def write_outputs(
    results: Sequence[HypothesisResult],
    out_dir: str | Path,
    *,
    languages: Mapping[str, LanguageInfo] | None = None,
    settings: Mapping[str, Any] | None = None,
    validity: Sequence[Mapping[str, Any]] = (),
) -> list[Path]:
    """Write analysis.json, analysis.md and analysis.png atomically; returns their paths.

    ``languages`` and ``settings`` default to those remembered by ``run_analysis``'s result list;
    ``validity`` is :func:`scorer_validity` of the analysed tables.
    """
    out = Path(out_dir)
    langs = languages if languages is not None else getattr(results, "languages", {})
    sets = dict(settings if settings is not None else getattr(results, "settings", {}))
    doc = {
        "schema": SCHEMA,
        "settings": sets,
        "languages": _languages_json(langs),
        "results": [r.to_json() for r in results],
        "scorer_validity": list(validity),
    }
    text = analysis_markdown(results, validity)
    checks = getattr(results, "guards", None)
    if checks:  # is each reduction real? (runs only: tables carry no replicates)
        from xdet.analyze import guards

        alpha = float(sets.get("alpha", 0.05))
        doc["guards"] = _clean(guards.records(checks, alpha))
        text += "\n" + guards.markdown(checks, alpha) + "\n"
    return [
        atomic_write_json(out / "analysis.json", doc),
        atomic_write_text(out / "analysis.md", text),
        atomic_write_bytes(out / "analysis.png", figure_png(results, float(sets.get("alpha", 0.05)))),
    ]
