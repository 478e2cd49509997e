"""The benchmark's languages and what is known about each: one record per language.

A record says what a language is (script, family, whether words are spaced) and which of xdet's data
suites (:mod:`xdet_tasks.suites`) have it: ``paradetox`` (the paper's data), ``rtplx`` (RTP-LX),
``ptp`` (PolygloToxicityPrompts). Adding a language is one :class:`Language` record here (plus its
data in each suite it names); task YAMLs are regenerated from the records, and training, tables and
analysis read them. Two vocabularies follow, and are kept apart everywhere:

* :data:`ALL_LANGUAGES`: every record (what a language code may be anywhere: table columns, analysis);
* :data:`LANGUAGES`: the languages of the paper's data (multilingual ParaDetox): the paper's tasks,
  training pools, the ``local`` scorer and ``xdet scorer evaluate`` cover exactly these.
  :func:`suite_languages` gives any suite's.

Sources for the metadata:

* script: ISO 15924 (``Ethi``, ``Arab``, ``Latn``, ``Deva``, ``Cyrl``, ``Hani``, ``Hebr``, ``Jpan``,
  ``Hang``, ``Thai``), as the language is written in the suites' data; BCMS is written in both Latin
  and Cyrillic (RTP-LX maps it to ``srp_Cyrl``, ``hrv_Latn``, ``bos_Latn``), so it shares neither;
* family: Glottolog 5.0 top-level family. The paper's contrast is "Indo-European vs
  non-Indo-European" (Breaking mBad!, §5), so :attr:`Language.indo_european` is the flag the analysis uses;
* spaced: whether the language is written with spaces between words. Per-word perplexity divides by
  whitespace-separated words, so for a language written without them (Chinese, Japanese, Thai) a
  sentence is one "word" and the number means nothing: those languages get no per-word metric of ours.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdet_tasks.errors import DataError

PARADETOX, RTPLX, PTP = "paradetox", "rtplx", "ptp"


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1 where one exists (the dataset's split/config names), else ISO 639-3
    name: str
    script: str  # ISO 15924 name
    family: str  # Glottolog top-level family
    suites: tuple[str, ...]  # the data suites (xdet_tasks.suites) that have this language
    spaced: bool = True  # words separated by spaces, so per-word perplexity means something

    @property
    def indo_european(self) -> bool:
        return self.family == "Indo-European"


_ALL3 = (PARADETOX, RTPLX, PTP)
_NAT = (RTPLX, PTP)
RECORDS: tuple[Language, ...] = (
    Language("am", "Amharic", "Ethiopic", "Afro-Asiatic", (PARADETOX,)),
    Language("ar", "Arabic", "Arabic", "Afro-Asiatic", _ALL3),
    Language("de", "German", "Latin", "Indo-European", _ALL3),
    Language("en", "English", "Latin", "Indo-European", _ALL3),
    Language("es", "Spanish", "Latin", "Indo-European", _ALL3),
    Language("hi", "Hindi", "Devanagari", "Indo-European", _ALL3),
    Language("ru", "Russian", "Cyrillic", "Indo-European", _ALL3),
    Language("uk", "Ukrainian", "Cyrillic", "Indo-European", (PARADETOX, RTPLX)),
    Language("zh", "Chinese", "Han", "Sino-Tibetan", _ALL3, spaced=False),
    Language("cs", "Czech", "Latin", "Indo-European", _NAT),
    Language("da", "Danish", "Latin", "Indo-European", (RTPLX,)),
    Language("fi", "Finnish", "Latin", "Uralic", (RTPLX,)),
    Language("fr", "French", "Latin", "Indo-European", _NAT),
    Language("he", "Hebrew", "Hebrew", "Afro-Asiatic", (RTPLX,)),
    Language("hu", "Hungarian", "Latin", "Uralic", (RTPLX,)),
    Language("id", "Indonesian", "Latin", "Austronesian", _NAT),
    Language("it", "Italian", "Latin", "Indo-European", _NAT),
    Language("ja", "Japanese", "Japanese", "Japonic", _NAT, spaced=False),
    Language("ko", "Korean", "Hangul", "Koreanic", _NAT),
    Language("nl", "Dutch", "Latin", "Indo-European", _NAT),
    Language("nb", "Norwegian Bokmål", "Latin", "Indo-European", (RTPLX,)),
    Language("pl", "Polish", "Latin", "Indo-European", _NAT),
    Language("pt", "Portuguese", "Latin", "Indo-European", _NAT),
    Language("sv", "Swedish", "Latin", "Indo-European", _NAT),
    Language("sw", "Swahili", "Latin", "Atlantic-Congo", (RTPLX,)),
    Language("th", "Thai", "Thai", "Tai-Kadai", (RTPLX,), spaced=False),
    Language("tr", "Turkish", "Latin", "Turkic", (RTPLX,)),
    Language("hbs", "Bosnian-Croatian-Montenegrin-Serbian", "Latin+Cyrillic", "Indo-European", (RTPLX,)),
)
BY_CODE: dict[str, Language] = {lang.code: lang for lang in RECORDS}

#: Every known language code, in record order (the order of table columns and summaries).
ALL_LANGUAGES: tuple[str, ...] = tuple(BY_CODE)


def suite_languages(suite: str) -> tuple[str, ...]:
    """The languages a data suite has, in record order."""
    return tuple(lang.code for lang in RECORDS if suite in lang.suites)


#: The languages of the paper's data (multilingual ParaDetox): the paper's tasks, training and the local scorer.
LANGUAGES: tuple[str, ...] = suite_languages(PARADETOX)
#: The seven languages of the paper's tables: rows (training languages) and columns (evaluation).
PAPER_TRAIN_LANGUAGES: tuple[str, ...] = ("ar", "de", "en", "es", "hi", "ru", "zh")
PAPER_EVAL_LANGUAGES: tuple[str, ...] = ("am", "ar", "de", "en", "es", "hi", "ru")


def check_language(lang: str, suite: str | None = None) -> str:
    """``lang`` if it is a known language (and, with ``suite``, one that suite has); else a one-line error."""
    if lang not in BY_CODE:
        raise DataError(f"unknown language code {lang!r}; expected one of {', '.join(ALL_LANGUAGES)}")
    if suite is not None and suite not in BY_CODE[lang].suites:
        have = suite_languages(suite)
        raise DataError(f"language {lang!r} is not in the {suite} data; it has {', '.join(have)}")
    return lang


def order_languages(codes: set[str] | list[str] | tuple[str, ...]) -> list[str]:
    """``codes`` in record order, unknown codes last and sorted."""
    found = set(codes)
    return [c for c in ALL_LANGUAGES if c in found] + sorted(found - set(ALL_LANGUAGES))
