"""``xdet scorer evaluate``: how well a toxicity scorer separates toxic sentences from their paraphrases.

Every xdet number is a scorer's output, so the scorer itself needs a report card per language before
its toxic rates can be trusted: Perspective is closing and open classifiers differ by language. The
held-out test pairs of each language (100 toxic sentences, label 1, and their human-written neutral
paraphrases, label 0) are scored and summarised as:

* ``roc_auc``: how well scores rank toxic above neutral (threshold-free);
* ``accuracy``: at the project's fixed threshold 0.5 (``score >= 0.5`` is toxic), the threshold every
  ``toxic_rate`` uses;
* ``threshold``: the threshold that maximises balanced accuracy on these pairs (ties: the highest
  such threshold), i.e. "where this scorer's 0.5 should have been". It is an estimate of a setting,
  fitted on all pairs, and is not itself used to judge the scorer;
* ``balanced_accuracy``: cross-fitted, so that the threshold it uses is never chosen on the pairs it
  is measured on. The pairs are split into :data:`CV_FOLDS` seeded folds; each fold is classified
  at the best threshold of the other folds, and the balanced accuracy is that of the pooled
  out-of-fold predictions (an in-sample fitted threshold would flatter the scorer);
* ``ece``: expected calibration error with 10 equal-width bins on [0, 1] (the last one closed),
  ``sum_b (n_b / n) * |mean label in b - mean score in b|``;
* ``brier``: mean squared difference between score and label.

Each comes with a 95 % bootstrap interval (``n_boot`` replicates). Pairs, not texts, are
resampled: a toxic sentence and its paraphrase share topic, length and wording, so their scores are
correlated, and resampling texts independently would understate the variance and unbalance the
classes. A resampled pair keeps its fold, so copies of one pair never sit on both sides of the
cross-fitting. Each language has its own seeded generators (from ``seed`` and the language code), so
its numbers do not depend on which other languages are evaluated. The ``mean`` row averages the
evaluated languages; its replicates are the replicate-wise averages.

Intervals are bias-corrected percentile intervals (:func:`xdet.stats.bias_corrected_interval`): the
percentile interval of the replicates moved by ``point - median(replicates)``. Resampling biases
some of these statistics (duplicated pairs fill ECE's bins unevenly and raise it: the plain
percentile interval of the ``local`` scorer's mean ECE was [0.100, 0.125] around a point estimate
of 0.097), and the shift removes that bias, so every interval contains its own point estimate. For
the unbiased columns (ROC-AUC, accuracy, Brier) the shift is close to 0.

Unscored texts (``None``) are excluded and counted, never scored 0. Languages the scorer refuses
(:meth:`check_language` raises :class:`ScorerError`) are listed under ``refused`` with its reason.
Point estimates use scikit-learn; the bootstrap replicates use equivalent NumPy formulas (tested
equal to scikit-learn's), because scikit-learn's input checks cost ~2.5 ms per replicate, i.e. over
20 s for 1,000 replicates of nine languages on a laptop core.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from xdet.stats import CI_LEVEL as LEVEL
from xdet.stats import bias_corrected_interval, keyed_rng, resample_indices
from xdet_tasks.errors import ScorerError
from xdet_tasks.scoring.base import TOXIC_THRESHOLD
from xdet_tasks.suites.paradetox import content_hash, load_pairs

ECE_BINS = 10
#: folds of the cross-fitted balanced accuracy (each fold's threshold is fitted on the other folds).
CV_FOLDS = 5
METRICS = ("roc_auc", "accuracy", "threshold", "balanced_accuracy", "ece", "brier")
HEADERS = {
    "roc_auc": "ROC-AUC", "accuracy": "acc@0.5", "threshold": "best thr", "balanced_accuracy": "bal. acc (cross-fit)",
    "ece": "ECE", "brier": "Brier",
}


class EvaluableScorer(Protocol):
    def score(self, texts: Sequence[str], lang: str) -> list[float | None]: ...

    def check_language(self, lang: str) -> None: ...

    def provenance(self) -> dict[str, Any]: ...


# ---- metrics (NumPy; y in {0, 1}, s in [0, 1], no missing values) ----

def auc_np(y: np.ndarray, s: np.ndarray) -> float:
    """ROC-AUC as the Mann-Whitney statistic with tied scores counted half (scikit-learn's value)."""
    from scipy.stats import rankdata

    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def best_threshold(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """``(t, balanced accuracy of score >= t)`` maximised over the observed scores (ties: highest t)."""
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan"), float("nan")
    order = np.argsort(-s, kind="stable")
    s_desc, y_desc = s[order], y[order]
    tp = np.cumsum(y_desc)
    fp = np.cumsum(1 - y_desc)
    last = np.r_[np.nonzero(np.diff(s_desc))[0], len(s_desc) - 1]  # last index of each distinct score
    balanced = (tp[last] / n1 + 1 - fp[last] / n0) / 2
    k = int(np.argmax(balanced))
    return float(s_desc[last[k]]), float(balanced[k])


def ece_np(y: np.ndarray, s: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error over ``bins`` equal-width bins, each weighted by its share of texts."""
    if len(y) == 0:
        return float("nan")
    idx = np.minimum(np.floor(s * bins).astype(int), bins - 1)
    count = np.bincount(idx, minlength=bins)
    gap = np.abs(np.bincount(idx, weights=y, minlength=bins) - np.bincount(idx, weights=s, minlength=bins))
    return float(gap[count > 0].sum() / len(y))  # sum_b n_b/n * |mean y - mean s| = sum_b |sum y - sum s| / n


def balanced_accuracy(y: np.ndarray, predicted: np.ndarray) -> float:
    """Mean of the true-positive and true-negative rates of 0/1 ``predicted`` (NaN without both classes)."""
    positive = y == 1
    if positive.all() or not positive.any():
        return float("nan")
    return float((predicted[positive].mean() + 1 - predicted[~positive].mean()) / 2)


def crossfit_balanced_accuracy(y: np.ndarray, s: np.ndarray, folds: np.ndarray) -> float:
    """Balanced accuracy of out-of-fold predictions: fold ``f`` is called toxic at ``score >= t_f``, with
    ``t_f`` the :func:`best_threshold` of the other folds. A fold whose other folds lack a class gets no
    prediction; NaN when no fold gets one."""
    predicted = np.full(len(y), np.nan)
    for fold in np.unique(folds):
        held_out = folds == fold
        threshold, _ = best_threshold(y[~held_out], s[~held_out])
        if np.isfinite(threshold):
            predicted[held_out] = s[held_out] >= threshold
    made = ~np.isnan(predicted)
    return balanced_accuracy(y[made], predicted[made])


def assign_folds(n: int, rng: np.random.Generator, k: int = CV_FOLDS) -> np.ndarray:
    """A seeded fold label in ``0..k-1`` for each of ``n`` units, the folds as equal in size as possible."""
    return rng.permutation(np.arange(n) % k)


def metrics_np(y: np.ndarray, s: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """The six metrics in :data:`METRICS` order (NaN where undefined); ``folds`` as in
    :func:`crossfit_balanced_accuracy`, one label per score."""
    if len(y) == 0:
        return np.full(len(METRICS), np.nan)
    threshold, _ = best_threshold(y, s)
    accuracy = float(((s >= TOXIC_THRESHOLD) == (y == 1)).mean())
    brier = float(((s - y) ** 2).mean())
    return np.array([auc_np(y, s), accuracy, threshold, crossfit_balanced_accuracy(y, s, folds),
                     ece_np(y, s), brier])


def point_metrics(y: np.ndarray, s: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """:func:`metrics_np` with ROC-AUC and Brier from scikit-learn."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    out = metrics_np(y, s, folds)
    if len(y) and 0 < y.sum() < len(y):
        out[0] = roc_auc_score(y, s)
    if len(y):
        out[5] = brier_score_loss(y, s, labels=[0, 1])
    return out


# ---- evaluation ----

def _scores(scorer: EvaluableScorer, texts: list[str], lang: str) -> np.ndarray:
    values = scorer.score(texts, lang)
    if len(values) != len(texts):
        raise ScorerError(f"scorer returned {len(values)} scores for {len(texts)} {lang} texts")
    out = np.full(len(texts), np.nan)
    for i, v in enumerate(values):
        if v is None:
            continue  # unscored: excluded and counted, never 0
        try:
            value = float(v)
        except (TypeError, ValueError):
            value = float("nan")
        if not 0.0 <= value <= 1.0:  # also false for NaN
            raise ScorerError(f"scorer returned {v!r} for a {lang} text; scores must be in [0, 1] or None")
        out[i] = value
    return out


def _pairs_xy(
    tox: np.ndarray, neu: np.ndarray, folds: np.ndarray, idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, scores and folds of the scored members of pairs ``idx`` (a pair may count twice when
    resampled; both copies keep the pair's fold)."""
    s = np.concatenate([tox[idx], neu[idx]])
    y = np.concatenate([np.ones(len(idx)), np.zeros(len(idx))])
    f = np.concatenate([folds[idx], folds[idx]])
    keep = ~np.isnan(s)
    return y[keep], s[keep], f[keep]


def _interval(reps: np.ndarray, point: float) -> dict[str, float | None]:
    def clean(x: float | None) -> float | None:
        return None if x is None or not np.isfinite(x) else round(float(x), 6)

    lo, hi = bias_corrected_interval(reps, point, LEVEL)
    return {"value": clean(point), "lo": clean(lo), "hi": clean(hi)}


def evaluate_scorer(
    scorer: EvaluableScorer,
    langs: Sequence[str],
    *,
    data_dir: str | Path | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Per-language quality of ``scorer`` on the test pairs, with bootstrap intervals (JSON-serialisable)."""
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    rows: dict[str, dict[str, Any]] = {}
    refused: dict[str, str] = {}
    points: dict[str, np.ndarray] = {}
    boots: dict[str, np.ndarray] = {}
    hashes: dict[str, str] = {}
    for lang in langs:
        try:
            scorer.check_language(lang)
        except ScorerError as err:
            refused[lang] = (str(err).strip().splitlines() or [type(err).__name__])[0]
            continue
        pairs = load_pairs(lang, "test", data_dir=data_dir)
        hashes[lang] = content_hash(pairs)
        scores = _scores(scorer, [p.toxic for p in pairs] + [p.neutral for p in pairs], lang)
        tox, neu = scores[: len(pairs)], scores[len(pairs) :]
        folds = assign_folds(len(pairs), keyed_rng(seed, f"{lang}/folds"))
        y, s, f = _pairs_xy(tox, neu, folds, np.arange(len(pairs)))
        points[lang] = point_metrics(y, s, f)
        rng = keyed_rng(seed, lang)
        boots[lang] = np.array([metrics_np(*_pairs_xy(tox, neu, folds, idx))
                                for idx in resample_indices(rng, len(pairs), n_boot)])
        rows[lang] = {
            "n_pairs": len(pairs),
            "n": int(len(y)),
            "unscored": int(np.isnan(scores).sum()),
            **{m: _interval(boots[lang][:, j], points[lang][j]) for j, m in enumerate(METRICS)},
        }
    report: dict[str, Any] = {
        "scorer": scorer.provenance(),
        "split": "test",
        "languages": list(langs),
        "rows": rows,
        "refused": refused,
        "mean": None,
        "test_data_sha256": hashes,
        "method": {
            "labels": "toxic sentence = 1, its neutral paraphrase = 0; unscored texts excluded",
            "accuracy_threshold": f"score >= {TOXIC_THRESHOLD} is toxic",
            "threshold": "maximises balanced accuracy on all these pairs (ties: highest threshold)",
            "balanced_accuracy": f"cross-fitted: {CV_FOLDS} seeded folds of pairs, each classified at the "
                                 "threshold that maximises balanced accuracy on the other folds",
            "ece": f"{ECE_BINS} equal-width bins on [0, 1], weighted by bin size",
            "interval": f"{LEVEL:.0%} bias-corrected percentile bootstrap over pairs: the percentile interval "
                        "shifted by (point estimate - median of replicates); "
                        f"{n_boot} replicates, seed {seed} (one generator per language)",
            "mean": "unweighted mean over evaluated languages; interval from the replicate-wise mean",
        },
    }
    if rows:
        report["mean"] = {
            "languages": list(rows),
            "n_pairs": sum(r["n_pairs"] for r in rows.values()),
            "n": sum(r["n"] for r in rows.values()),
            "unscored": sum(r["unscored"] for r in rows.values()),
            **mean_intervals([points[lang] for lang in rows], [boots[lang] for lang in rows]),
        }
    return report


def mean_intervals(points: Sequence[np.ndarray], boots: Sequence[np.ndarray]) -> dict[str, dict[str, float | None]]:
    """Each metric's unweighted mean over units (languages, locales), with the interval of the
    replicate-wise mean."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column gives NaN, reported as None
        mean_point = np.nanmean(np.array(points), axis=0)
        mean_boot = np.nanmean(np.stack(boots), axis=0)
    return {m: _interval(mean_boot[:, j], mean_point[j]) for j, m in enumerate(METRICS)}


def _cell(entry: dict[str, float | None]) -> str:
    if entry["value"] is None:
        return "n/a"
    if entry["lo"] is None:
        return f"{entry['value']:.3f}"
    return f"{entry['value']:.3f} [{entry['lo']:.3f}, {entry['hi']:.3f}]"


def report_table(report: dict[str, Any]) -> str:
    """One GitHub-markdown row per language (``value [lo, hi]``), refused languages, then the mean."""
    from tabulate import tabulate

    headers = ["lang", "n", "unscored", *(HEADERS[m] for m in METRICS)]
    table = []
    for lang in report["languages"]:
        if lang in report["refused"]:
            table.append([lang, f"refused: {report['refused'][lang]}", *[""] * (len(headers) - 2)])
        elif lang in report["rows"]:
            row = report["rows"][lang]
            table.append([lang, row["n"], row["unscored"], *(_cell(row[m]) for m in METRICS)])
    if report["mean"] is not None:
        mean = report["mean"]
        table.append(["mean", mean["n"], mean["unscored"], *(_cell(mean[m]) for m in METRICS)])
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)
