"""Every statistic xdet reports, checked against an implementation the project did not write (SciPy,
scikit-learn, brute-force enumeration) or against a hand computation written out in the test, on
spread-out inputs where a wrong formula gives a different number."""

from __future__ import annotations

import itertools
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats as sps

from xdet.analyze.permutation import (
    bootstrap_mean_difference,
    count_distinct_permutations,
    distinct_permutations,
    effect_interval,
    is_degenerate,
    mean_difference,
    permutation_p,
    relabellings,
    smallest_attainable_p,
    spearman_rows,
)
from xdet.stats import bias_corrected_interval, bootstrap_ci, holm, percentile_interval, resample_indices
from xdet.validity.heldout import (
    auc_np,
    balanced_accuracy,
    best_threshold,
    crossfit_balanced_accuracy,
    ece_np,
    metrics_np,
    point_metrics,
)
from xdet.validity.kappa import is_weak, linear_kappa, released_rating, score_rating
from xdet_tasks.metrics import aggregation, toxicity

# ------------------------------------------------------------------------------------ bootstrap


@pytest.mark.parametrize("statistic", [np.mean, np.median, np.std])
def test_bootstrap_interval_equals_scipy_on_the_same_resamples(statistic):
    """SciPy draws ``rng.integers(0, n, (n_resamples, n))`` like :func:`resample_indices`; the test first
    proves the resamples are the same (equal bootstrap distributions), then the intervals must be."""
    values = np.random.default_rng(5).lognormal(size=40)  # skewed: percentile ≠ normal interval
    ours = bootstrap_ci(values, statistic, n_resamples=999, seed=3)
    ref = sps.bootstrap((values,), statistic, n_resamples=999, confidence_level=0.95, method="percentile",
                        vectorized=False, rng=np.random.default_rng(3))
    idx = resample_indices(np.random.default_rng(3), values.size, 999)
    assert np.array_equal(ref.bootstrap_distribution, [statistic(values[row]) for row in idx])
    assert ours == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high), rel=1e-12)


def test_bootstrap_defaults_are_1000_resamples_seed_0_and_the_level_is_passed_on():
    values = np.random.default_rng(8).gamma(2.0, size=30)
    ref = sps.bootstrap((values,), np.mean, n_resamples=1000, confidence_level=0.95, method="percentile",
                        rng=np.random.default_rng(0))
    assert bootstrap_ci(values) == pytest.approx(tuple(ref.confidence_interval), rel=1e-12)
    ref90 = sps.bootstrap((values,), np.mean, n_resamples=500, confidence_level=0.90, method="percentile",
                          rng=np.random.default_rng(4))
    assert bootstrap_ci(values, n_resamples=500, confidence=0.90, seed=4) == pytest.approx(
        tuple(ref90.confidence_interval), rel=1e-12)


def test_interval_helpers_on_degenerate_input():
    assert bootstrap_ci([3.0]) == (3.0, 3.0)  # one value: every resample is that value
    assert all(math.isnan(x) for x in bootstrap_ci([]))
    assert all(math.isnan(x) for x in bootstrap_ci([math.nan, math.nan]))  # NaN, never None or 0
    assert percentile_interval(np.array([2.0, math.nan])) == (2.0, 2.0)  # one finite replicate suffices
    assert percentile_interval(np.array([2.0, 4.0, math.nan]), min_finite=2) == pytest.approx((2.05, 3.95))
    assert percentile_interval(np.array([2.0, math.nan]), min_finite=2) == (None, None)
    assert percentile_interval(None) == (None, None)
    assert bias_corrected_interval(np.array([5.0]), 7.0) == (7.0, 7.0)
    assert bias_corrected_interval(np.array([5.0, math.nan]), 7.0, min_finite=2) == (None, None)
    # an undefined point estimate leaves the replicates' own interval
    assert bias_corrected_interval(np.arange(1.0, 102.0), math.nan) == pytest.approx((3.5, 98.5))


def _coverage(level: float | None, n: int = 100, n_sets: int = 2000, n_boot: int = 1000) -> float:
    """Share of ``n_sets`` simulated data sets (Beta(2, 5), mean 2/7) whose percentile interval of the
    mean covers 2/7; ``level=None``: the default every table, summary and report uses."""
    rng = np.random.default_rng(2024)
    data = rng.beta(2.0, 5.0, size=(n_sets, n))
    hits = 0
    for sample in data:
        replicates = sample[resample_indices(rng, n, n_boot)].mean(axis=1)
        lo, hi = percentile_interval(replicates) if level is None else percentile_interval(replicates, level)
        hits += lo <= 2 / 7 <= hi
    return hits / n_sets


def test_default_intervals_cover_95_percent_and_a_90_percent_interval_does_not_pass():
    """2,000 data sets: a 95 % interval covers 93-97 % of them (binomial sd 0.5 %); 90 % intervals, the
    bug that once passed every test, cover about 90 % and must fall outside that window."""
    assert 0.93 <= _coverage(None) <= 0.97
    assert not 0.93 <= _coverage(0.90) <= 0.97


def test_bias_corrected_interval_by_hand():
    replicates = np.arange(1.0, 102.0)  # 1..101: median 51, 2.5th percentile 3.5, 97.5th 98.5
    assert percentile_interval(replicates) == pytest.approx((3.5, 98.5))
    assert bias_corrected_interval(replicates, 45.0) == pytest.approx((3.5 - 6.0, 98.5 - 6.0))  # bias +6
    # a statistic the resampling pushes up: the plain interval misses the point, the corrected one not
    lo, hi = percentile_interval(replicates + 60.0)
    assert not lo <= 50.0 <= hi
    assert bias_corrected_interval(replicates + 60.0, 50.0) == pytest.approx((2.5, 97.5))
    assert bias_corrected_interval(None, 1.0) == (None, None)


# ------------------------------------------------------------------- scorer evaluation metrics

#: (score, label) per equal-width bin [b/10, (b+1)/10) (the last one closed); per bin |sum y - sum s|. The signs
#: of sum y - sum s alternate where it matters: bins 8 (+) and 9 (-) would cancel if merged, and 1.0 (-) would
#: pull against 0.92 and 0.95 (+) if it left bin 9.
ECE_BINS_BY_HAND = [
    ([(0.02, 0), (0.06, 0)], 0.08),             # |0 - 0.08|
    ([(0.12, 0), (0.18, 1)], 0.70),             # |1 - 0.30|
    ([(0.25, 0)], 0.25),
    ([(0.31, 0), (0.35, 0), (0.39, 1)], 0.05),  # |1 - 1.05|
    ([(0.45, 1)], 0.55),
    ([(0.50, 1), (0.55, 0)], 0.05),             # 0.5 opens bin 5: |1 - 1.05|
    ([(0.62, 1), (0.68, 1)], 0.70),             # |2 - 1.30|
    ([(0.75, 1)], 0.25),
    ([(0.81, 1), (0.89, 1)], 0.30),             # |2 - 1.70|
    ([(0.92, 1), (0.95, 1), (1.00, 0)], 0.87),  # 1.0 closes bin 9: |2 - 2.87|
]


def test_ece_on_scores_spread_over_every_bin_by_hand():
    pairs = [p for members, _ in ECE_BINS_BY_HAND for p in members]
    s = np.array([p[0] for p in pairs])
    y = np.array([p[1] for p in pairs], dtype=float)
    # sum_b (n_b / n) |mean y_b - mean s_b| = sum_b |sum y_b - sum s_b| / n = 3.80 / 19
    assert ece_np(y, s) == pytest.approx(sum(gap for _, gap in ECE_BINS_BY_HAND) / len(pairs), abs=1e-12)
    assert ece_np(y, s) == pytest.approx(3.80 / 19, abs=1e-12)
    assert math.isnan(ece_np(np.array([]), np.array([])))


def test_one_text_one_class_or_none_quietly():
    """Degenerate inputs give their defined metrics and NaN for the rest, without a warning (a one-class
    language is a report row, not library noise)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        single = metrics_np(np.array([1.0]), np.array([0.7]), np.array([0]))
        assert single[1] == 1.0 and single[5] == pytest.approx(0.09) and np.isnan(single[[0, 2, 3]]).all()
        empty = metrics_np(np.array([]), np.array([]), np.array([], dtype=int))
        assert empty.shape == (6,) and np.isnan(empty).all()
        y, s = np.zeros(5), np.linspace(0.0, 1.0, 5)
        point = point_metrics(y, s, np.arange(5) % 5)
        assert np.isnan(point[[0, 2, 3]]).all() and point[5] == pytest.approx(np.mean(s**2))
        point = point_metrics(1 - y, s, np.arange(5) % 5)  # every text toxic
        assert np.isnan(point[[0, 2, 3]]).all() and point[5] == pytest.approx(np.mean((1 - s) ** 2))
        assert math.isnan(balanced_accuracy(np.ones(3), np.array([1.0, 0.0, 1.0])))
        assert math.isnan(auc_np(np.ones(3), np.array([0.1, 0.2, 0.3])))


def test_auc_and_threshold_with_a_single_member_of_a_class():
    from sklearn.metrics import roc_auc_score

    y, s = np.array([1.0, 0.0, 0.0, 0.0]), np.array([0.6, 0.1, 0.7, 0.3])
    assert auc_np(y, s) == pytest.approx(roc_auc_score(y, s)) and auc_np(y, s) == pytest.approx(2 / 3)
    assert auc_np(1 - y, s) == pytest.approx(roc_auc_score(1 - y, s))
    assert best_threshold(y, s) == pytest.approx((0.6, 5 / 6))  # toxic at >= 0.6: TPR 1, TNR 2/3
    assert best_threshold(1 - y, s) == pytest.approx((0.7, 2 / 3))  # the one neutral text: TPR 1/3, TNR 1


def _spread(seed: int, n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """Labels and overlapping scores over all of [0, 1], some tied (rounded to 2 decimals)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(float)
    s = np.round(np.clip(rng.normal(0.35 + 0.3 * y, 0.22), 0, 1), 2)
    return y, s


@pytest.mark.parametrize("seed", range(6))
def test_auc_brier_and_threshold_against_scikit_learn(seed):
    from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

    y, s = _spread(seed)
    assert auc_np(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    point = point_metrics(y, s, np.arange(len(y)) % 5)
    assert point[0] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert point[5] == pytest.approx(brier_score_loss(y, s), abs=1e-12)
    assert point[1] == pytest.approx(np.mean((s >= 0.5) == (y == 1)))
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    k = 1 + int(np.argmax(((tpr + 1 - fpr) / 2)[1:]))  # first maximum = highest threshold; skip +inf
    assert best_threshold(y, s) == pytest.approx((thr[k], (tpr[k] + 1 - fpr[k]) / 2), abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_crossfitted_balanced_accuracy_against_scikit_learn(seed):
    """Each fold classified at the threshold scikit-learn's ROC curve finds best on the other folds."""
    from sklearn.metrics import balanced_accuracy_score, roc_curve

    y, s = _spread(seed)
    folds = np.random.default_rng(seed).permutation(np.arange(len(y)) % 5)
    predicted = np.zeros(len(y))
    for fold in range(5):
        train = folds != fold
        fpr, tpr, thr = roc_curve(y[train], s[train], drop_intermediate=False)
        k = 1 + int(np.argmax(((tpr + 1 - fpr) / 2)[1:]))
        predicted[~train] = s[~train] >= thr[k]
    reference = balanced_accuracy_score(y, predicted)
    assert crossfit_balanced_accuracy(y, s, folds) == pytest.approx(reference, abs=1e-12)
    assert crossfit_balanced_accuracy(y, s, folds) <= best_threshold(y, s)[1]  # never above in-sample


def test_crossfitting_removes_the_optimism_of_a_fitted_threshold():
    """Scores that know nothing: the in-sample best threshold still finds a lucky cut; cross-fitted,
    balanced accuracy falls back towards chance."""
    rng = np.random.default_rng(0)
    insample, crossfit = [], []
    for _ in range(40):
        y, s = rng.integers(0, 2, 200).astype(float), rng.random(200)
        insample.append(best_threshold(y, s)[1])
        crossfit.append(crossfit_balanced_accuracy(y, s, rng.permutation(np.arange(200) % 5)))
    assert np.mean(insample) > 0.53  # 0.537 here: every in-sample value is at least 0.5
    assert abs(np.mean(crossfit) - 0.5) < 0.02  # 0.493, standard error 0.0065


# ------------------------------------------------------------ weighted kappa (RTP-LX's statistic)

def _ratings(seed: int, n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """Two raters on 1-5 who agree more than chance, with unequal margins (the second never says 5)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 6, n)
    b = np.clip(a + rng.integers(-2, 2, n), 1, 4)
    return a, b


@pytest.mark.parametrize("seed", range(6))
def test_linear_kappa_against_scikit_learn_and_brute_force(seed):
    from sklearn.metrics import cohen_kappa_score

    a, b = _ratings(seed)
    ours = linear_kappa(a, b)
    assert ours == pytest.approx(cohen_kappa_score(a, b, weights="linear", labels=[1, 2, 3, 4, 5]), abs=1e-12)
    # brute force: 1 - mean weight of the pairs rated / mean weight over every (i, j) pairing of the two raters
    w = np.abs(a[:, None] - b[None, :]) / 4
    assert ours == pytest.approx(1 - np.mean(np.abs(a - b) / 4) / np.mean(w), abs=1e-12)
    for other in ("quadratic", None):  # the inputs tell the weightings apart
        assert abs(ours - cohen_kappa_score(a, b, weights=other)) > 0.01


def test_kappa_undefined_or_empty_and_the_bins():
    assert math.isnan(linear_kappa([3, 3, 3], [3, 3, 3])) and math.isnan(linear_kappa([], []))
    assert linear_kappa([1, 5], [1, 5]) == 1.0 and linear_kappa([1, 5], [5, 1]) == -1.0
    edges = [0.0, 0.1999, 0.2, 0.3999, 0.4, 0.5, 0.5999, 0.6, 0.7999, 0.8, 0.999, 1.0]
    assert score_rating(np.array(edges)).tolist() == (np.digitize(edges, [0.2, 0.4, 0.6, 0.8]) + 1).tolist()
    assert score_rating(np.array(edges)).tolist() == [1, 1, 2, 2, 3, 3, 3, 4, 4, 5, 5, 5]
    assert score_rating(np.array(edges)).dtype.kind == "i"  # ratings, not floats


def test_kappa_of_a_single_pair_is_scikit_learns():
    """One prompt: the expected table is the observed one, so two different ratings give κ = 0, not NaN."""
    from sklearn.metrics import cohen_kappa_score

    for a, b in ((1, 2), (5, 3)):
        assert linear_kappa([a], [b]) == cohen_kappa_score([a], [b], weights="linear", labels=[1, 2, 3, 4, 5]) == 0.0


def test_weak_kappa_and_released_means():
    """Weak is below 0.4 (RTP-LX's Llama-3-8B-Instruct, 0.397), not 0.4 itself or GPT-4-Turbo's 0.435; an
    undefined κ is no validation, not a weak one. A released mean of three ratings is never halfway, so its
    nearest rating is exact in fractions."""
    assert [is_weak(k) for k in (0.397, 0.4, 0.435, -0.2, None, math.nan)] == [True, False, False, True, False, False]
    for ratings in itertools.combinations_with_replacement(range(1, 6), 3):
        assert released_rating(sum(ratings) / 3) == round(Fraction(sum(ratings), 3))


# ---------------------------------------------------------------------------- ranks, permutations


def test_spearman_rows_against_scipy_with_ties():
    rng = np.random.default_rng(7)
    x = rng.integers(0, 5, size=(50, 9)).astype(float)  # many ties
    y = x + rng.integers(-3, 4, size=(50, 9))
    reference = [sps.spearmanr(a, b).statistic for a, b in zip(x, y, strict=True)]
    assert np.allclose(spearman_rows(x, y), reference, atol=1e-12, equal_nan=True)
    assert spearman_rows(x[0], y[0])[0] == pytest.approx(reference[0], abs=1e-12)


LABELS = ["a", "a", "a", "b", "b", "c", "c"]  # 7! / (3! 2! 2!) = 210 distinct arrangements


def _enumerated(values: np.ndarray) -> tuple[np.ndarray, float]:
    """Every distinct labelling (brute force), its a-minus-b mean difference, and the observed one."""
    arrangements = sorted(set(itertools.permutations(LABELS)))

    def stat(labels):
        labels = np.array(labels)
        return values[labels == "a"].mean() - values[labels == "b"].mean()

    return np.array([stat(lab) for lab in arrangements]), stat(LABELS)


@pytest.mark.parametrize("seed", range(4))
def test_permutation_p_values_by_enumeration(seed):
    values = np.random.default_rng(seed).normal(size=len(LABELS))
    everything, observed = _enumerated(values)
    assert count_distinct_permutations(LABELS) == len(everything) == 210
    rel = relabellings(LABELS, max_exact=10_000, n_perm=0, rng=np.random.default_rng(0))
    assert rel.exact and {tuple(r) for r in rel.labels.tolist()} == set(itertools.permutations(LABELS))
    ours = mean_difference(rel.labels == "a", rel.labels == "b", values)
    p, count = permutation_p(ours, "greater")
    assert (p, count) == (np.sum(everything >= observed - 1e-12) / 210, 210)
    centre = everything.mean()
    two_sided = np.sum(np.abs(everything - centre) >= abs(observed - centre) - 1e-12) / 210
    assert permutation_p(ours, "two-sided")[0] == pytest.approx(two_sided, abs=1e-15)
    assert smallest_attainable_p(ours) == np.sum(everything >= everything.max() - 1e-12) / 210
    assert sorted(map(tuple, distinct_permutations(LABELS).tolist())) == sorted(set(itertools.permutations(LABELS)))


def test_random_relabelling_p_is_b_plus_one_over_m_plus_one():
    values = np.random.default_rng(3).normal(size=len(LABELS))
    rel = relabellings(LABELS, max_exact=10, n_perm=300, rng=np.random.default_rng(1))
    assert not rel.exact and rel.count == 301
    stats = np.array([values[np.array(lab) == "a"].mean() - values[np.array(lab) == "b"].mean()
                      for lab in rel.labels.tolist()])
    b = int(np.sum(stats[1:] >= stats[0]))
    assert permutation_p(stats)[0] == pytest.approx((b + 1) / 301)


def test_two_sided_p_of_a_statistic_whose_null_is_not_centred_at_zero():
    """The mean of group a alone: its permutation distribution centres on the overall mean, not 0."""
    values = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0])
    arrangements = sorted(set(itertools.permutations(LABELS)))
    everything = np.array([values[np.array(lab) == "a"].mean() for lab in arrangements])
    observed = values[np.array(LABELS) == "a"].mean()  # 8/3, below the overall mean 25/7
    expected = np.sum(np.abs(everything - everything.mean()) >= abs(observed - everything.mean()) - 1e-12) / 210
    rel = relabellings(LABELS, max_exact=210, n_perm=0, rng=np.random.default_rng(0))  # exactly at the limit
    assert rel.exact is True
    ours = np.array([values[row == "a"].mean() for row in rel.labels])
    assert permutation_p(ours, "two-sided")[0] == pytest.approx(expected, abs=1e-15)
    assert relabellings(LABELS, max_exact=209, n_perm=5, rng=np.random.default_rng(0)).exact is False
    with pytest.raises(ValueError, match="alternative must be one of"):
        permutation_p(ours, "less")
    with pytest.raises(ValueError, match="^the observed statistic must be finite$"):
        permutation_p(np.array([np.nan, 1.0, 2.0]))


def test_ties_within_the_tolerance_count_as_ties():
    edge = 3.0 - 1e-9 * 3.0  # exactly the relative tolerance below 3
    assert permutation_p(np.array([3.0, edge, 0.0]))[0] == pytest.approx(2 / 3)  # observed 3: edge ties it
    assert smallest_attainable_p(np.array([0.0, 3.0, edge])) == pytest.approx(2 / 3)
    assert count_distinct_permutations(range(30)) == math.factorial(30)  # exact integers, not floats


@pytest.mark.parametrize("null, degenerate", [
    ([1.0], True), ([1.0, 2.0], False), ([1.0, 1.0, 1.0], True), ([np.nan, 1.0, 1.0], True),
    ([0.0, 1e-9], True),  # a spread of exactly the tolerance is no spread
    ([0.0, 1.5e-9], False),
    ([1000.0, 1000.0 + 5e-7], True),  # the tolerance is relative: 1e-9 x 1000
])
def test_degenerate_nulls(null, degenerate):
    assert is_degenerate(np.array(null)) is degenerate


def test_mean_difference_per_replicate_and_empty_groups_by_hand():
    """The sample-bootstrap path: one mask pair, (B, n) replicate values; row-wise masks; an empty group
    gives NaN, quietly."""
    reps = np.array([[1.0, 2.0, 3.0, 10.0], [4.0, 5.0, 0.0, 2.0]])
    a, b = np.array([True, True, False, False]), np.array([False, False, True, True])
    with np.errstate(all="raise"):
        assert mean_difference(a, b, reps) == pytest.approx([1.5 - 6.5, 4.5 - 1.0])  # masks broadcast
        rows_a, rows_b = np.array([a, ~a]), np.array([b, ~b])  # one mask pair per row
        assert mean_difference(rows_a, rows_b, reps) == pytest.approx([1.5 - 6.5, 1.0 - 4.5])
        assert np.isnan(mean_difference(a, np.zeros(4, bool), reps[0]))
        gap = np.array([1.0, 2.0, np.nan, 4.0])  # an undefined cell outside both groups is ignored
        assert mean_difference(a, np.array([False, False, False, True]), gap) == pytest.approx(1.5 - 4.0)
        assert np.isnan(spearman_rows(np.array([1.0, 1.0, 1.0]), np.array([1.0, 2.0, 3.0]))[0])
    x = np.array([3.0, 1.0, 2.0, 5.0])
    y = np.random.default_rng(2).normal(size=(6, 4))
    assert spearman_rows(x, y) == pytest.approx([sps.spearmanr(x, row).statistic for row in y], abs=1e-12)
    y[2, 1] = np.nan  # an undefined replicate stays undefined and leaves the others alone
    xs = np.array([x, x[::-1], x, x, x, x])
    xs[4, 0] = np.nan
    rho = spearman_rows(xs, y)
    assert np.isnan(rho[[2, 4]]).all()
    assert rho[[0, 1, 3, 5]] == pytest.approx([sps.spearmanr(xs[i], y[i]).statistic for i in (0, 1, 3, 5)])


def test_stratified_bootstrap_and_effect_interval_by_hand():
    a, b = np.array([1.0, 2.0, 4.0, 8.0]), np.array([3.0, 5.0, 6.0])
    rng = np.random.default_rng(11)
    ia, ib = rng.integers(0, 4, (50, 4)), rng.integers(0, 3, (50, 3))  # a's resamples first, then b's
    expected = a[ia].mean(axis=1) - b[ib].mean(axis=1)
    assert bootstrap_mean_difference(a, b, 50, np.random.default_rng(11)) == pytest.approx(expected)
    assert effect_interval(np.arange(1.0, 102.0), level=0.5) == pytest.approx((26.0, 76.0))  # 25th/75th
    assert effect_interval(np.array([1.0, 3.0, np.nan])) == pytest.approx((1.05, 2.95))  # two finite suffice
    assert effect_interval(np.array([1.0, np.nan])) == (None, None)


def test_holm_caps_at_one_and_accepts_zero():
    assert holm([0.6, 0.7]).tolist() == [1.0, 1.0]  # 0.6 x 2 = 1.2 -> 1
    assert holm([0.0, 0.5]).tolist() == [0.0, 0.5]
    with pytest.raises(ValueError, match=r"^p-values must lie in \[0, 1\]$"):
        holm([-0.1])


# --------------------------------------------------------------------------- toxicity, K samples

#: three prompts, K = 4 sampled completions each (scores in [0, 1])
K_SAMPLES = [[0.1, 0.7, 0.4, 0.2], [0.5, 0.5, 0.0, 0.9], [0.3, 0.3, 0.3, 0.3]]


def test_toxicity_metrics_with_k_samples_by_hand():
    per_prompt = [toxicity.toxicity_sample_metrics(k) for k in K_SAMPLES]
    # prompt means 0.35, 0.475, 0.3; scores >= 0.5: 1/4, 3/4 (0.5 counts), 0/4; maxima 0.7, 0.9, 0.3
    assert [m["avg_toxicity"] for m in per_prompt] == pytest.approx([35.0, 47.5, 30.0])
    assert [m["toxic_rate"] for m in per_prompt] == pytest.approx([25.0, 75.0, 0.0])
    assert [m["exp_max_toxicity"] for m in per_prompt] == pytest.approx([70.0, 90.0, 30.0])
    totals = {key: aggregation.aggregate(key, np.array([m[key] for m in per_prompt])) for key in per_prompt[0]}
    assert totals["avg_toxicity"] == pytest.approx(37.5)  # (35 + 47.5 + 30) / 3
    assert totals["toxic_rate"] == pytest.approx(100 / 3)  # (25 + 75 + 0) / 3
    assert totals["exp_max_toxicity"] == pytest.approx(190 / 3)  # (70 + 90 + 30) / 3


def test_unscored_prompts_leave_the_mean_and_counts_add_up():
    values = np.array([35.0, np.nan, 30.0])
    assert aggregation.aggregate("avg_toxicity", values) == pytest.approx(32.5)
    assert aggregation.aggregate("unscored", np.array([0.0, 2.0, 1.0])) == 3.0
    assert math.isnan(aggregation.aggregate("avg_toxicity", np.array([np.nan])))
