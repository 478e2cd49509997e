"""lm-eval's aggregation rules for xdet's per-sample values, in one place.

Every number of a results file is rebuilt from the samples files with these functions (tables,
``--from-samples``, the bootstrap), so they must agree with the task YAMLs' aggregations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: Corpus-level metrics whose per-sample value is a ``[loglikelihood, count]`` pair.
WEIGHTED_PERPLEXITY: frozenset[str] = frozenset({"word_perplexity", "byte_perplexity"})
BITS_PER_BYTE: frozenset[str] = frozenset({"bits_per_byte"})
#: Counts, summed over samples (the YAML's ``total`` aggregation).
TOTALS: frozenset[str] = frozenset({"unscored"})


def mean_of_defined(values: Sequence[float | None]) -> float:
    """lm-eval aggregation of a per-sample value that may not exist (``None``: no completion to measure,
    :mod:`xdet_tasks.metrics.language`): the mean of the others, NaN when there are none (never 0). The
    same number :func:`aggregate` gives from the samples file, where ``None`` reads as NaN."""
    defined = [float(v) for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(defined)) if defined else math.nan


def metric_kind(metric: str) -> str:
    """How per-sample values aggregate: ``mean``, ``total``, ``weighted_perplexity`` or ``bits_per_byte``."""
    if metric in WEIGHTED_PERPLEXITY:
        return "weighted_perplexity"
    if metric in BITS_PER_BYTE:
        return "bits_per_byte"
    return "total" if metric in TOTALS else "mean"


def pairs_per_sample(metric: str) -> bool:
    """Whether a per-sample value is a ``[loglikelihood, count]`` pair rather than a number."""
    return metric in WEIGHTED_PERPLEXITY | BITS_PER_BYTE


def aggregate(metric: str, values: np.ndarray) -> float:
    """lm-eval's aggregation of per-sample values along axis 0; NaN (unscored) samples are left out.

    ``values`` is ``(n,)`` for mean metrics and ``(n, 2)`` ``[loglikelihood, count]`` pairs for
    weighted ones. Returns NaN when nothing is left (never 0). Used to rebuild every number from
    samples files alone, so it must agree with the task YAMLs' aggregations.
    """
    return float(aggregate_many(metric, values[None, ...])[0])


def aggregate_many(metric: str, values: np.ndarray) -> np.ndarray:
    """:func:`aggregate` over the leading axis of ``(b, n[, 2])`` resamples (for the bootstrap)."""
    kind = metric_kind(metric)
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
