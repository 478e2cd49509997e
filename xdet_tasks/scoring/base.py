"""The toxicity-scorer interface and the registry that picks a backend from ``XDET_SCORER``.

Every backend scores a batch of texts of one language and returns probabilities in [0, 1], or
``None`` for a text it could not score (never a silent 0). Backends are chosen without editing task
YAML: ``XDET_SCORER=local`` (default), ``perspective``, ``hf:<model id or path>``.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

ENV_SCORER = "XDET_SCORER"
DEFAULT_SCORER = "local"
TOXIC_THRESHOLD = 0.5


class ScorerError(RuntimeError):
    """A scorer could not be built or used (bad spec, unsupported language, missing key...)."""


class UnscoredError(ScorerError):
    """Some texts could not be scored after all retries; they are never recorded as 0."""

    def __init__(self, message: str, unscored: int):
        super().__init__(message)
        self.unscored = unscored


class Scorer(ABC):
    """A toxicity scorer. Subclasses set ``name`` and ``version`` and implement :meth:`score`."""

    #: backend name as written in ``XDET_SCORER`` (``local``, ``perspective``, ``hf``).
    name: str = "scorer"
    #: what makes two scores comparable: a model/content hash, or API version and date.
    version: str = "0"
    #: the attribute scored (Perspective's vocabulary).
    attribute: str = "TOXICITY"

    @abstractmethod
    def score(self, texts: Sequence[str], lang: str) -> list[float | None]:
        """Toxicity probabilities in [0, 1] for ``texts`` written in ``lang`` (``None`` = unscored)."""

    def check_language(self, lang: str) -> None:
        """Raise :class:`ScorerError` if ``lang`` cannot be scored; called before a run starts."""
        return None  # every language is accepted unless a backend says otherwise

    def provenance(self) -> dict[str, Any]:
        """What produced the scores; stored in every results file and logged sample."""
        return {"backend": self.name, "version": self.version, "attribute": self.attribute}

    @property
    def ident(self) -> str:
        return f"{self.name}@{self.version}"


_BACKENDS: dict[str, Callable[[str], Scorer]] = {}


def register_backend(name: str, factory: Callable[[str], Scorer]) -> None:
    """Register ``factory(argument)`` for specs ``name`` or ``name:argument``."""
    _BACKENDS[name] = factory


def _load_builtin_backends() -> None:
    # Importing registers them; kept lazy so that the plugin imports fast.
    from xdet_tasks.scoring import local  # noqa: F401

    for module in ("perspective", "hf"):
        try:
            __import__(f"xdet_tasks.scoring.{module}")
        except ModuleNotFoundError as err:  # pragma: no cover - optional backend module missing
            if err.name != f"xdet_tasks.scoring.{module}":
                raise


def scorer_spec(spec: str | None = None) -> str:
    return (spec or os.environ.get(ENV_SCORER) or DEFAULT_SCORER).strip()


def build_scorer(spec: str | None = None) -> Scorer:
    """A fresh scorer for ``spec`` (default: ``XDET_SCORER`` or ``local``), without caching."""
    spec = scorer_spec(spec)
    _load_builtin_backends()
    name, _, arg = spec.partition(":")
    if name not in _BACKENDS:
        raise ScorerError(
            f"{ENV_SCORER}={spec!r}: unknown scorer backend {name!r}; expected one of "
            f"{', '.join(sorted(_BACKENDS))} (hf takes hf:<model id or path>)"
        )
    return _BACKENDS[name](arg)
