"""Per-sentence perplexities under the evaluated model's own log-likelihood.

Normalised by whitespace words or UTF-8 bytes: the model's token count is not visible to an lm-eval
task, so the paper's per-token perplexity cannot be reproduced exactly.
"""

from __future__ import annotations

import math
import re


def count_words(text: str) -> int:
    """Whitespace words, as lm-eval counts them for ``word_perplexity``."""
    return len(re.split(r"\s+", text))


def count_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def _exp_neg(loglikelihood: float, units: int) -> float:
    try:
        return math.exp(-loglikelihood / units)
    except OverflowError:
        return math.inf


#: Perplexities per whitespace word: meaningless for a language written without spaces (a sentence is
#: one "word"), so a task of such a language does not report them (``Language.spaced``).
WORD_METRICS: frozenset[str] = frozenset({"word_perplexity", "mean_sentence_word_perplexity"})


def perplexity_sample_metrics(loglikelihood: float, text: str, *, spaced: bool = True) -> dict[str, object]:
    """lm-eval's corpus-level perplexity inputs plus this sentence's own perplexities (per-word ones only
    for a language written with spaces between words)."""
    words, nbytes = count_words(text), count_bytes(text)
    out: dict[str, object] = {
        "word_perplexity": (loglikelihood, words),
        "byte_perplexity": (loglikelihood, nbytes),
        "bits_per_byte": (loglikelihood, nbytes),
        "mean_sentence_word_perplexity": _exp_neg(loglikelihood, words),
        "mean_sentence_byte_perplexity": _exp_neg(loglikelihood, nbytes),
    }
    return out if spaced else {k: v for k, v in out.items() if k not in WORD_METRICS}
