"""Which metric each table shows: ``--metric`` (a metric or MEASURE=METRIC per measure), ``--at-k`` and
``--on-language-only``, each checked before any run is read."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from xdet.runs.record import ResultsError
from xdet.tables.measures import DEFAULTS, KNOWN_METRICS, MEASURES
from xdet_tasks.metrics import at_k
from xdet_tasks.metrics.language import ON_LANGUAGE_METRICS, on_language
from xdet_tasks.metrics.toxicity import TOXICITY_METRICS
from xdet_tasks.names import DEFAULT_METRICS


def scored(metric: str) -> bool:
    """Whether a toxicity-family metric comes from the scorer (the rates of language, loops and empty
    completions do not, so their tables name no scorer)."""
    return metric in TOXICITY_METRICS or metric in ON_LANGUAGE_METRICS or at_k.parse_metric(metric) is not None


def _measure_metric(opt: str) -> tuple[str, str]:
    """One ``--metric`` value as (measure, metric), checked."""
    measure, _, metric = opt.partition("=") if "=" in opt else ("", "", opt)
    if not measure and metric in MEASURES:
        measure, metric = metric, DEFAULTS[metric]
    if not measure:
        measure = next((m for m, known in KNOWN_METRICS.items() if metric in known), "")
        if not measure:
            close = difflib.get_close_matches(metric, [k for known in KNOWN_METRICS.values() for k in known], n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ResultsError(f"--metric {opt!r}: unknown metric{hint}; give a metric or MEASURE=METRIC "
                               f"(measures: {', '.join(MEASURES)})")
    if measure not in MEASURES:
        raise ResultsError(
            f"--metric {opt!r}: unknown measure {measure!r}; expected one of {', '.join(MEASURES)}"
        )
    if metric not in KNOWN_METRICS[measure]:
        raise ResultsError(f"--metric {opt!r}: unknown {measure} metric {metric!r}; expected one of "
                           f"{', '.join(KNOWN_METRICS[measure])}")
    return measure, metric


def parse_metric_options(options: Iterable[str] | None) -> dict[str, str]:
    """``["toxicity=toxic_rate", "word_perplexity", "fluency"]`` -> metric per measure (defaults elsewhere); a
    bare measure is its default metric, which is how fluency tables are asked for (they need fluency files)."""
    metrics = dict(DEFAULT_METRICS)
    metrics.update(_measure_metric(opt) for opt in options or ())
    return metrics


def named_measures(options: Iterable[str] | None) -> list[str]:
    """The measures ``--metric`` names, in order (what the user asked to see)."""
    return list(dict.fromkeys(_measure_metric(opt)[0] for opt in options or ()))


def apply_at_k(metrics: Mapping[str, str], k: int | None) -> dict[str, str]:
    """``--at-k k``: the toxicity table shows the unbiased estimate at k of its metric
    (``toxicity_probability`` -> ``toxicity_probability_at_10``; :mod:`xdet_tasks.metrics.at_k`)."""
    metrics = {**DEFAULT_METRICS, **metrics}
    if k is None:
        return metrics
    base = metrics["toxicity"]
    if base not in at_k.BASES:
        raise ResultsError(f"--at-k {k}: there is an estimate at k of {' and '.join(at_k.BASES)} only, not {base!r}; "
                           "add --metric toxicity_probability or --metric exp_max_toxicity")
    if k not in at_k.REPORTED_K:
        raise ResultsError(f"--at-k {k}: tasks report k = {', '.join(map(str, at_k.REPORTED_K))}")
    return {**metrics, "toxicity": at_k.metric_name(base, k)}


#: The flag that restricts toxicity to completions in the prompt's language.
ON_LANGUAGE_FLAG = "--on-language-only"


def on_language_only(metrics: Mapping[str, str]) -> dict[str, str]:
    """The toxicity metric of ``metrics`` restricted to on-language completions (``avg_toxicity`` ->
    ``avg_toxicity_on_language``, :mod:`xdet_tasks.metrics.language`); other measures unchanged. A
    toxicity metric with no restricted form (a rate of the language family, ``empty_rate``) is refused."""
    out = {**DEFAULT_METRICS, **metrics}
    metric = out["toxicity"]
    if metric not in TOXICITY_METRICS:
        raise ResultsError(f"{ON_LANGUAGE_FLAG} restricts a toxicity metric ({', '.join(TOXICITY_METRICS)}) to "
                           f"on-language completions; {metric!r} has no such form")
    out["toxicity"] = on_language(metric)
    return out
