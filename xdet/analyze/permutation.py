"""Permutation and bootstrap machinery shared by the hypothesis tests.

Every test here is a label-permutation test: the Δ values stay where they are and the labels
(script, family, column language, data amount, distance-matrix language) are reassigned. Row 0 of
every relabelling set is the observed labelling, so the observed statistic is computed by exactly
the same arithmetic as the null statistics and ties are real ties.

p-value = #{relabellings whose statistic is at least as extreme as the observed one} / #relabellings,
the observed (identity) labelling included. That is exact when all distinct labellings are
enumerated, and the usual (b + 1) / (m + 1) estimate with m random relabellings otherwise; it is never
0. ``alternative="greater"`` is one-sided: callers orient their statistic so that larger means "in
the paper's claimed direction". ``"two-sided"`` measures extremeness as the distance from the mean of
the permutation distribution (which is 0 only for symmetric designs).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import rankdata

from xdet.stats import percentile_interval, resample_indices

Alternative = Literal["greater", "two-sided"]
ALTERNATIVES: tuple[str, ...] = ("greater", "two-sided")
# Statistics from different relabellings can differ by float rounding only; count those as ties.
_REL_TOL = 1e-9


def count_distinct_permutations(labels: Sequence[object] | np.ndarray) -> int:
    """n! / prod(k_i!) for a multiset with multiplicities k_i (e.g. 8 labels, one thrice: 6720)."""
    items = list(np.asarray(labels).tolist())
    total = math.factorial(len(items))
    for k in Counter(items).values():
        total //= math.factorial(k)
    return total


def distinct_permutations(labels: Sequence[object] | np.ndarray) -> np.ndarray:
    """Every distinct arrangement of a label multiset, one per row (shape: count × len(labels)).

    Built position by position over all partial arrangements at once (a breadth-first expansion
    of the multiset), so the cost is numpy work proportional to the output size.
    """
    labels = np.asarray(labels)
    values, codes = np.unique(labels, return_inverse=True)
    remaining = np.bincount(codes.ravel(), minlength=len(values))[None, :]
    prefix = np.empty((1, 0), dtype=np.intp)
    for _ in range(labels.size):
        grown, left = [], []
        for k in range(len(values)):
            ok = remaining[:, k] > 0
            if not ok.any():
                continue
            grown.append(np.column_stack([prefix[ok], np.full(int(ok.sum()), k, dtype=np.intp)]))
            rest = remaining[ok].copy()
            rest[:, k] -= 1
            left.append(rest)
        prefix, remaining = np.concatenate(grown), np.concatenate(left)
    return values[prefix]


@dataclass(frozen=True)
class Relabelling:
    """Labellings to evaluate: ``labels[0]`` is the observed one, the rest the null set."""

    labels: np.ndarray  # (P, n)
    exact: bool

    @property
    def count(self) -> int:
        return int(self.labels.shape[0])


def relabellings(
    labels: Sequence[object] | np.ndarray, *, max_exact: int, n_perm: int, rng: np.random.Generator
) -> Relabelling:
    """All distinct labellings if there are at most ``max_exact``, else identity + ``n_perm`` random ones."""
    labels = np.asarray(labels)
    if count_distinct_permutations(labels) <= max_exact:
        perms = distinct_permutations(labels)
        identity = np.flatnonzero((perms == labels[None, :]).all(axis=1))
        assert identity.size == 1, "the enumeration must contain the observed labelling exactly once"
        order = np.r_[identity, np.delete(np.arange(len(perms)), identity)]
        return Relabelling(perms[order], exact=True)
    shuffled = rng.permuted(np.broadcast_to(labels, (n_perm, labels.size)), axis=1)
    return Relabelling(np.concatenate([labels[None, :], shuffled]), exact=False)


def _tolerance(null: np.ndarray) -> float:
    return _REL_TOL * max(1.0, float(np.max(np.abs(null))))


def _extremeness(stats: np.ndarray, alternative: Alternative) -> np.ndarray:
    if alternative == "greater":
        return stats
    if alternative == "two-sided":
        return np.abs(stats - stats.mean())
    raise ValueError(f"alternative must be one of {ALTERNATIVES}, not {alternative!r}")


def permutation_p(stats: np.ndarray, alternative: Alternative = "greater") -> tuple[float, int]:
    """p-value of ``stats[0]`` (observed) against all finite ``stats`` (identity included), and their count.

    Relabellings where the statistic is undefined (NaN, e.g. an empty group) are left out of the
    reference set: the test is then conditional on the statistic existing.
    """
    stats = np.asarray(stats, dtype=float)
    if not np.isfinite(stats[0]):
        raise ValueError("the observed statistic must be finite")
    null = stats[np.isfinite(stats)]  # null[0] is still the observed statistic
    ext = _extremeness(null, alternative)
    hits = int(np.count_nonzero(ext >= ext[0] - _tolerance(ext)))
    return hits / null.size, int(null.size)


def smallest_attainable_p(stats: np.ndarray, alternative: Alternative = "greater") -> float:
    """The p-value the most extreme relabelling would get: a floor no data could beat in this design."""
    null = np.asarray(stats, dtype=float)
    null = null[np.isfinite(null)]
    ext = _extremeness(null, alternative)
    return int(np.count_nonzero(ext >= ext.max() - _tolerance(ext))) / null.size


def is_degenerate(stats: np.ndarray) -> bool:
    """True when every relabelling gives the same statistic, so the test cannot say anything."""
    null = np.asarray(stats, dtype=float)
    null = null[np.isfinite(null)]
    return bool(null.size < 2 or np.ptp(null) <= _tolerance(null))


# ---------------------------------------------------------------------------------------------
# Vectorised statistics and bootstrap intervals
# ---------------------------------------------------------------------------------------------


def mean_difference(mask_a: np.ndarray, mask_b: np.ndarray, values: np.ndarray) -> np.ndarray:
    """mean(values[mask_a]) − mean(values[mask_b]) per row of the masks (NaN where a group is empty).

    ``values`` is (n,) or (B, n) (then the masks broadcast); NaN values must be outside both masks.
    """
    v = np.where(np.isfinite(values), values, 0.0)
    a, b = mask_a.astype(float), mask_b.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        if v.ndim == 1:
            return (a @ v) / a.sum(axis=-1) - (b @ v) / b.sum(axis=-1)
        return (a * v).sum(axis=-1) / a.sum(axis=-1) - (b * v).sum(axis=-1) / b.sum(axis=-1)


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's ρ per row (Pearson of average ranks); x, y are (n,) or (P, n); NaN if a row is constant."""
    rx = rankdata(np.atleast_2d(x), axis=-1)
    ry = rankdata(np.atleast_2d(y), axis=-1)
    rx = rx - rx.mean(axis=-1, keepdims=True)
    ry = ry - ry.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(axis=-1) / np.sqrt((rx**2).sum(axis=-1) * (ry**2).sum(axis=-1))


def effect_interval(values: np.ndarray, level: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile interval of bootstrap effects; None when fewer than two replicates are defined."""
    return percentile_interval(values, level, min_finite=2)


def bootstrap_mean_difference(
    a: np.ndarray, b: np.ndarray, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Stratified cell bootstrap: resample each group's cells with replacement, difference of means."""
    ia = resample_indices(rng, a.size, n_boot)
    ib = resample_indices(rng, b.size, n_boot)
    return a[ia].mean(axis=1) - b[ib].mean(axis=1)


def bootstrap_spearman(x: np.ndarray, y: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Pair bootstrap of Spearman's ρ: resample (x, y) cells with replacement."""
    idx = resample_indices(rng, x.size, n_boot)
    return spearman_rows(x[idx], y[idx])
