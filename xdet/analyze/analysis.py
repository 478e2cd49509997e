"""``run_analysis``: every applicable hypothesis for every table, then Holm over the whole family."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict

from xdet.analyze.hypotheses import TESTS, Settings
from xdet.analyze.inputs import DeltaMatrix, Distances, LanguageInfo, default_language_map
from xdet.analyze.permutation import ALTERNATIVES, Alternative
from xdet.analyze.results import AnalysisResults, HypothesisResult
from xdet.stats import holm


def _distances_for(m: DeltaMatrix, distances: Distances | Mapping[str, Distances] | None) -> Distances | None:
    if distances is None or isinstance(distances, Distances):
        return distances
    return distances.get(m.model)


def run_analysis(
    matrices: Iterable[DeltaMatrix],
    languages: Mapping[str, LanguageInfo] | None = None,
    distances: Distances | Mapping[str, Distances] | None = None,
    *,
    n_perm: int = 10_000,
    max_exact: int = 10_000,
    seed: int = 0,
    n_boot: int = 2000,
    alternative: Alternative = "greater",
    alpha: float = 0.05,
) -> AnalysisResults:
    """H1-H5 on every matrix; Holm over all *tested* records together (untestable ones keep p=None).

    ``distances`` is one matrix for every table, or a mapping model -> matrix (representations are
    per model). The family is everything run in this call: analysing tables one call at a time would
    under-correct.
    """
    if n_perm < 1 or max_exact < 1 or n_boot < 2:
        raise ValueError("n_perm and max_exact must be >= 1 and n_boot >= 2")
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, not {alternative!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), not {alpha}")
    langs = dict(languages) if languages is not None else default_language_map()
    settings = Settings(
        n_perm=n_perm, max_exact=max_exact, seed=seed, n_boot=n_boot, alternative=alternative, alpha=alpha
    )
    records: list[HypothesisResult] = []
    for m in matrices:
        dist = _distances_for(m, distances)
        for name, test in TESTS.items():
            rec = test(m, langs, dist, settings)
            if name == "H4" and dist is None and distances is not None:
                rec.reason = f"no language distance matrix for model {m.model!r}"
            records.append(rec)
    tested = [r for r in records if r.tested]
    for rec, adjusted in zip(tested, holm([r.p for r in tested]), strict=True):
        rec.p_holm = float(adjusted)
        if rec.p_floor is not None and rec.p_floor > alpha:
            rec.notes.append(
                f"Smallest attainable p here is {rec.p_floor:.3g} > {alpha}: this design cannot "
                "reach significance whatever the data."
            )
    settings_out = asdict(settings) | {"family_size": len(tested), "correction": "holm"}
    return AnalysisResults(records, languages=langs, settings=settings_out)
