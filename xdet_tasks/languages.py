"""The benchmark's languages and what is known about each: one record per language.

Adding a language is one :class:`Language` record here (plus its data in the dataset); the task
YAMLs are regenerated from :data:`LANGUAGES`, and training, tables and analysis read the records.

Sources for the metadata:

* script: ISO 15924 (``Ethi``, ``Arab``, ``Latn``, ``Deva``, ``Cyrl``, ``Hani``), as the language is
  written in multilingual ParaDetox;
* family: Glottolog 5.0 top-level family (Afro-Asiatic, Indo-European, Sino-Tibetan). The paper's
  contrast is "Indo-European vs non-Indo-European" (Breaking mBad!, §5), so :attr:`Language.indo_european`
  is the flag the analysis uses;
* spaced: whether the language is written with spaces between words. Per-word perplexity divides by
  whitespace-separated words, so for a language written without them (Chinese, Japanese, Thai) a
  sentence is one "word" and the number means nothing: those languages get no per-word metric of ours.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdet_tasks.errors import DataError


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1, as the dataset's split names
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
)
BY_CODE: dict[str, Language] = {lang.code: lang for lang in RECORDS}

LANGUAGES: tuple[str, ...] = tuple(BY_CODE)
#: The seven languages of the paper's tables: rows (training languages) and columns (evaluation).
PAPER_TRAIN_LANGUAGES: tuple[str, ...] = ("ar", "de", "en", "es", "hi", "ru", "zh")
PAPER_EVAL_LANGUAGES: tuple[str, ...] = ("am", "ar", "de", "en", "es", "hi", "ru")


def check_language(lang: str) -> str:
    if lang not in BY_CODE:
        raise DataError(f"unknown language code {lang!r}; expected one of {', '.join(LANGUAGES)}")
    return lang
