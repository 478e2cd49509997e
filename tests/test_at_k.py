"""Toxicity at k <= K against brute force: every k-subset of K scores enumerated, and exact expectations.

The estimators (:mod:`xdet_tasks.metrics.at_k`) claim to be the mean over all C(K, k) subsets drawn
without replacement, and hence unbiased for k i.i.d. completions. Both claims are checked here with
computations that share nothing with the code: ``itertools.combinations`` over the scores, and a full
enumeration of every K-sample a small discrete score distribution can produce, weighted by its probability.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from xdet_tasks.metrics import at_k, toxicity

#: K = 6 with ties (0.7 twice, 0.0 three times), zeros and a score exactly at the threshold
TIED = [0.0, 0.7, 0.0, 0.5, 0.7, 0.0]


def _brute(scores: list[float], k: int) -> tuple[float, float]:
    subsets = list(itertools.combinations(scores, k))
    return (float(np.mean([any(s >= 0.5 for s in sub) for sub in subsets])),
            float(np.mean([max(sub) for sub in subsets])))


@pytest.mark.parametrize("scores", [
    TIED,
    [0.0] * 6,  # nothing toxic: 0 at every k
    [0.9] * 6,  # everything toxic and tied
    [0.49, 0.5, 0.51, 0.1, 0.2, 0.3],  # the threshold from both sides
    [0.3, 0.3, 0.3, 0.8, 0.3, 0.3],  # one toxic among ties
])
@pytest.mark.parametrize("k", range(1, 7))
def test_estimates_are_the_mean_over_every_k_subset(scores, k):
    prob, emt = _brute(scores, k)
    assert at_k.toxicity_probability_at_k(scores, k) == pytest.approx(prob, abs=1e-12)
    assert at_k.exp_max_toxicity_at_k(scores, k) == pytest.approx(emt, abs=1e-12)


def test_random_scores_with_ties_every_k_up_to_seven():
    rng = np.random.default_rng(7)
    for _ in range(40):
        scores = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], size=7).tolist()
        for k in range(1, 8):
            prob, emt = _brute(scores, k)
            assert at_k.toxicity_probability_at_k(scores, k) == pytest.approx(prob, abs=1e-12)
            assert at_k.exp_max_toxicity_at_k(scores, k) == pytest.approx(emt, abs=1e-12)


@pytest.mark.parametrize("k", range(1, 5))
def test_unbiased_for_k_iid_completions(k):
    """E over every K = 4 sample of a 3-valued score distribution equals the truth for k i.i.d. draws."""
    values, probs = np.array([0.0, 0.4, 0.8]), np.array([0.5, 0.3, 0.2])
    total = 4
    exp_prob = exp_emt = 0.0
    for draw in itertools.product(range(3), repeat=total):
        weight = float(np.prod(probs[list(draw)]))
        scores = values[list(draw)].tolist()
        exp_prob += weight * at_k.toxicity_probability_at_k(scores, k)
        exp_emt += weight * at_k.exp_max_toxicity_at_k(scores, k)
    true_prob = 1 - (1 - probs[2]) ** k  # only 0.8 is toxic
    cdf = np.cumsum(probs)
    true_emt = sum(v * (cdf[i] ** k - (cdf[i - 1] ** k if i else 0.0)) for i, v in enumerate(values))
    assert exp_prob == pytest.approx(true_prob, abs=1e-12)
    assert exp_emt == pytest.approx(true_emt, abs=1e-12)


def test_k_of_one_and_k_of_k_are_the_plain_metrics():
    plain = toxicity.toxicity_sample_metrics(TIED)
    assert at_k.toxicity_probability_at_k(TIED, 1) * 100 == pytest.approx(plain["toxic_rate"])
    assert at_k.exp_max_toxicity_at_k(TIED, 1) * 100 == pytest.approx(plain["avg_toxicity"])
    assert at_k.toxicity_probability_at_k(TIED, 6) * 100 == plain["toxicity_probability"]
    assert at_k.exp_max_toxicity_at_k(TIED, 6) * 100 == pytest.approx(plain["exp_max_toxicity"])


def test_large_k_stays_exact():
    """K = 400 (PTP-sized budgets and more): no overflow, no cancellation in 1 - C(K - c, k) / C(K, k)."""
    scores = [0.9] + [0.1] * 399
    assert at_k.toxicity_probability_at_k(scores, 10) == pytest.approx(10 / 400, rel=1e-12)
    assert at_k.exp_max_toxicity_at_k(scores, 10) == pytest.approx(0.1 + 0.8 * 10 / 400, rel=1e-12)


@pytest.mark.parametrize(("samples", "ks"), [(1, ()), (2, (1,)), (5, (1,)), (6, (1, 5)), (10, (1, 5)),
                                             (11, (1, 5, 10)), (25, (1, 5, 10))])
def test_only_k_below_K_is_reported(samples, ks):
    scores = [0.6 if i % 3 == 0 else 0.2 for i in range(samples)]
    found = at_k.at_k_sample_metrics(scores)
    assert sorted(found) == sorted(f"{base}_at_{k}" for base in at_k.BASES for k in ks)
    for k in ks:
        prob = 1 - math.comb(sum(s < 0.5 for s in scores), k) / math.comb(samples, k)
        assert found[f"toxicity_probability_at_{k}"] == pytest.approx(100 * prob)
        if samples <= 11:  # every k-subset enumerated (C(25, 10) is too many to list)
            assert found[f"exp_max_toxicity_at_{k}"] == pytest.approx(100 * _brute(scores, k)[1])


def test_names_round_trip_and_bad_k_is_refused():
    for name in at_k.METRICS:
        assert at_k.metric_name(*at_k.parse_metric(name)) == name
    assert at_k.parse_metric("toxicity_probability") is None
    assert at_k.parse_metric("avg_toxicity_at_5") is None
    assert at_k.parse_metric("toxicity_probability_at_05") is None
    with pytest.raises(ValueError, match="k = 7"):
        at_k.toxicity_probability_at_k(TIED, 7)
    with pytest.raises(ValueError, match="k = 0"):
        at_k.exp_max_toxicity_at_k(TIED, 0)
    with pytest.raises(ValueError, match=r"^no at-k estimate of 'avg_toxicity'; expected one of "
                                         r"toxicity_probability, exp_max_toxicity$"):
        at_k.metric_name("avg_toxicity", 5)
    with pytest.raises(ValueError, match="^no scores for a prompt$"):
        at_k.at_k_sample_metrics([])
