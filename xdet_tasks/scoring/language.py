"""The language a completion is written in: a language identifier shipped inside its package, as a record.

A model fine-tuned on English text and prompted in Hindi may continue in English, or in nothing
recognisable; a toxicity classifier then rates the output low, and the Δ for Hindi looks like
cross-lingual transfer. The Language Confusion Benchmark (Marchisio et al. 2024,
for-ai/language-confusion ``compute_metrics.py``) measures this with a language identifier on each
line (fastText ``lid.176.bin``, a prediction below 0.3 counted as unknown, lines under 5 tokens
skipped). xdet does the same for every completion, with an identifier that ships its model inside
its wheel (nothing is downloaded at run time): :data:`IDENTIFIERS` holds it as a record, with
everything that changes its answers (package version, label mapping, confidence floor, minimum
length). BENCHMARKS.md (P14) compares the candidates and says why this one; the floor and the
minimum length were read off the same measurement.

Labels become xdet's language codes (:func:`to_code`): a script or region suffix is dropped
(``zh-Hant`` -> ``zh``), deprecated ISO 639-1 codes are replaced (``iw`` -> ``he``), and an
individual language of an ISO 639-3 macrolanguage that xdet evaluates as one language counts as
that language: Bosnian, Croatian, Serbian and Montenegrin (either script) are ``hbs``; Norwegian in
either written standard (``no``, ``nb``, ``nn``) is ``nb``; Mandarin, Wu, Cantonese and the other
Chinese labels, simplified or traditional, are ``zh``; Egyptian, Moroccan and the other Arabic
varieties are ``ar``. The identifier's probabilities of labels that map to one code are summed
before the best code is taken, so BCMS text whose mass is split between ``bs``, ``hr`` and ``sr`` is
still ``hbs`` with their combined confidence. Any other label is kept as the identifier wrote it.

A completion is of unknown language (:data:`UNKNOWN`, ISO 639-2 "undetermined") when it has fewer
than ``min_tokens`` tokens (:func:`count_tokens`; the identifier is not asked, confidence ``None``),
when the best code's confidence is below ``confidence_floor``, or when the identifier says it is no
language at all (``zxx``: numbers, markup).
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from xdet_tasks.errors import DataError

#: ISO 639-2 "undetermined": too short, too unsure, or no language.
UNKNOWN = "und"

#: Identifier labels that are an individual language of a macrolanguage xdet evaluates as one
#: language (ISO 639-3 macrolanguage mappings, SIL), and deprecated ISO 639-1 codes, -> xdet code.
MEMBERS: dict[str, tuple[str, ...]] = {
    "hbs": ("bs", "hr", "sr", "sh", "cnr", "bos", "hrv", "srp"),
    "nb": ("no", "nn", "nor", "nob", "nno"),
    "zh": ("cmn", "wuu", "yue", "gan", "hak", "hsn", "nan", "cdo", "cjy", "czh", "cpx", "mnp", "lzh", "zho"),
    "ar": ("arb", "arz", "ary", "aeb", "apc", "ajp", "acm", "acq", "afb", "ars", "ayl", "ayp", "ara"),
    "he": ("iw",),
    "id": ("in",),
}
_TO_CODE: dict[str, str] = {label: code for code, labels in MEMBERS.items() for label in labels}
_SUFFIX = re.compile(r"[-_].*$")


def to_code(label: str) -> str:
    """An identifier's label as an xdet language code (see the module docstring); others unchanged."""
    base = _SUFFIX.sub("", label.strip()).lower()
    return _TO_CODE.get(base, base)


#: Scripts written without spaces between words: each of their characters is one token
#: (Thai, Lao, Khmer, Myanmar, kana, CJK ideographs and their extensions).
_UNSPACED = "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_UNSPACED}]|[^\s{_UNSPACED}]+")


def count_tokens(text: str) -> int:
    """Tokens of ``text`` as the minimum length counts them: whitespace-separated words holding a letter,
    and each character of a script written without spaces (so Chinese counts characters, as the
    benchmark's short texts do)."""
    return sum(any(ch.isalpha() for ch in tok) for tok in _TOKEN.findall(text))


@dataclass(frozen=True)
class Identification:
    """What the identifier says about one completion."""

    lang: str  # an xdet code, another ISO 639 code, or UNKNOWN
    confidence: float | None  # probability of ``lang`` (or of the best code when under the floor); None: not asked


@dataclass(frozen=True)
class Identifier:
    """A language identifier that ships its model inside its package."""

    key: str
    package: str  # the distribution (PyPI name) whose wheel holds the model
    model: str  # the model file inside it
    licence: str
    confidence_floor: float  # below: UNKNOWN
    min_tokens: int  # fewer tokens (count_tokens): UNKNOWN without asking
    no_language: tuple[str, ...]  # labels meaning "not a language": UNKNOWN
    source: str
    loader: str = field(default="")  # key of the function that loads its model (:data:`_LOADERS`); default: key

    @property
    def version(self) -> str:
        try:
            return importlib.metadata.version(self.package)
        except importlib.metadata.PackageNotFoundError:
            raise DataError(f"language identifier {self.key!r} needs the package {self.package!r}: "
                            f"pip install {self.package}") from None

    @property
    def ident(self) -> str:
        """What makes two identifications comparable: package version, floor and minimum length."""
        return f"{self.key}@{self.version} floor={self.confidence_floor:g} min_tokens={self.min_tokens}"


IDENTIFIERS: dict[str, Identifier] = {
    i.key: i
    for i in (
        Identifier(
            "py3langid", "py3langid", "py3langid/data/model.npz.xz (139 languages and zxx)", "BSD-3-Clause",
            # the Language Confusion Benchmark's floor and minimum line length; BENCHMARKS.md P14 measures them here
            confidence_floor=0.3, min_tokens=5, no_language=("zxx",),
            source="py3langid 0.4.0 (Lui & Baldwin 2012's langid.py, retrained by A. Barbaresi), normalised "
            "probabilities (LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True).rank)",
        ),
    )
}
DEFAULT_IDENTIFIER = "py3langid"


def get_identifier_record(key: str = DEFAULT_IDENTIFIER) -> Identifier:
    if key not in IDENTIFIERS:
        raise DataError(f"unknown language identifier {key!r}; expected one of {', '.join(IDENTIFIERS)}")
    return IDENTIFIERS[key]


class Model(Protocol):
    """What an identifier's package gives: its best label, every label ranked, all with probabilities."""

    labels: list[str]

    def classify(self, text: str) -> tuple[str, float]: ...

    def rank(self, text: str) -> list[tuple[str, float]]: ...


def _py3langid() -> Model:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


#: How each identifier's model is loaded (:attr:`Identifier.loader`).
_LOADERS: dict[str, Callable[[], Model]] = {"py3langid": _py3langid}


class LanguageIdentifier:
    """An :class:`Identifier` loaded: :meth:`identify` gives each text's :class:`Identification`."""

    def __init__(self, record: Identifier) -> None:
        self.record = record
        self.ident = record.ident  # fails now, with the install command, if the package is missing
        self._model = _LOADERS[record.loader or record.key]()
        self.labels = list(self._model.labels)
        self._code = {label: UNKNOWN if label in record.no_language else to_code(label) for label in self.labels}
        codes = list(self._code.values())
        #: codes only one label maps to: their probability needs no folding
        self._alone = {code for code in codes if codes.count(code) == 1}

    def codes(self) -> set[str]:
        """Every code it can answer (its labels through :func:`to_code`)."""
        return set(self._code.values()) - {UNKNOWN}

    def identify_one(self, text: str) -> Identification:
        rec = self.record
        if count_tokens(text) < rec.min_tokens:
            return Identification(UNKNOWN, None)
        label, probability = self._model.classify(text)
        code = self._code[label]
        if probability > 0.5 and code in self._alone:
            # the rest share less than 0.5: no folding can beat it, and its own needs none (twice as fast)
            best, confidence = code, float(probability)
        else:
            folded: dict[str, float] = {}
            for label, probability in self._model.rank(text):
                folded[self._code[label]] = folded.get(self._code[label], 0.0) + probability
            best = max(folded, key=folded.__getitem__)
            confidence = float(folded[best])
        return Identification(UNKNOWN if confidence < rec.confidence_floor else best, confidence)

    def identify(self, texts: Sequence[str]) -> list[Identification]:
        return [self.identify_one(text) for text in texts]


_ACTIVE: dict[str, LanguageIdentifier] = {}


def get_identifier(key: str = DEFAULT_IDENTIFIER) -> LanguageIdentifier:
    """The process-wide identifier for ``key``, loaded once."""
    if key not in _ACTIVE:
        _ACTIVE[key] = LanguageIdentifier(get_identifier_record(key))
    return _ACTIVE[key]


IDENTIFIER_PREFIX = "xdet language identifier: "


class IdentifierProvenance:
    """Stands in the task config and prints as the identifier's :attr:`Identifier.ident` when lm-eval
    saves results, so a results file says which identifier made its language metrics."""

    def __str__(self) -> str:
        return IDENTIFIER_PREFIX + get_identifier().ident

    __repr__ = __str__

    def __deepcopy__(self, memo: dict) -> IdentifierProvenance:
        return self


def parse_identifier(text: object) -> str | None:
    """The identifier a task config names (:class:`IdentifierProvenance`), or ``None``."""
    if isinstance(text, str) and text.startswith(IDENTIFIER_PREFIX):
        return text[len(IDENTIFIER_PREFIX):]
    return None
