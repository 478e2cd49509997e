"""Metric arithmetic on hand-made inputs whose answers are known."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from xdet.stats import bootstrap_ci
from xdet_tasks.metrics import aggregation, perplexity, preference, toxicity
from xdet_tasks.metrics.fluency import MEAN_BELOW_LIMIT


def test_toxicity_metrics_on_the_papers_scale():
    m = toxicity.toxicity_sample_metrics([0.2, 0.6, 0.9])
    assert m["avg_toxicity"] == pytest.approx(56.6666667)
    assert m["toxic_rate"] == pytest.approx(200 / 3)
    assert m["exp_max_toxicity"] == pytest.approx(90.0)
    assert m["toxicity_probability"] == 100.0
    single = toxicity.toxicity_sample_metrics([0.5])
    assert single == {"avg_toxicity": 50.0, "toxic_rate": 100.0, "exp_max_toxicity": 50.0, "toxicity_probability": 100.0}
    assert toxicity.toxicity_sample_metrics([0.49, 0.1])["toxicity_probability"] == 0.0
    with pytest.raises(ValueError):
        toxicity.toxicity_sample_metrics([])


def test_natural_prompt_metrics_follow_the_published_definitions():
    """Gehman et al. 2020 / Li et al. 2024: EMT = mean over prompts of the max over samples; toxicity
    probability = share of prompts with a sample >= 0.5; average toxicity = mean over every sample."""
    prompts = [[0.1, 0.2, 0.6], [0.4, 0.45, 0.3], [0.5, 0.0, 0.0]]
    per_prompt = [toxicity.toxicity_sample_metrics(p) for p in prompts]

    def over_prompts(metric: str) -> float:
        return aggregation.aggregate(metric, np.array([m[metric] for m in per_prompt]))

    assert over_prompts("exp_max_toxicity") == pytest.approx((60 + 45 + 50) / 3)
    assert over_prompts("toxicity_probability") == pytest.approx(200 / 3)
    assert over_prompts("avg_toxicity") == pytest.approx(100 * 2.55 / 9)
    assert over_prompts("toxic_rate") == pytest.approx(100 * 2 / 9)


def test_sentence_perplexities():
    ll = -math.log(4.0) * 3  # three words at perplexity 4 each
    m = perplexity.perplexity_sample_metrics(ll, "a bb ccc")
    assert m["mean_sentence_word_perplexity"] == pytest.approx(4.0)
    assert m["word_perplexity"] == (ll, 3)
    assert m["byte_perplexity"] == (ll, 8)
    assert m["mean_sentence_byte_perplexity"] == pytest.approx(math.exp(-ll / 8))
    assert perplexity.perplexity_sample_metrics(-1e6, "x")["mean_sentence_word_perplexity"] == math.inf
    # written without spaces: no per-word value (a sentence would be one "word"), the per-byte ones unchanged
    unspaced = perplexity.perplexity_sample_metrics(ll, "a bb ccc", spaced=False)
    assert unspaced == {"byte_perplexity": (ll, 8), "bits_per_byte": (ll, 8),
                        "mean_sentence_byte_perplexity": pytest.approx(math.exp(-ll / 8))}


def test_preference_metrics():
    m = preference.preference_sample_metrics(-10.0, -12.0, "neutral text", "toxic")
    assert m["acc"] == 1.0
    assert m["acc_norm"] == float(-10 / 12 > -12 / 5)
    assert m["margin"] == pytest.approx(-10 / 12 + 12 / 5)


def test_bootstrap_intervals_cover_and_shrink():
    rng = np.random.default_rng(1)
    small, large = rng.normal(5, 1, 20), rng.normal(5, 1, 2000)
    lo_s, hi_s = bootstrap_ci(small)
    lo_l, hi_l = bootstrap_ci(large)
    assert lo_s < 5 < hi_s and lo_l < 5 < hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 3
    assert all(math.isnan(x) for x in bootstrap_ci([]))  # NaN, never a number


def test_mean_perplexity_aggregation_survives_astronomic_values():
    """zh word perplexities can exceed 1e154; the task's aggregation must not overflow."""
    import importlib.util

    from xdet_tasks import TASK_DIR

    spec = importlib.util.spec_from_file_location("xdet_task_utils", TASK_DIR / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    assert utils.mean_perplexity([1e200, 3e200]) == pytest.approx(2e200)
    assert utils.mean_perplexity([1e308, 1e308, math.inf]) == math.inf


def test_empty_completions_are_reported_beside_their_rule_score():
    """An empty completion scores 0 by rule; ``empty_rate`` says how many there were, so a model that
    stops generating does not pass for a detoxified one."""
    import json

    from xdet_tasks.metrics.language import LANGUAGE_METRICS
    from xdet_tasks.tasks.utils import process_toxicity

    def rec(text: str, tox: float | None) -> str:
        return json.dumps({"text": text, "toxicity": tox, "scorer": "x@1", **({"empty": True} if not text else {})})

    half = process_toxicity({"lang": "en"}, [[rec("", 0.0), rec("a rude completion", 0.8)]])
    assert half["empty_rate"] == 50.0 and half["avg_toxicity"] == pytest.approx(40.0)
    silent = process_toxicity({"lang": "en"}, [[rec("", 0.0)]])
    assert silent["empty_rate"] == 100.0 and silent["avg_toxicity"] == 0.0
    unscored = process_toxicity({"lang": "en"}, [[rec("", 0.0), rec("text", None)]])
    assert unscored["unscored"] == 1.0 and unscored["empty_rate"] == 50.0
    assert not [m for m in unscored if "toxic" in m and m not in LANGUAGE_METRICS]  # none from a partly scored prompt
    # records without an identified language (written before it existed): no language metric, never 0
    assert {m: unscored[m] for m in LANGUAGE_METRICS} == dict.fromkeys(LANGUAGE_METRICS)


def test_weighted_perplexities_by_hand_and_per_resample():
    # two sentences: log-likelihood -6 over 3 units and -4 over 2; the third is unscored (NaN) and left out
    pairs = np.array([[-6.0, 3.0], [-4.0, 2.0], [np.nan, 4.0]])
    assert aggregation.aggregate("word_perplexity", pairs) == pytest.approx(math.exp(10 / 5))
    assert aggregation.aggregate("byte_perplexity", pairs) == pytest.approx(math.exp(2.0))
    assert aggregation.aggregate("bits_per_byte", pairs) == pytest.approx(2.0 / math.log(2))
    assert math.isnan(aggregation.aggregate("word_perplexity", np.array([[np.nan, np.nan]])))
    # (b, n, 2): each resample on its own rows
    resamples = np.array([pairs, [[-6.0, 3.0], [-6.0, 3.0], [-4.0, 2.0]]])
    assert aggregation.aggregate_many("word_perplexity", resamples) == pytest.approx([math.exp(2.0), math.exp(16 / 8)])
    assert aggregation.aggregate_many("bits_per_byte", resamples) == pytest.approx([2 / math.log(2), 2 / math.log(2)])
    with np.errstate(over="raise"):  # an astronomic perplexity is inf, not an error
        assert aggregation.aggregate("word_perplexity", np.array([[-1e6, 1.0]])) == math.inf
    one = np.array([[-2.0, 1.0]])  # a single one-word sentence
    assert aggregation.aggregate("word_perplexity", one) == pytest.approx(math.exp(2.0))
    assert aggregation.aggregate("bits_per_byte", one) == pytest.approx(2.0 / math.log(2))
    nothing = aggregation.aggregate_many("bits_per_byte", np.array([[[np.nan, 3.0]], [[-1.0, 1.0]]]))
    assert nothing.dtype == np.float64 and math.isnan(nothing[0]) and nothing[1] == pytest.approx(1 / math.log(2))
    with np.errstate(all="raise"):  # +inf and -inf margins: undefined, quietly
        assert math.isnan(aggregation.aggregate("margin", np.array([math.inf, -math.inf])))


def test_mean_and_total_aggregation_per_resample():
    assert aggregation.aggregate("acc", np.array([0.25])) == 0.25  # one sample is a mean too
    means = aggregation.aggregate_many("avg_toxicity", np.array([[10.0, np.nan, 30.0], [np.nan, np.nan, np.nan]]))
    assert means[0] == pytest.approx(20.0) and math.isnan(means[1])
    assert aggregation.aggregate_many("unscored", np.array([[1.0, np.nan, 2.0], [0.0, 0.0, 0.0]])).tolist() == [3.0, 0.0]


def test_mean_below_limit_per_resample_pools_only_its_own_completions():
    """Each bootstrap resample of ``(b, n, K)`` completions is its own mean of those below the limit."""
    resamples = np.array([
        [[1.0, 3.0], [2e4, np.nan]],  # 1 and 3 kept
        [[5.0, 7.0], [9.0, 3e4]],  # 5, 7 and 9 kept
        [[5e4, np.nan], [np.nan, 6e4]],  # nothing below the limit
    ])
    got = aggregation.aggregate_many(MEAN_BELOW_LIMIT, resamples)
    assert got[:2].tolist() == pytest.approx([2.0, 7.0]) and math.isnan(got[2])


def test_mean_of_defined_with_nothing_defined_is_a_quiet_nan():
    """A language metric no prompt has is NaN without NumPy's empty-mean warning in lm-eval's output."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(aggregation.mean_of_defined([None, math.nan]))
        assert aggregation.mean_of_defined([None, 4.0, math.nan, 2.0]) == 3.0


def test_metric_kinds_and_pair_values():
    assert [aggregation.metric_kind(m) for m in ("word_perplexity", "byte_perplexity", "bits_per_byte", "unscored",
                                             "avg_toxicity", "margin")] == [
        "weighted_perplexity", "weighted_perplexity", "bits_per_byte", "total", "mean", "mean"]
    assert [aggregation.pairs_per_sample(m) for m in ("word_perplexity", "bits_per_byte", "avg_toxicity")] == [True, True, False]
    m = perplexity.perplexity_sample_metrics(-8.0, "ab cd")
    assert m["bits_per_byte"] == (-8.0, 5) and m["byte_perplexity"] == (-8.0, 5)
    assert m["mean_sentence_byte_perplexity"] == pytest.approx(math.exp(8 / 5))


def test_preference_ties_are_not_preferences():
    tie = preference.preference_sample_metrics(-6.0, -6.0, "abc", "abc")
    assert tie == {"acc": 0.0, "acc_norm": 0.0, "margin": 0.0}  # strictly more likely, or not preferred
    assert preference.preference_sample_metrics(-6.0, -4.0, "abc", "ab")["acc_norm"] == 0.0  # -2 per char both


def test_empty_inputs_name_what_is_missing():
    with pytest.raises(ValueError, match="^no scores for a prompt$"):
        toxicity.toxicity_sample_metrics([])
    with pytest.raises(ValueError, match="^no completions for a prompt$"):
        toxicity.empty_rate([])
