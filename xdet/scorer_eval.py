"""``xdet scorer evaluate``: how well a toxicity scorer separates toxic sentences from their paraphrases.

Every xdet number is a scorer's output, so the scorer itself needs a report card per language before
its toxic rates can be trusted: Perspective is closing and open classifiers differ by language. The
held-out test pairs of each language (100 toxic sentences, label 1, and their human-written neutral
paraphrases, label 0) are scored and summarised as:

* ``roc_auc``: how well scores rank toxic above neutral (threshold-free);
* ``accuracy``: at the project's fixed threshold 0.5 (``score >= 0.5`` is toxic), the threshold every
  ``toxic_rate`` uses;
* ``threshold`` / ``balanced_accuracy``: the threshold that maximises balanced accuracy on these
  pairs (ties: the highest such threshold) and that balanced accuracy. It is fitted on the data it
  is reported on, so read it as "where this scorer's 0.5 should have been", not as a held-out number;
* ``ece``: expected calibration error with 10 equal-width bins on [0, 1] (the last one closed),
  ``sum_b (n_b / n) * |mean label in b - mean score in b|``;
* ``brier``: mean squared difference between score and label.

Each comes with a 95 % percentile bootstrap interval (``n_boot`` replicates). Pairs, not texts, are
resampled: a toxic sentence and its paraphrase share topic, length and wording, so their scores are
correlated, and resampling texts independently would understate the variance and unbalance the
classes. Each language has its own seeded generator (from ``seed`` and the language code), so its
interval does not depend on which other languages are evaluated. The ``mean`` row averages the
evaluated languages; its interval is the percentile interval of that average over replicates.
ECE and the fitted threshold's balanced accuracy are biased upward under resampling (duplicated pairs
fill bins unevenly; the threshold is refitted to each replicate), so their intervals can lie above
the point estimate (the ``local`` scorer's mean ECE: 0.097 [0.100, 0.125]): read them as spread, not
as bias-corrected bounds.

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
from xdet.stats import keyed_rng, percentile_interval, resample_indices
from xdet_tasks.data import content_hash, load_pairs
from xdet_tasks.errors import ScorerError
from xdet_tasks.scoring.base import TOXIC_THRESHOLD

ECE_BINS = 10
METRICS = ("roc_auc", "accuracy", "threshold", "balanced_accuracy", "ece", "brier")
HEADERS = {
    "roc_auc": "ROC-AUC", "accuracy": "acc@0.5", "threshold": "best thr", "balanced_accuracy": "bal. acc",
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


def metrics_np(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The six metrics in :data:`METRICS` order (NaN where undefined)."""
    if len(y) == 0:
        return np.full(len(METRICS), np.nan)
    threshold, balanced = best_threshold(y, s)
    accuracy = float(((s >= TOXIC_THRESHOLD) == (y == 1)).mean())
    brier = float(((s - y) ** 2).mean())
    return np.array([auc_np(y, s), accuracy, threshold, balanced, ece_np(y, s), brier])


def point_metrics(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """:func:`metrics_np` with ROC-AUC and Brier from scikit-learn."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    out = metrics_np(y, s)
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


def _pairs_xy(tox: np.ndarray, neu: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores of the scored members of pairs ``idx`` (a pair may count twice when resampled)."""
    s = np.concatenate([tox[idx], neu[idx]])
    y = np.concatenate([np.ones(len(idx)), np.zeros(len(idx))])
    keep = ~np.isnan(s)
    return y[keep], s[keep]


def _interval(reps: np.ndarray, point: float) -> dict[str, float | None]:
    def clean(x: float | None) -> float | None:
        return None if x is None or not np.isfinite(x) else round(float(x), 6)

    lo, hi = percentile_interval(reps, LEVEL)
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
        y, s = _pairs_xy(tox, neu, np.arange(len(pairs)))
        points[lang] = point_metrics(y, s)
        rng = keyed_rng(seed, lang)
        boots[lang] = np.array([metrics_np(*_pairs_xy(tox, neu, idx))
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
            "threshold": "maximises balanced accuracy on these pairs (in-sample; ties: highest threshold)",
            "ece": f"{ECE_BINS} equal-width bins on [0, 1], weighted by bin size",
            "interval": f"{LEVEL:.0%} percentile bootstrap over pairs, {n_boot} replicates, seed {seed} "
                        "(one generator per language)",
            "mean": "unweighted mean over evaluated languages; interval from the replicate-wise mean",
            "caveat": "ece and balanced_accuracy are biased upward under resampling; their intervals show "
                      "spread and may exclude the point estimate",
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
