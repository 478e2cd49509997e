"""The paper's findings as permutation tests, one function per hypothesis and table.

The Δ values never move: each test reassigns a label (script, family, column language, distance
matrix language, data amount) and recomputes the statistic, so whatever structure the table has
(strong source rows, easy target columns, missing cells) is the same under the null. Statistics are
oriented so that positive = the paper's claim, except H4 whose claim is a negative correlation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from xdet.analyze.inputs import DeltaMatrix, Distances, LanguageInfo
from xdet.analyze.permutation import (
    Alternative,
    Relabelling,
    bootstrap_mean_difference,
    bootstrap_spearman,
    effect_interval,
    is_degenerate,
    mean_difference,
    permutation_p,
    relabellings,
    smallest_attainable_p,
    spearman_rows,
)
from xdet.analyze.results import CLAIMS, HypothesisResult
from xdet.stats import keyed_rng

DESCRIPTIONS: dict[str, str] = {
    "H1": "mean off-diagonal Δ where source and target share a script minus where scripts differ",
    "H2": "mean off-diagonal Δ of Indo-European training rows minus non-Indo-European rows",
    "H3": "mean in-language (diagonal) Δ minus mean cross-lingual (off-diagonal) Δ",
    "H4": "Spearman ρ between off-diagonal Δ[i, j] and representation distance(i, j); claim ρ < 0",
    "H5": "Spearman ρ between Δ and training-data fraction over (amount, column) cells; claim ρ > 0",
}


@dataclass(frozen=True)
class Settings:
    n_perm: int = 10_000
    max_exact: int = 10_000
    seed: int = 0
    n_boot: int = 2000
    alternative: Alternative = "greater"
    alpha: float = 0.05

    def rng(self, m: DeltaMatrix, hypothesis: str, purpose: str) -> np.random.Generator:
        """A stream per (table, hypothesis, purpose): adding a table never changes another's numbers."""
        return keyed_rng(self.seed, f"{m.key}|{hypothesis}|{purpose}")


@dataclass(frozen=True)
class _Grid:
    """A matrix flattened to cells (row-major), with each cell's row/column language index."""

    langs: tuple[str, ...]  # union of row and column languages
    row_pos: np.ndarray  # (R,) index into langs
    col_pos: np.ndarray  # (C,)
    values: np.ndarray  # (R*C,)
    valid: np.ndarray  # (R*C,) finite cells
    offdiag: np.ndarray  # (R*C,) row language != column language
    reps: np.ndarray | None  # (B, R*C)

    def pair_equal(self, labels: np.ndarray) -> np.ndarray:
        """(P, R*C): does the label of each cell's row language equal that of its column language?"""
        labels = np.atleast_2d(labels)
        eq = labels[:, self.row_pos][:, :, None] == labels[:, self.col_pos][:, None, :]
        return eq.reshape(labels.shape[0], -1)


def _grid(m: DeltaMatrix) -> _Grid:
    langs = m.languages
    row_pos = np.array([langs.index(r) for r in m.rows], dtype=np.intp)
    col_pos = np.array([langs.index(c) for c in m.cols], dtype=np.intp)
    values = m.delta.ravel()
    offdiag = (row_pos[:, None] != col_pos[None, :]).ravel()
    reps = None if m.replicates is None else m.replicates.reshape(m.replicates.shape[0], -1)
    return _Grid(langs, row_pos, col_pos, values, np.isfinite(values), offdiag, reps)


def _record(m: DeltaMatrix, hypothesis: str, s: Settings) -> HypothesisResult:
    rec = HypothesisResult(
        table=m.table,
        model=m.model,
        metric=m.metric,
        measure=m.measure,
        split=m.split,
        hypothesis=hypothesis,
        description=DESCRIPTIONS[hypothesis],
        claim=CLAIMS[hypothesis],
        alternative=s.alternative,
    )
    if m.measure != "toxicity":
        rec.notes.append(
            f"{m.measure.capitalize()} table: the paper's claims are about toxicity; the test asks whether the "
            "perplexity change has the same structure (larger Δ = lower perplexity)."
        )
    return rec


def _untestable(rec: HypothesisResult, reason: str) -> HypothesisResult:
    rec.status, rec.reason = "untestable", reason
    rec.notes.clear()  # caveats qualify a result; the reason is all an untestable record needs
    return rec


def _missing(langs: tuple[str, ...], languages: Mapping[str, LanguageInfo]) -> list[str]:
    return [lang for lang in langs if lang not in languages]


def _finish(
    rec: HypothesisResult, stats: np.ndarray, rel: Relabelling, s: Settings, effect: float | None = None
) -> HypothesisResult:
    """Fill p, floor and counts from oriented statistics (``stats[0]`` observed); untestable if all tie."""
    if is_degenerate(stats):
        return _untestable(rec, f"all {rel.count} relabellings give the same statistic: no contrast to test")
    rec.p, rec.n_permutations = permutation_p(stats, s.alternative)
    rec.p_floor = smallest_attainable_p(stats, s.alternative)
    rec.exact = rel.exact
    rec.effect = float(stats[0]) if effect is None else float(effect)
    dropped = rel.count - rec.n_permutations
    if dropped:
        rec.notes.append(
            f"{dropped} of {rel.count} relabellings leave a group empty; p is conditional on the rest."
        )
    return rec


def _contrast_interval(
    rec: HypothesisResult, g: _Grid, a: np.ndarray, b: np.ndarray, rng: np.random.Generator, s: Settings
) -> None:
    if g.reps is not None:
        finite = np.isfinite(g.reps)
        effects = mean_difference(a & finite, b & finite, g.reps)
        rec.ci_method = "sample-bootstrap"
    else:
        effects = bootstrap_mean_difference(g.values[a], g.values[b], s.n_boot, rng)
        rec.ci_method = "cell-bootstrap"
        if min(a.sum(), b.sum()) < 2:
            rec.notes.append("A compared group has one cell: the cell bootstrap cannot show its uncertainty.")
    rec.ci_low, rec.ci_high = effect_interval(effects)


def _pairs(g: _Grid, mask: np.ndarray) -> list[str]:
    r, c = np.divmod(np.flatnonzero(mask), len(g.col_pos))
    return [f"{g.langs[g.row_pos[i]]}>{g.langs[g.col_pos[j]]}" for i, j in zip(r, c, strict=True)]


# ---------------------------------------------------------------------------------------------
# H1-H3: contrasts of mean Δ
# ---------------------------------------------------------------------------------------------


def h1_same_script(m: DeltaMatrix, languages: Mapping[str, LanguageInfo], s: Settings) -> HypothesisResult:
    """Same-script pairs transfer more; script labels are permuted among all languages of the table."""
    rec = _record(m, "H1", s)
    g = _grid(m)
    if missing := _missing(g.langs, languages):
        return _untestable(rec, f"no script known for {missing} (give them in the language file)")
    scripts = np.array([languages[lang].script for lang in g.langs])
    cells = g.valid & g.offdiag
    same = g.pair_equal(scripts)[0]
    a, b = same & cells, ~same & cells
    if not a.any():
        return _untestable(
            rec,
            "no off-diagonal cell pairs two languages with the same script "
            f"(scripts: {dict(zip(g.langs, scripts.tolist(), strict=True))})",
        )
    if not b.any():
        return _untestable(rec, "no off-diagonal cell pairs two languages with different scripts")
    rec.n_cells = int(cells.sum())
    rel = relabellings(scripts, max_exact=s.max_exact, n_perm=s.n_perm, rng=s.rng(m, "H1", "perm"))
    shared = g.pair_equal(rel.labels)
    if _finish(rec, mean_difference(shared & cells, ~shared & cells, g.values), rel, s).tested:
        _contrast_interval(rec, g, a, b, s.rng(m, "H1", "boot"), s)
    pairs = _pairs(g, a)
    rec.detail = {
        "n_same": int(a.sum()),
        "n_different": int(b.sum()),
        "mean_same": float(g.values[a].mean()),
        "mean_different": float(g.values[b].mean()),
        "same_script_cells": pairs,
    }
    if not rec.tested:
        return rec
    used = sorted({scripts[g.row_pos[i // len(g.col_pos)]] for i in np.flatnonzero(a)})
    if len(used) == 1:
        members = sorted({p.split(">")[k] for p in pairs for k in (0, 1)})
        who = (
            "high-resource European (Latin-script) languages transfer among themselves"
            if used[0] == "Latin" and all(languages[x].indo_european for x in members)
            else f"{', '.join(members)} transfer among themselves"
        )
        rec.notes.append(
            f"All {len(pairs)} same-script off-diagonal cells are {used[0]}-script pairs among "
            f'{", ".join(members)}: H1 cannot be told apart from "{who}".'
        )
    rec.notes.append(
        "Row (source) and column (target) main effects are not removed: a source that helps every "
        "target also lifts its same-script cells."
    )
    return rec


def h2_indo_european(m: DeltaMatrix, languages: Mapping[str, LanguageInfo], s: Settings) -> HypothesisResult:
    """Indo-European sources transfer more; family labels are permuted among the training rows only.

    Only row labels enter this statistic, so evaluation-only languages (the paper's ``am``) are left
    out of the permutation; including them would mix nulls with different numbers of
    non-Indo-European rows.
    """
    rec = _record(m, "H2", s)
    g = _grid(m)
    if missing := _missing(m.rows, languages):
        return _untestable(rec, f"no family known for training language(s) {missing}")
    ie = np.array([languages[r].indo_european for r in m.rows], dtype=bool)
    row_of_cell = np.repeat(np.arange(len(m.rows)), len(m.cols))
    cells = g.valid & g.offdiag
    a, b = ie[row_of_cell] & cells, ~ie[row_of_cell] & cells
    if not a.any():
        return _untestable(rec, "no Indo-European training row with an off-diagonal cell")
    if not b.any():
        return _untestable(rec, "no non-Indo-European training row with an off-diagonal cell")
    rec.n_cells = int(cells.sum())
    rel = relabellings(ie.astype(int), max_exact=s.max_exact, n_perm=s.n_perm, rng=s.rng(m, "H2", "perm"))
    ie_cells = rel.labels[:, row_of_cell].astype(bool)
    if _finish(rec, mean_difference(ie_cells & cells, ~ie_cells & cells, g.values), rel, s).tested:
        _contrast_interval(rec, g, a, b, s.rng(m, "H2", "boot"), s)
    others = [r for r, flag in zip(m.rows, ie, strict=True) if not flag]
    rec.detail = {
        "indo_european_rows": [r for r in m.rows if r not in others],
        "other_rows": others,
        "mean_indo_european": float(g.values[a].mean()),
        "mean_other": float(g.values[b].mean()),
    }
    if not rec.tested:
        return rec
    if len(others) <= 2:
        scripts = ", ".join(f"{r}: {languages[r].script}" for r in others)
        rec.notes.append(
            f"The non-Indo-European training rows are only {', '.join(others)} ({len(others)} of "
            f"{len(m.rows)}): family cannot be told apart from these languages ({scripts})."
        )
    latin_ie = [r for r in m.rows if languages[r].indo_european and languages[r].script == "Latin"]
    if latin_ie:
        rec.notes.append(
            f"Every Latin-script source ({', '.join(latin_ie)}) is Indo-European, so H2 overlaps H1."
        )
    return rec


def h3_in_language(m: DeltaMatrix, languages: Mapping[str, LanguageInfo], s: Settings) -> HypothesisResult:
    """In-language cells beat cross-lingual ones; column language labels are permuted among the columns."""
    rec = _record(m, "H3", s)
    g = _grid(m)
    a, b = ~g.offdiag & g.valid, g.offdiag & g.valid
    if not a.any():
        return _untestable(rec, "no training language is also an evaluation language: no diagonal cell")
    if not b.any():
        return _untestable(rec, "no off-diagonal cell")
    rec.n_cells = int(g.valid.sum())
    rel = relabellings(g.col_pos, max_exact=s.max_exact, n_perm=s.n_perm, rng=s.rng(m, "H3", "perm"))
    diag = (g.row_pos[None, :, None] == rel.labels[:, None, :]).reshape(rel.count, -1)
    if _finish(rec, mean_difference(diag & g.valid, ~diag & g.valid, g.values), rel, s).tested:
        _contrast_interval(rec, g, a, b, s.rng(m, "H3", "boot"), s)
    rec.detail = {
        "n_diagonal": int(a.sum()),
        "n_off_diagonal": int(b.sum()),
        "mean_diagonal": float(g.values[a].mean()),
        "mean_off_diagonal": float(g.values[b].mean()),
    }
    if not rec.tested:
        return rec
    no_col = [r for r in m.rows if r not in m.cols]
    no_row = [c for c in m.cols if c not in m.rows]
    if no_col or no_row:
        rec.notes.append(
            f"Training rows without their own evaluation column ({', '.join(no_col) or 'none'}) and "
            f"columns without their own training row ({', '.join(no_row) or 'none'}) only ever "
            "contribute cross-lingual cells."
        )
    return rec


# ---------------------------------------------------------------------------------------------
# H4-H5: rank correlations
# ---------------------------------------------------------------------------------------------


def h4_distance(m: DeltaMatrix, distances: Distances | None, s: Settings) -> HypothesisResult:
    """Mantel-style test: Spearman ρ(Δ, distance), languages of the distance matrix permuted jointly.

    Spearman, because perplexity Δ has extreme cells (a single source can move a column by 100) and
    distances from different models have different scales; only the ordering should count.
    """
    rec = _record(m, "H4", s)
    if distances is None:
        return _untestable(rec, "no language distance matrix given (xdet represent writes one)")
    g = _grid(m)
    if missing := [lang for lang in g.langs if lang not in distances.langs]:
        return _untestable(rec, f"the distance matrix has no row for {missing}")
    idx = np.array([distances.index(lang) for lang in g.langs])
    sub = distances.matrix[np.ix_(idx, idx)]
    cells = g.valid & g.offdiag
    if cells.sum() < 3:
        return _untestable(rec, f"{int(cells.sum())} off-diagonal cells: too few for a correlation")
    rec.n_cells = int(cells.sum())
    rel = relabellings(
        np.arange(len(g.langs)), max_exact=s.max_exact, n_perm=s.n_perm, rng=s.rng(m, "H4", "perm")
    )
    lab = rel.labels
    dist = sub[lab[:, g.row_pos][:, :, None], lab[:, g.col_pos][:, None, :]].reshape(rel.count, -1)[:, cells]
    rho = spearman_rows(dist, g.values[cells])
    if not np.isfinite(rho[0]):
        return _untestable(rec, "Δ or the distances are constant over the off-diagonal cells")
    sign = -1.0 if rec.claim == "-" else 1.0
    if _finish(rec, sign * rho, rel, s, effect=float(rho[0])).tested:
        if g.reps is not None and np.isfinite(g.reps[:, cells]).all():
            rec.ci_low, rec.ci_high = effect_interval(spearman_rows(dist[0], g.reps[:, cells]))
            rec.ci_method = "sample-bootstrap"
        else:
            boot = bootstrap_spearman(dist[0], g.values[cells], s.n_boot, s.rng(m, "H4", "boot"))
            rec.ci_low, rec.ci_high = effect_interval(boot)
            rec.ci_method = "cell-bootstrap"
    rec.detail = {"languages": list(g.langs)}
    if rec.tested and np.allclose(sub, sub.T):
        rec.notes.append(
            "Δ[i, j] and Δ[j, i] share one distance: the permutation test respects that, the "
            "cell-bootstrap interval treats them as independent."
        )
    return rec


def h5_amount(m: DeltaMatrix, s: Settings) -> HypothesisResult:
    """Δ rises with the training-data fraction; fraction labels are permuted among the amount rows."""
    rec = _record(m, "H5", s)
    amounts = sorted(m.amounts, key=lambda a: a.fraction)
    if len(amounts) < 2:
        return _untestable(rec, f"fewer than 2 data-amount rows ({len(amounts)}): nothing to correlate")
    fractions = np.array([a.fraction for a in amounts])
    if np.unique(fractions).size < 2:
        return _untestable(rec, "all data-amount rows have the same fraction")
    y = np.stack([a.delta for a in amounts]).ravel()
    valid = np.isfinite(y)
    if valid.sum() < 3:
        return _untestable(rec, f"{int(valid.sum())} finite amount cells: too few for a correlation")
    rec.n_cells = int(valid.sum())
    rel = relabellings(fractions, max_exact=s.max_exact, n_perm=s.n_perm, rng=s.rng(m, "H5", "perm"))
    x = np.repeat(rel.labels, len(m.cols), axis=1)[:, valid]
    rho = spearman_rows(x, y[valid])
    if not np.isfinite(rho[0]):
        return _untestable(rec, "Δ is constant over the amount cells")
    if _finish(rec, rho, rel, s).tested:
        reps = [a.replicates for a in amounts]
        if all(r is not None for r in reps) and len({r.shape[0] for r in reps}) == 1:
            stacked = np.stack(reps, axis=1).reshape(reps[0].shape[0], -1)[:, valid]
            rec.ci_low, rec.ci_high = effect_interval(spearman_rows(x[0], stacked))
            rec.ci_method = "sample-bootstrap"
        else:
            boot = bootstrap_spearman(x[0], y[valid], s.n_boot, s.rng(m, "H5", "boot"))
            rec.ci_low, rec.ci_high = effect_interval(boot)
            rec.ci_method = "cell-bootstrap"
    rec.detail = {
        "amounts": {a.label: a.fraction for a in amounts},
        "mean_delta": {a.label: float(np.nanmean(a.delta)) for a in amounts},
    }
    if rec.tested and any(a.fraction >= 1 or "M-FT" in a.label.upper() for a in amounts):
        rec.notes.append(
            "The 100 % row is M-FT (all languages together) while P-FT rows are per language: at the "
            "top of the scale, amount is confounded with multilingual training."
        )
    return rec


HypothesisFn = Callable[
    [DeltaMatrix, Mapping[str, LanguageInfo], Distances | None, Settings], HypothesisResult
]

TESTS: dict[str, HypothesisFn] = {
    "H1": lambda m, langs, dist, s: h1_same_script(m, langs, s),
    "H2": lambda m, langs, dist, s: h2_indo_european(m, langs, s),
    "H3": lambda m, langs, dist, s: h3_in_language(m, langs, s),
    "H4": lambda m, langs, dist, s: h4_distance(m, dist, s),
    "H5": lambda m, langs, dist, s: h5_amount(m, s),
}
