"""Toxicity scoring: one interface (:mod:`.base`), backends chosen by spec (:mod:`.registry`), one cache."""

from __future__ import annotations

from xdet_tasks.scoring.base import Scorer

_ACTIVE: dict[str, Scorer] = {}


def get_scorer(spec: str | None = None) -> Scorer:
    """The process-wide scorer for ``spec`` (default ``XDET_SCORER``), built once.

    It is wrapped in the persistent score cache (:mod:`xdet_tasks.scoring.cache`) unless
    ``XDET_SCORER_CACHE=0``, so a re-run only sends texts the backend has not scored before. A routing
    list (``a|b``) is not wrapped: each of its scorers is this function's, with its own cache key.
    """
    from xdet_tasks.scoring.cache import CachedScorer, cache_enabled
    from xdet_tasks.scoring.registry import build_scorer, scorer_spec, spec_coverage
    from xdet_tasks.scoring.routing import RoutedScorer, is_routed

    key = scorer_spec(spec)
    if key not in _ACTIVE:
        if is_routed(key):
            _ACTIVE[key] = RoutedScorer(key, get_scorer, spec_coverage)
        else:
            scorer = build_scorer(key)
            _ACTIVE[key] = CachedScorer(scorer) if cache_enabled() else scorer
    return _ACTIVE[key]
