"""Units of text that mean something in every script: words where words are spaced, characters where not.

Distinct-n and repetition count n-grams of units. Splitting on spaces (DExperts'
``scripts/evaluation/evaluate_generations.py``) makes a whole Chinese, Japanese or Thai clause one
"word"; Li et al. 2024 (BatsResearch/cross-lingual-detox ``xg/eval/metric_diversity.py``) count mT5
tokenizer pieces instead, which ties the number to one model's vocabulary and a download. Here a
unit is decided by the script of each character, with Unicode's own data (the ``regex`` module's
script and grapheme-cluster tables), so it needs no model and no language label, and a completion
that switches script (a Chinese prompt answered in English) is counted in the units of each part:

* a character of a script written without spaces between words is one unit: one **extended
  grapheme cluster** (Unicode Standard Annex #29, §3: a base character with its combining marks, so a
  Thai consonant keeps its vowel and tone marks). The scripts are those UAX #29 §4 ("Word
  Boundaries") names as needing more than spaces to find words: Thai, Lao, Khmer, Myanmar and the
  ideographic writing of Chinese and Japanese (Han, Hiragana, Katakana, by Script_Extensions, so the
  prolonged-sound mark and CJK punctuation count too); and emoji (Extended_Pictographic, UTS #51),
  which are written without spaces as well. A Chinese character is a morpheme, a Japanese kana a
  syllable, a Thai cluster a syllable part: finer than words, but the same unit for every text of
  the script;
* any other run of characters between whitespace is one unit, a **whitespace word**, as DExperts
  counts them (punctuation stays attached, as there).

Text is NFC-normalised first, so composed and decomposed spellings of a letter are one unit.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

#: Scripts written without spaces between words (UAX #29 §4), counted one grapheme cluster at a time.
UNSPACED_SCRIPTS: tuple[str, ...] = ("Han", "Hiragana", "Katakana", "Thai", "Lao", "Khmer", "Myanmar")


@lru_cache(maxsize=1)
def _pattern():
    import regex  # Unicode script properties and \X, which the standard library's re lacks

    unspaced = "".join(f"\\p{{scx={script}}}" for script in UNSPACED_SCRIPTS) + r"\p{Extended_Pictographic}"
    return regex.compile(rf"(?=[{unspaced}])\X|[^\s{unspaced}]+")


def text_units(text: str) -> list[str]:
    """The units of ``text``: a grapheme cluster per character of an unspaced script, else a whitespace word."""
    return _pattern().findall(unicodedata.normalize("NFC", text))
