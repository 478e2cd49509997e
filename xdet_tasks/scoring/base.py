"""The toxicity-scorer interface every backend implements.

A backend scores a batch of texts of one language and returns probabilities in [0, 1], or ``None``
for a text it could not score (never a silent 0). The optional hooks below have defaults that suit a
local model; a remote API overrides them (Perspective streams responses, dates its scores and maps
some languages onto others).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

TOXIC_THRESHOLD = 0.5
#: The environment variable naming the scorer spec (``xdet --scorer`` sets it; plain ``lm_eval`` reads it).
ENV_SCORER = "XDET_SCORER"
#: Texts a non-streaming backend scores per call: also the most a crash can lose before the cache.
CHUNK = 64


@dataclass(frozen=True)
class Coverage:
    """The languages a spec says its scorer covers, known before the scorer is built (``None``: any)."""

    languages: tuple[str, ...] | None


class Scorer(ABC):
    """A toxicity scorer. Subclasses set ``name`` and ``version`` and implement :meth:`score`."""

    #: backend name as written in ``XDET_SCORER`` (``local``, ``perspective``, ``hf``).
    name: str = "scorer"
    #: what makes two scores comparable: a model/content hash, or API version and date.
    version: str = "0"
    #: the attribute scored (Perspective's vocabulary).
    attribute: str = "TOXICITY"
    #: True for a live service whose model may change: results then record when scores were obtained.
    dated_scores: bool = False
    #: the languages it is known to score; ``None``: any (the user vouches, e.g. ``hf:`` without ``langs=``).
    covers: tuple[str, ...] | None = None
    #: True when a text is rated in the context of the prompt that produced it (``contexts=`` of :meth:`score`):
    #: the score then depends on both, and the cache keys it by both.
    uses_context: bool = False

    @classmethod
    def from_spec(cls, arg: str) -> Scorer:
        """Build from the part of the spec after ``name:`` (``""`` when there is none)."""
        return cls(arg)  # type: ignore[call-arg]

    @classmethod
    def coverage_of_spec(cls, arg: str) -> Coverage | None:
        """What the spec's argument says the scorer covers, without building it (no weights read); ``None``
        when only the built scorer can tell (a routing list then builds it to ask)."""
        return None

    @abstractmethod
    def score(self, texts: Sequence[str], lang: str) -> list[float | None]:
        """Toxicity probabilities in [0, 1] for ``texts`` written in ``lang`` (``None`` = unscored).

        A backend with :attr:`uses_context` also takes ``contexts=``: per text, the prompt it answers
        (``None``: rated on its own). Callers pass it only to such backends.
        """

    def score_stream(self, texts: Sequence[str], lang: str,
                     contexts: Sequence[str | None] | None = None) -> Iterator[tuple[int, float | None]]:
        """``(index, score)`` pairs as they become available, so a cache can store each at once.

        The default scores :data:`CHUNK` texts per :meth:`score` call; a remote backend yields each
        response as it arrives. ``contexts`` is handed on only to a backend that :attr:`uses_context`.
        """
        for start in range(0, len(texts), CHUNK):
            part = texts[start : start + CHUNK]
            if self.uses_context and contexts is not None:
                values = self.score(part, lang, contexts=contexts[start : start + CHUNK])  # type: ignore[call-arg]
            else:
                values = self.score(part, lang)
            if len(values) != len(part):
                raise RuntimeError(f"{self.ident} returned {len(values)} scores for {len(part)} texts")
            yield from ((start + k, v) for k, v in enumerate(values))

    def check_language(self, lang: str) -> None:
        """Raise :class:`~xdet_tasks.errors.ScorerError` if ``lang`` cannot be scored; called before a run."""
        if self.covers is not None and lang not in self.covers:
            from xdet_tasks.errors import ScorerError

            raise ScorerError(f"scorer {self.ident} does not cover language {lang!r} (it covers "
                              f"{', '.join(self.covers)}); choose a scorer that does (--scorer / XDET_SCORER)")

    def for_language(self, lang: str) -> Scorer:
        """The scorer that scores ``lang``: this one (a routing list answers per language)."""
        return self

    def cache_language(self, lang: str) -> str:
        """The language a score is cached under; differs from ``lang`` when a backend scores it as another."""
        self.check_language(lang)
        return lang

    def provenance(self) -> dict[str, Any]:
        """What produced the scores; stored in every results file and logged sample."""
        return {"backend": self.name, "version": self.version, "attribute": self.attribute}

    @property
    def ident(self) -> str:
        return f"{self.name}@{self.version}"
