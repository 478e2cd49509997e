"""The benchmark's languages and what is known about each: one record per language.

A record says what a language is (script, family, whether words are spaced); which data suites have
it is the suites' own fact (:mod:`xdet_tasks.suites.records`, each suite's ``languages``). Adding a
language is one :class:`Language` record here plus its code in each suite that has its data; task
YAMLs are regenerated from the records, and training, tables and analysis read them.
:data:`ALL_LANGUAGES` is every record (what a language code may be anywhere: table columns,
analysis); the paper's nine (:data:`xdet_tasks.suites.records.LANGUAGES`) are the ParaDetox suite's.

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


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1 where one exists (the dataset's split/config names), else ISO 639-3
    name: str
    script: str  # ISO 15924 name
    family: str  # Glottolog top-level family
    spaced: bool = True  # words separated by spaces, so per-word perplexity means something

    @property
    def indo_european(self) -> bool:
        return self.family == "Indo-European"


RECORDS: tuple[Language, ...] = (
    Language("am", "Amharic", "Ethiopic", "Afro-Asiatic"),
    Language("ar", "Arabic", "Arabic", "Afro-Asiatic"),
    Language("de", "German", "Latin", "Indo-European"),
    Language("en", "English", "Latin", "Indo-European"),
    Language("es", "Spanish", "Latin", "Indo-European"),
    Language("hi", "Hindi", "Devanagari", "Indo-European"),
    Language("ru", "Russian", "Cyrillic", "Indo-European"),
    Language("uk", "Ukrainian", "Cyrillic", "Indo-European"),
    Language("zh", "Chinese", "Han", "Sino-Tibetan", spaced=False),
    Language("cs", "Czech", "Latin", "Indo-European"),
    Language("da", "Danish", "Latin", "Indo-European"),
    Language("fi", "Finnish", "Latin", "Uralic"),
    Language("fr", "French", "Latin", "Indo-European"),
    Language("he", "Hebrew", "Hebrew", "Afro-Asiatic"),
    Language("hu", "Hungarian", "Latin", "Uralic"),
    Language("id", "Indonesian", "Latin", "Austronesian"),
    Language("it", "Italian", "Latin", "Indo-European"),
    Language("ja", "Japanese", "Japanese", "Japonic", spaced=False),
    Language("ko", "Korean", "Hangul", "Koreanic"),
    Language("nl", "Dutch", "Latin", "Indo-European"),
    Language("nb", "Norwegian Bokmål", "Latin", "Indo-European"),
    Language("pl", "Polish", "Latin", "Indo-European"),
    Language("pt", "Portuguese", "Latin", "Indo-European"),
    Language("sv", "Swedish", "Latin", "Indo-European"),
    Language("sw", "Swahili", "Latin", "Atlantic-Congo"),
    Language("th", "Thai", "Thai", "Tai-Kadai", spaced=False),
    Language("tr", "Turkish", "Latin", "Turkic"),
    Language("hbs", "Bosnian-Croatian-Montenegrin-Serbian", "Latin+Cyrillic", "Indo-European"),
)
BY_CODE: dict[str, Language] = {lang.code: lang for lang in RECORDS}

#: Every known language code, in record order (the order of table columns and summaries).
ALL_LANGUAGES: tuple[str, ...] = tuple(BY_CODE)


#: The seven languages of the paper's tables: rows (training languages) and columns (evaluation).
PAPER_TRAIN_LANGUAGES: tuple[str, ...] = ("ar", "de", "en", "es", "hi", "ru", "zh")
PAPER_EVAL_LANGUAGES: tuple[str, ...] = ("am", "ar", "de", "en", "es", "hi", "ru")


def check_language(lang: str) -> str:
    """``lang`` if it is a known language; else a one-line error (a suite's: ``suites.records.check_language``)."""
    if lang not in BY_CODE:
        raise DataError(f"unknown language code {lang!r}; expected one of {', '.join(ALL_LANGUAGES)}")
    return lang


def order_languages(codes: set[str] | list[str] | tuple[str, ...]) -> list[str]:
    """``codes`` in record order, unknown codes last and sorted."""
    found = set(codes)
    return [c for c in ALL_LANGUAGES if c in found] + sorted(found - set(ALL_LANGUAGES))
