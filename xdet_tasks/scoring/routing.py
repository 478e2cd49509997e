"""A scorer per language: ``--scorer 'textdetox|qwen3guard-0.6b'`` scores each language with the first
listed scorer that covers it.

No one scorer covers every language well: the TextDetox classifiers report results for about fifteen,
Perspective for others, a guard model for more. A routing spec lists full scorer specs separated by
``|`` (each may hold ``:`` and ``#``); a language goes to the first of them that covers it, and a
language none covers is refused before any model loads, naming what each listed scorer covers.

Coverage is read from a spec without building the scorer where the spec says it
(:meth:`~xdet_tasks.scoring.base.Scorer.coverage_of_spec`: ``local``, ``hf:...#langs=``, the
presets), so a listed scorer that serves none of the run's languages is never loaded; a backend whose
coverage only the built scorer knows (Perspective) is built to be asked. Each language's scorer keeps
its own identity everywhere: the score cache key, each completion record's ``scorer``, and the
provenance, which names the scorer of every language routed so far (:func:`language_provenance` reads
either form, so results files written before routing read as before).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from xdet_tasks.errors import ScorerError
from xdet_tasks.scoring.base import ENV_SCORER, Coverage, Scorer

SEPARATOR = "|"
#: the ``backend`` a routed scorer's provenance names; its ``languages`` map each language to its scorer's.
ROUTED = "routed"


def is_routed(spec: str) -> bool:
    return SEPARATOR in spec


def split_specs(spec: str) -> list[str]:
    """The specs of a routing list, in order; an empty or repeated one is refused in one line."""
    parts = [part.strip() for part in spec.split(SEPARATOR)]
    if any(not part for part in parts):
        raise ScorerError(f"scorer {spec!r} ({ENV_SCORER} or --scorer): an empty scorer in the '|' list; write "
                          "specs separated by '|', e.g. 'textdetox|hf:<model>#langs=sw'")
    repeated = sorted({p for p in parts if parts.count(p) > 1})
    if repeated:
        raise ScorerError(f"scorer {spec!r} ({ENV_SCORER} or --scorer): {', '.join(repeated)} listed twice; "
                          "a language goes to the first listed scorer that covers it")
    return parts


class RoutedScorer(Scorer):
    """Dispatches each language to the first listed spec that covers it. ``coverage`` reads a spec's
    declared languages (:func:`xdet_tasks.scoring.registry.spec_coverage`, which also refuses an unknown
    name before anything is built); ``build`` builds a listed scorer once, when first needed (the
    process-wide cached scorer, or a bare one)."""

    name = ROUTED

    def __init__(self, spec: str, build: Callable[[str], Scorer], coverage: Callable[[str], Coverage | None]):
        self.spec = spec
        self.specs = split_specs(spec)
        self._build = build
        #: per listed spec, the languages it declares (``None``: any); absent: only the built scorer knows
        self._declared = {s: cov.languages for s in self.specs if (cov := coverage(s)) is not None}
        self._built: dict[str, Scorer] = {}
        self._route: dict[str, str] = {}
        self.covers = self._union()

    def _union(self) -> tuple[str, ...] | None:
        if len(self._declared) < len(self.specs) or any(v is None for v in self._declared.values()):
            return None
        return tuple(dict.fromkeys(lang for langs in self._declared.values() for lang in langs or ()))

    def _scorer(self, spec: str) -> Scorer:
        if spec not in self._built:
            self._built[spec] = self._build(spec)
        return self._built[spec]

    def _covers(self, spec: str, lang: str) -> bool:
        if spec in self._declared:
            langs = self._declared[spec]
            return langs is None or lang in langs
        scorer = self._scorer(spec)  # a scorer that cannot be built is an error, not a "does not cover"
        try:
            scorer.check_language(lang)
        except ScorerError:
            return False
        return True

    def spec_for(self, lang: str) -> str:
        """The listed spec that scores ``lang``: the first that covers it (refused if none does)."""
        if lang not in self._route:
            chosen = next((s for s in self.specs if self._covers(s, lang)), None)
            if chosen is None:
                raise ScorerError(f"no scorer of {self.spec!r} covers language {lang!r} ({self._coverage_text()}); "
                                  f"add one that does to the list (--scorer / {ENV_SCORER})")
            self._route[lang] = chosen
        return self._route[lang]

    def _coverage_text(self) -> str:
        def text(spec: str) -> str:
            if spec not in self._declared:
                return f"{spec}: asked, does not"
            langs = self._declared[spec]
            return f"{spec}: " + ("any language" if langs is None else " ".join(langs))

        return "; ".join(text(s) for s in self.specs)

    def for_language(self, lang: str) -> Scorer:
        scorer = self._scorer(self.spec_for(lang))
        scorer.check_language(lang)  # a declared coverage the built scorer disagrees with is refused, not trusted
        return scorer

    def check_language(self, lang: str) -> None:
        self.for_language(lang)

    def cache_language(self, lang: str) -> str:
        return self.for_language(lang).cache_language(lang)

    def score(self, texts: Sequence[str], lang: str) -> list[float | None]:
        return self.for_language(lang).score(texts, lang)

    def score_stream(self, texts: Sequence[str], lang: str):
        return self.for_language(lang).score_stream(texts, lang)

    def routes(self) -> dict[str, str]:
        """``{language: listed spec}`` of every language routed so far."""
        return dict(self._route)

    def provenance(self, langs: Iterable[str] | None = None) -> dict[str, Any]:
        """The scorer of each language (``langs``, default: every language routed so far)."""
        chosen = sorted(self._route if langs is None else set(langs))
        by_lang = {lang: {"spec": self.spec_for(lang), **self.for_language(lang).provenance()} for lang in chosen}
        idents = {lang: f"{p['backend']}@{p.get('version')}" for lang, p in by_lang.items()}
        digest = hashlib.sha256(repr(sorted(idents.items())).encode()).hexdigest()[:16]
        return {"backend": ROUTED, "version": digest, "attribute": self.attribute, "routing": list(self.specs),
                "rule": "each language is scored by the first listed scorer that covers it", "languages": by_lang}

    @property
    def ident(self) -> str:
        return f"{ROUTED}({self.spec})"


def language_provenance(provenance: Mapping[str, Any] | None, lang: str | None) -> dict[str, Any] | None:
    """The provenance of the scorer that scored ``lang``: the entry of a routed provenance, or a single
    scorer's provenance as it is (every language had that scorer)."""
    if not isinstance(provenance, Mapping):
        return None
    if provenance.get("backend") == ROUTED:
        found = (provenance.get("languages") or {}).get(lang) if lang else None
        return dict(found) if isinstance(found, Mapping) else None
    return dict(provenance)


def run_provenance(scorer: Scorer, langs: Sequence[str]) -> dict[str, Any]:
    """What a run record stores: a routed scorer's provenance restricted to the run's languages (another
    run in the same process may have routed others), any other scorer's as it is."""
    if isinstance(scorer, RoutedScorer):
        return scorer.provenance(langs)
    return scorer.provenance()
