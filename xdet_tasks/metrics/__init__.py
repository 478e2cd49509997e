"""Per-sample metrics of the xdet tasks, one family per module, and how lm-eval aggregates them.

* :mod:`~xdet_tasks.metrics.toxicity`: a prompt's K completions -> AT, toxic rate, EMT, toxicity
  probability, empty rate (0-100 scale);
* :mod:`~xdet_tasks.metrics.at_k`: a prompt's K scores -> unbiased toxicity probability and EMT at k < K;
* :mod:`~xdet_tasks.metrics.diversity`: a prompt's K completions -> repetition rate, distinct-1/2/3, counted
  on the script-aware units of :mod:`~xdet_tasks.metrics.units`;
* :mod:`~xdet_tasks.metrics.language`: a prompt's K completions -> share in the prompt's language, share
  of unknown language, toxicity of the on-language ones;
* :mod:`~xdet_tasks.metrics.perplexity`: a sentence's log-likelihood -> per-word and per-byte perplexity;
* :mod:`~xdet_tasks.metrics.preference`: neutral paraphrase vs toxic original -> acc, acc_norm, margin;
* :mod:`~xdet_tasks.metrics.fluency`: a completion's perplexity given its prompt under a reference LM
  (computed after the run by ``xdet fluency``, not by an lm-eval task);
* :mod:`~xdet_tasks.metrics.aggregation`: per-sample values -> the task's number (lm-eval's rules; the
  fluency median and cut mean over completions), also for bootstrap resamples.

A new per-completion measure is a module here of the same form: pure functions from one prompt's
values to a dict of metrics, each definition cited in its docstring.
"""
