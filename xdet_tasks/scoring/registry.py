"""Which scorer a spec names: a preset, or a backend registered lazily by module path.

A spec is ``name`` or ``name:argument`` (``textdetox``, ``local``, ``perspective:qps=10``,
``hf:<model>#label=1``), or a routing list of specs separated by ``|`` (``textdetox|hf:<model>#langs=sw``:
each language scored by the first that covers it, :mod:`xdet_tasks.scoring.routing`). Presets (:mod:`xdet_tasks.scoring.presets`) are rows of one table, each an
open classifier pinned to a revision and served by the ``hf`` backend; ``textdetox`` is the default.
Generative presets (:mod:`xdet_tasks.scoring.generative_presets`) are a guard or judge model pinned the
same way and served by the ``guard`` or ``judge`` backend.
Adding a backend is one module with a :class:`~xdet_tasks.scoring.base.Scorer` subclass plus one
``BACKENDS.register`` line below; nothing imports the backend until a spec names it, so the plugin
stays fast to load. lm-eval's own :class:`~lm_eval.api.registry.Registry` does the lazy loading.
"""

from __future__ import annotations

import os

from lm_eval.api.registry import Registry

from xdet_tasks.errors import ScorerError
from xdet_tasks.scoring.base import ENV_SCORER, Coverage, Scorer

DEFAULT_SCORER = "textdetox"

BACKENDS: Registry[type[Scorer]] = Registry("xdet scorer backend", base_cls=Scorer)
BACKENDS.register("local", target="xdet_tasks.scoring.local:LocalScorer")
BACKENDS.register("hf", target="xdet_tasks.scoring.hf:HFScorer")
BACKENDS.register("perspective", target="xdet_tasks.scoring.perspective:PerspectiveScorer")
BACKENDS.register("guard", target="xdet_tasks.scoring.guard:GuardScorer")
BACKENDS.register("judge", target="xdet_tasks.scoring.judge:JudgeScorer")


def register_backend(name: str, target: type[Scorer] | str) -> None:
    """Register a backend class, or its ``"module:Class"`` path, under ``name``."""
    BACKENDS.register(name, target=target)


def scorer_spec(spec: str | None = None) -> str:
    """The spec in force: ``spec``, else ``XDET_SCORER``, else the default."""
    return (spec or os.environ.get(ENV_SCORER) or DEFAULT_SCORER).strip()


def build_scorer(spec: str | None = None) -> Scorer:
    """A fresh scorer for ``spec`` (default: ``XDET_SCORER`` or the default), without the score cache; a
    routing list builds each of its scorers this way when a language first needs it."""
    from xdet_tasks.scoring.generative_presets import GENERATIVE_PRESETS, build_generative_preset
    from xdet_tasks.scoring.presets import PRESETS, build_preset
    from xdet_tasks.scoring.routing import RoutedScorer, is_routed

    spec = scorer_spec(spec)
    if is_routed(spec):
        return RoutedScorer(spec, build_scorer, spec_coverage)
    name, _, arg = spec.partition(":")
    if name in PRESETS:
        return build_preset(name, arg)
    if name in GENERATIVE_PRESETS:
        return build_generative_preset(name, arg)
    return _backend(spec).from_spec(arg)


def spec_coverage(spec: str) -> Coverage | None:
    """The languages one (not routed) ``spec`` covers, read from the spec alone; ``None`` when only the
    built scorer knows. An unknown name is refused here, before anything is built."""
    from xdet_tasks.scoring.generative_presets import GENERATIVE_PRESETS
    from xdet_tasks.scoring.presets import PRESETS

    name, _, arg = spec.partition(":")
    if name in PRESETS:
        return Coverage(PRESETS[name].languages)
    if name in GENERATIVE_PRESETS:
        return Coverage(GENERATIVE_PRESETS[name].languages)
    return _backend(spec).coverage_of_spec(arg)


def _backend(spec: str) -> type[Scorer]:
    from xdet_tasks.scoring.generative_presets import GENERATIVE_PRESETS
    from xdet_tasks.scoring.presets import PRESETS

    name = spec.partition(":")[0]
    backend = BACKENDS.get(name, None)
    if backend is None:
        raise ScorerError(
            f"scorer {spec!r} ({ENV_SCORER} or --scorer): unknown scorer backend {name!r}; expected a preset "
            f"({', '.join(sorted([*PRESETS, *GENERATIVE_PRESETS]))}) or a backend ({', '.join(sorted(BACKENDS.keys()))}; "
            "hf takes hf:<model id or path>, guard guard:<model>#format=<name>, judge judge:<model>#rubric=<name>; "
            "a scorer per language: 'a|b')"
        )
    return backend
