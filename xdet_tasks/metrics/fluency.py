"""Fluency: a completion's conditional perplexity given its prompt under a reference language model.

The field's guard against a detoxification that "works" by degrading the text. DExperts (Liu et al.,
2021, ``scripts/evaluation/evaluate_generations.py``) score every completion under GPT-2 XL and report
the mean over completions; Li et al. (2024, BatsResearch/cross-lingual-detox ``xg/eval/metric_perplexity.py``)
use mT5-XL and report the median with its quartiles. Both leave out perplexities of 1e4 or more ("for
sanity"). Per completion of T tokens c_1..c_T after prompt x (:mod:`xdet.fluency.compute` computes it):

    perplexity = exp( (1/T) * sum_t -log p_ref(c_t | x, c_<t) )

A completion with no tokens has no perplexity: NaN, never 0, and left out of every aggregate.

xdet's headline statistic is the median over completions, with no cut: the median is already
insensitive to the degenerate tail the cut was for, while a cut removes a run-dependent subset, so a Δ
of two cut statistics compares different completions (a fine-tuned model that degenerates more often
loses exactly its worst completions). DExperts' statistic, the mean of the perplexities below 1e4, is
the second metric, for comparison with published numbers. The aggregation rules themselves are in
:mod:`xdet_tasks.metrics.aggregation` (the bootstrap uses them too).
"""

from __future__ import annotations

import math

#: The measure's name in tables and analyses (``xdet tables --metric fluency``).
MEASURE = "fluency"
#: Median over a task's completions (Li et al.'s statistic, without their cut); the default.
MEDIAN = "median_completion_perplexity"
#: Mean over the completions whose perplexity is below :data:`SANITY_LIMIT` (DExperts' statistic).
MEAN_BELOW_LIMIT = "mean_completion_perplexity_below_1e4"
METRICS: tuple[str, ...] = (MEDIAN, MEAN_BELOW_LIMIT)
DEFAULT_METRIC = MEDIAN
#: DExperts' and Li et al.'s "for sanity" bound: perplexities at or above it are left out of their statistics.
SANITY_LIMIT = 1e4


def completion_perplexity(nll: float | None, tokens: int) -> float:
    """``exp(nll / tokens)`` for a completion whose ``tokens`` tokens have summed negative
    log-likelihood ``nll`` (nats); NaN for a completion without tokens, ``inf`` past float range."""
    if tokens <= 0 or nll is None:
        return math.nan
    try:
        return math.exp(nll / tokens)
    except OverflowError:
        return math.inf
