"""lm-eval hooks for the xdet tasks: what the YAML cannot say. Each hook delegates to its stage module.

lm-eval loads this file anew for every ``!function`` reference, so it holds no state of its own.
"""

from __future__ import annotations

import os
from typing import Any

from lm_eval.api.filter import Filter

from xdet_tasks import preflight, quiet
from xdet_tasks.errors import DataError
from xdet_tasks.languages import BY_CODE
from xdet_tasks.metrics import at_k, diversity, language, perplexity, preference, toxicity
from xdet_tasks.metrics.aggregation import mean_of_defined
from xdet_tasks.scoring import get_scorer
from xdet_tasks.scoring.completions import ScorerProvenance, parse_record, score_completions_json
from xdet_tasks.scoring.language import IdentifierProvenance
from xdet_tasks.suites import natural
from xdet_tasks.suites import paradetox as data
from xdet_tasks.suites.records import evaluated_prompt
from xdet_tasks.suites.sets import SETS, check_set

quiet.install()


def load_docs(lang: str, eval_set: str | None = None, pairs: str | None = None, suite: str | None = None,
              data_dir: str | None = None, scored: bool = False, **metadata: Any):
    """``custom_dataset``: one language's sentences (``eval_set``), parallel pairs (``pairs`` split) or
    natural prompts (``suite``: RTP-LX, PTP).

    lm-eval passes the task's ``dataset_kwargs`` and ``metadata`` (including ``--metadata``, where
    ``data_dir`` may point at released split files) as keyword arguments. Sentences are stripped of
    leading and trailing whitespace (about 150 of the dataset's carry some): a prompt that ends in a
    space before lm-eval's space delimiter would make the model continue after a double space, and
    lm-eval's task conventions forbid it. ``index`` keeps the row's position in its split.
    Natural prompts are taken as written but for surrounding whitespace (the same convention), with
    their locale and the data's own id; their source settings may come from ``--metadata``
    (``rtplx_dir``, ``rtplx_locales``, ``ptp_split``, ...: :data:`xdet_tasks.suites.natural.METADATA_ENV`).
    A ``scored`` task (generation) also checks its scorer here, at task loading, before any model
    output exists (:mod:`xdet_tasks.preflight`).
    """
    import datasets

    if data_dir and not os.environ.get(data.ENV_DATA_DIR):
        # --metadata data_dir then serves the whole process, so the local scorer trains on the same files
        os.environ[data.ENV_DATA_DIR] = str(data_dir)
    if eval_set is not None:
        split, kind = SETS[check_set(eval_set)]
        rows = [
            {"lang": p.lang, "set": eval_set, "index": p.index, "sentence": getattr(p, kind).strip()}
            for p in preflight.checked(lambda: data.load_pairs(lang, split, data_dir=data_dir))
        ]
    elif suite is not None:
        natural.apply_metadata(metadata)
        rows = [
            {"lang": p.lang, "set": suite, "index": p.index, "id": p.source_index, "locale": p.locale,
             "prompt": p.text.strip()}
            for p in preflight.checked(lambda: natural.load_prompts(suite, lang))
        ]
    elif pairs is not None:
        rows = [
            {"lang": p.lang, "split": p.split, "index": p.index, "neutral": p.neutral.strip(), "toxic": p.toxic.strip()}
            for p in preflight.checked(lambda: data.load_pairs(lang, pairs, data_dir=data_dir))
        ]
    else:
        raise DataError(f"task for {lang!r} names neither eval_set, suite nor pairs in dataset_kwargs")
    if scored:
        preflight.scorer_ready(lang)
        preflight.restart_sampling_stream()
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


class ToxicityScoreFilter(Filter):
    """Scores every completion of the task in one batch per language (see scoring/completions.py)."""

    def __init__(self, **kwargs: Any) -> None:
        for key in ("provenance", "language_identifier"):  # only there to be written into the results file
            kwargs.pop(key, None)
        super().__init__(**kwargs)

    def apply(self, resps, docs):
        # a scorer that rates a completion after its prompt (guard:) is given the text the model was prompted with
        prompts = [evaluated_prompt(doc) for doc in docs] if get_scorer().uses_context else None
        return score_completions_json([list(r) for r in resps], [doc["lang"] for doc in docs], prompts)


#: Referenced from the YAML so that the results file names the scorer that produced the numbers.
scorer_provenance = ScorerProvenance()
#: Likewise for the identifier of every completion's language.
language_identifier = IdentifierProvenance()
#: Referenced from each task's metadata so that the results file names the directory lm-eval ran in.
launch_directory = preflight.LaunchDirectory()


def process_toxicity(doc: dict, results: list) -> dict[str, float | None]:
    """Per-prompt toxicity, toxicity at k < K, degeneration and language metrics; a prompt with an unscored
    completion reports no toxicity, only ``unscored``, the degeneration and language metrics and
    ``empty_rate``, the share of its completions that were empty (scored 0 by rule, so a model that stops
    generating would otherwise look detoxified). The language metrics (:mod:`xdet_tasks.metrics.language`)
    are ``None`` where they do not exist (:func:`mean_of_defined` leaves them out)."""
    (records,) = results
    parsed = [parse_record(rec) for rec in records]
    scores = [rec["toxicity"] for rec in parsed]
    unscored = sum(s is None for s in scores)
    out: dict[str, float | None] = {"unscored": float(unscored), "empty_rate": toxicity.empty_rate(parsed)}
    out.update(diversity.diversity_sample_metrics([rec["text"] for rec in parsed]))
    if not unscored:
        out.update(toxicity.toxicity_sample_metrics(scores))
        out.update(at_k.at_k_sample_metrics(scores))
    out.update(language.language_sample_metrics(parsed, doc["lang"]))
    return out


def process_perplexity(doc: dict, results: list) -> dict[str, object]:
    (loglikelihood,) = results
    return perplexity.perplexity_sample_metrics(loglikelihood, doc["sentence"], spaced=BY_CODE[doc["lang"]].spaced)


def process_preference(doc: dict, results: list) -> dict[str, float]:
    (ll_neutral, _), (ll_toxic, _) = results
    return preference.preference_sample_metrics(ll_neutral, ll_toxic, doc["neutral"], doc["toxic"])


def pref_choices(doc: dict) -> list[str]:
    """The two continuations compared: the neutral paraphrase (the target, index 0) and the toxic original."""
    return [doc["neutral"], doc["toxic"]]


def mean_perplexity(values: list[float]) -> float:
    """Mean of per-sentence perplexities, in numpy floats: a word perplexity of unspaced text (zh: one
    "word" per sentence) can exceed 1e154, where lm-eval's Python-float standard error overflows."""
    import numpy as np

    with np.errstate(over="ignore"):
        return float(np.mean(np.asarray(values, dtype=np.float64)))


#: Aggregation of the language metrics (``None`` where a prompt has nothing to measure).
mean_defined = mean_of_defined


def total(values: list[float]) -> float:
    """Aggregation for counts (lm-eval registers no ``sum``)."""
    return float(sum(values))
