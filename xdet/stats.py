"""The bootstrap, once: resampling indices and percentile intervals for every interval xdet reports.

Tables, the demo's causal chain, the scorer evaluation and the analysis all draw their 95 % intervals
from here, so "95 % interval" means one thing everywhere: the percentile interval of a statistic
recomputed on seeded resamples (with replacement) of the units that were sampled.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence

import numpy as np

CI_LEVEL = 0.95


def keyed_rng(seed: int, key: str) -> np.random.Generator:
    """A generator for one named stream (a task, a language, a test), so that adding or removing other
    streams never changes this one's draws."""
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])


def resample_indices(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """``(n_boot, n)`` indices drawn with replacement: row ``b`` is resample ``b``."""
    return rng.integers(0, n, size=(n_boot, n))


def percentile_interval(
    replicates: np.ndarray | None, level: float = CI_LEVEL, min_finite: int = 1
) -> tuple[float | None, float | None]:
    """The central ``level`` percentile interval of the finite replicates; ``(None, None)`` when fewer
    than ``min_finite`` of them are finite."""
    if replicates is None:
        return None, None
    finite = np.asarray(replicates, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size < max(1, min_finite):
        return None, None
    alpha = (1 - level) / 2 * 100
    lo, hi = np.percentile(finite, [alpha, 100 - alpha])
    return float(lo), float(hi)


def bias_corrected_interval(
    replicates: np.ndarray | None, point: float, level: float = CI_LEVEL, min_finite: int = 1
) -> tuple[float | None, float | None]:
    """The percentile interval moved by the bootstrap's median bias, ``point - median(replicates)``.

    For a statistic the resampling itself biases (a binned calibration error rises when resampled
    pairs fill bins unevenly), the plain percentile interval can lie wholly beside the point estimate.
    Shifting it by the estimated bias centres the replicates' spread on the point estimate, and since
    the median of the replicates lies between any central pair of their percentiles, the result always
    contains ``point``. For an unbiased statistic the shift is about 0 and this is the percentile interval.
    """
    lo, hi = percentile_interval(replicates, level, min_finite)
    if lo is None or hi is None or not np.isfinite(point):
        return lo, hi
    finite = np.asarray(replicates, dtype=float)
    shift = float(point) - float(np.median(finite[np.isfinite(finite)]))
    return min(lo + shift, float(point)), max(hi + shift, float(point))  # min/max: float rounding only


def bootstrap_ci(
    values: Sequence[float],
    statistic: Callable[[np.ndarray], float] = np.mean,
    n_resamples: int = 1000,
    confidence: float = CI_LEVEL,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over per-sample ``values`` (seeded); NaN if empty."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return (math.nan, math.nan)
    idx = resample_indices(np.random.default_rng(seed), arr.size, n_resamples)
    lo, hi = percentile_interval(np.array([statistic(arr[row]) for row in idx]), confidence)
    return (math.nan if lo is None else lo, math.nan if hi is None else hi)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values: sorted p_(i) × (m − i + 1), running maximum, capped at 1."""
    p = np.asarray(pvalues, dtype=float)
    if p.size == 0:
        return p
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError("p-values must lie in [0, 1]")
    order = np.argsort(p, kind="stable")
    m = p.size
    scaled = p[order] * (m - np.arange(m))
    adjusted = np.minimum(np.maximum.accumulate(scaled), 1.0)
    out = np.empty_like(p)
    out[order] = adjusted
    return out
