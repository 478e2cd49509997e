"""lm-eval's aggregation rules for xdet's per-sample values, in one place.

Every number of a results file is rebuilt from the samples files with these functions (tables,
``--from-samples``, the bootstrap), so they must agree with the task YAMLs' aggregations.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from xdet_tasks.metrics.fluency import MEAN_BELOW_LIMIT, MEDIAN, SANITY_LIMIT

#: Corpus-level metrics whose per-sample value is a ``[loglikelihood, count]`` pair.
WEIGHTED_PERPLEXITY: frozenset[str] = frozenset({"word_perplexity", "byte_perplexity"})
BITS_PER_BYTE: frozenset[str] = frozenset({"bits_per_byte"})
#: Counts, summed over samples (the YAML's ``total`` aggregation).
TOTALS: frozenset[str] = frozenset({"unscored"})
#: Per-completion values, ``(n, K)`` per task (K completions a prompt; NaN = none): fluency.
PER_COMPLETION: dict[str, str] = {MEDIAN: "completion_median", MEAN_BELOW_LIMIT: "completion_mean_below_limit"}


def mean_of_defined(values: Sequence[float | None]) -> float:
    """lm-eval aggregation of a per-sample value that may not exist (``None``: no completion to measure,
    :mod:`xdet_tasks.metrics.language`): the mean of the others, NaN when there are none (never 0). The
    same number :func:`aggregate` gives from the samples file, where ``None`` reads as NaN."""
    defined = [float(v) for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(defined)) if defined else math.nan


def metric_kind(metric: str) -> str:
    """How per-sample values aggregate: ``mean``, ``total``, ``weighted_perplexity``, ``bits_per_byte``,
    or over every completion of the prompts (``completion_median``, ``completion_mean_below_limit``)."""
    if metric in PER_COMPLETION:
        return PER_COMPLETION[metric]
    if metric in WEIGHTED_PERPLEXITY:
        return "weighted_perplexity"
    if metric in BITS_PER_BYTE:
        return "bits_per_byte"
    return "total" if metric in TOTALS else "mean"


def pairs_per_sample(metric: str) -> bool:
    """Whether a per-sample value is a ``[loglikelihood, count]`` pair rather than a number."""
    return metric in WEIGHTED_PERPLEXITY | BITS_PER_BYTE


def per_completion(metric: str) -> bool:
    """Whether a sample's value is the row of its prompt's K completions rather than one number."""
    return metric in PER_COMPLETION


def aggregate(metric: str, values: np.ndarray) -> float:
    """lm-eval's aggregation of per-sample values along axis 0; NaN (unscored) samples are left out.

    ``values`` is ``(n,)`` for mean metrics, ``(n, 2)`` ``[loglikelihood, count]`` pairs for
    weighted ones and ``(n, K)`` rows of completions for per-completion ones (pooled over prompts). Returns NaN when nothing is left (never 0). Used to rebuild every number from
    samples files alone, so it must agree with the task YAMLs' aggregations.
    """
    return float(aggregate_many(metric, values[None, ...])[0])


def aggregate_many(metric: str, values: np.ndarray) -> np.ndarray:
    """:func:`aggregate` over the leading axis of ``(b, n[, 2 | K])`` resamples (for the bootstrap)."""
    kind = metric_kind(metric)
    if kind.startswith("completion_"):
        return _completion_statistic(kind, values.reshape(values.shape[0], -1))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if kind in ("mean", "total"):
            ok = ~np.isnan(values)
            count = ok.sum(axis=-1)
            total = np.where(ok, values, 0.0).sum(axis=-1)
            return total if kind == "total" else np.where(count > 0, total / np.maximum(count, 1), np.nan)
        ok = ~np.isnan(values).any(axis=-1)
        ll = np.where(ok, values[..., 0], 0.0).sum(axis=-1)
        n = np.where(ok, values[..., 1], 0.0).sum(axis=-1)
        if kind == "weighted_perplexity":
            return np.where(n > 0, np.exp(-ll / np.where(n > 0, n, 1)), np.nan)
        return np.where(n > 0, -ll / np.where(n > 0, n, 1) / math.log(2), np.nan)


def _completion_statistic(kind: str, pooled: np.ndarray) -> np.ndarray:
    """Per row of ``(b, n*K)`` completions: the median of those that have a value, or DExperts' mean of
    those below :data:`SANITY_LIMIT` (:mod:`xdet_tasks.metrics.fluency`); NaN when none is left."""
    if kind == "completion_median":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a row without any value: NaN, as intended
            return np.nanmedian(pooled, axis=-1)
    keep = pooled < SANITY_LIMIT  # NaN compares False: a missing value is never kept
    count = keep.sum(axis=-1)
    total = np.where(keep, pooled, 0.0).sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)
