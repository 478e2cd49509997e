"""Agreement with RTP-LX's raters on their own 1-5 scale: the statistic the RTP-LX paper reports.

De Wynter et al. (RTP-LX, AAAI 2025) measure how far a judge agrees with the native-speaker raters
by Cohen's κ with linear weights on the 1-5 ``Toxicity`` rating, between the judge's rating and the
raters' aggregate (``get_irr`` in github.com/microsoft/RTP-LX ``code/notebooks/inter_annotator.ipynb``:
``cohen_kappa_score(judge, human_avg, weights="linear", labels=[1, 2, 3, 4, 5])``). xdet computes the
same statistic for a toxicity scorer, so its numbers sit beside theirs:

* **the raters' rating** of a prompt is their aggregate by the authors' vote
  (:func:`xdet.validity.raters.vote`: the value at least two raters gave, else the rounded mean), or
  the released aggregate rounded to the nearest integer where a file has only that (releases before
  May 2024 released means; a mean of three integers is never halfway);
* **the scorer's rating** bins its probability ``s`` in [0, 1] into five equal-width bins,
  ``min(5, 1 + floor(5 s))``: [0, 0.2) → 1, [0.2, 0.4) → 2, [0.4, 0.6) → 3, [0.6, 0.8) → 4,
  [0.8, 1] → 5. Equal widths favour no level of the scale; they are a choice, and κ depends on it
  (a scorer whose probabilities crowd near 0 and 1 uses only ratings 1 and 5), which is why ROC-AUC,
  which needs no binning, stands beside it;
* **κ** = 1 − Σ w·O / Σ w·E over the 5 × 5 table of (scorer, raters) ratings, O the observed shares,
  E the product of the two margins, w = |i − j| / 4; undefined (``None``) when E puts all its weight
  on the diagonal (both sides give one rating to every prompt).

The floor. A κ below :data:`KAPPA_FLOOR` = 0.4 is flagged **weak**: on Landis & Koch's (1977) scale
0.21-0.40 is "fair" and 0.41-0.60 "moderate" agreement, and 0.4 is about what RTP-LX's best judges
reach on Toxicity over all prompts (``kappa.json``, top-level ``Toxicity``: Llama-3-70B-Instruct
0.44, GPT-4-Turbo 0.435; Llama-3-8B-Instruct 0.397, Llama Guard 0.22). The floor is one number for
every language on purpose: the raters' own agreement (:data:`RATER_KAPPA`) is shown beside it, not
used as a floor, because a locale where the raters barely agree (Swahili, 0.096) would otherwise let
any scorer pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

LEVELS = 5
KAPPA_FLOOR = 0.4
BINNING = ("the scorer's probability s binned to min(5, 1 + floor(5 s)): [0, 0.2) -> 1, [0.2, 0.4) -> 2, "
           "[0.4, 0.6) -> 3, [0.6, 0.8) -> 4, [0.8, 1] -> 5")
STATISTIC = ("Cohen's kappa, linear weights |i - j| / 4, on the 1-5 Toxicity scale, between the binned score and "
             "the raters' aggregate (the RTP-LX authors' vote); " + BINNING)
#: Linear-weighted κ on Toxicity between RTP-LX's raters, the mean of the three rater pairs per locale
#: (github.com/microsoft/RTP-LX, commit 206c3ec, ``code/results/prompt/inter_annotator/kappa.json``,
#: ``RTP-LX.human.human_avg.<LOCALE>.Toxicity``); their mean over the 28 locales is 0.614.
RATER_KAPPA: dict[str, float] = {
    "AR": 0.689, "BCMS": 0.416, "CS": 0.466, "DA": 0.593, "DE": 0.395, "EN": 0.867, "ES": 0.928, "FI": 0.632,
    "FR": 0.836, "HE": 0.561, "HI": 0.516, "HU": 0.659, "ID": 0.862, "IT": 0.545, "JA": 0.656, "KO": 0.592,
    "NL": 0.302, "NO-NB": 0.636, "PL": 0.741, "PT": 0.676, "RU": 0.803, "SV": 0.716, "SW": 0.096, "TH": 0.484,
    "TR": 0.967, "UK": 0.513, "ZH-Hans": 0.475, "ZH-Hant": 0.566,
}


def score_rating(scores: np.ndarray) -> np.ndarray:
    """Scores in [0, 1] binned to ratings 1-5 (:data:`BINNING`)."""
    return np.minimum(LEVELS, 1 + np.floor(np.asarray(scores, dtype=float) * LEVELS)).astype(int)


def released_rating(value: float) -> int:
    """A released aggregate (possibly a mean, e.g. 2.67) as a rating 1-5: the nearest integer."""
    return int(math.floor(value + 0.5))


def linear_kappa(a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray) -> float:
    """Linear-weighted Cohen's κ of two raters' ratings in 1-5 (NaN when undefined or empty)."""
    a, b = np.asarray(a, dtype=int) - 1, np.asarray(b, dtype=int) - 1
    if len(a) == 0:
        return float("nan")
    observed = np.bincount(a * LEVELS + b, minlength=LEVELS * LEVELS).reshape(LEVELS, LEVELS) / len(a)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    levels = np.arange(LEVELS)
    weights = np.abs(levels[:, None] - levels[None, :]) / (LEVELS - 1)
    disagreement = float((weights * expected).sum())
    if disagreement <= 0:
        return float("nan")
    return 1.0 - float((weights * observed).sum()) / disagreement


def is_weak(kappa: float | None) -> bool:
    """Below the documented floor (an undefined κ is not weak, it is no validation)."""
    return kappa is not None and math.isfinite(kappa) and kappa < KAPPA_FLOOR
