"""The task-name grammar: the one place that builds and parses xdet task, tag and group names.

Leaf tasks of the paper's data are ``<prefix><set>_<lang>``: ``xdet_toxic_test_de`` (generation,
scored for toxicity), ``xdet_ppl_toxic_test_de`` (perplexity), ``xdet_pref_test_de`` (preference
between the two halves of a pair). Every one matches ``xdet_*``, so ``lm_eval --tasks 'xdet_*'`` runs
the paper's benchmark, each task once. The natural-prompt suites' generation tasks follow the same
grammar with the suite as the set, ``xdet_<suite>_<lang>`` (``xdet_rtplx_de``, ``xdet_ptp_de``), but
live in a plugin folder of their own (:data:`xdet_tasks.NATURAL_TASK_DIR`; :mod:`xdet_tasks.suites.records`
says why), so ``xdet_*`` over the paper's folder stays the paper's benchmark.

Collections a user combines freely are lm-eval *tags* (``xdet``, ``xdet_de``, ``xdet_toxic_test``,
``xdet_ppl``, ``xdet_pref``): a tag expands to its tasks, so overlapping tags on one command line
never raise lm-eval's duplicate-task error. Averages over languages need lm-eval *groups*, and
lm-eval refuses a group together with one of its own tasks; the averaging groups are therefore
named outside the ``xdet_*`` pattern (``xdet-avg`` and its parts) and are meant to be run alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from xdet_tasks.errors import DataError
from xdet_tasks.languages import order_languages
from xdet_tasks.metrics import at_k, diversity
from xdet_tasks.metrics.language import LANGUAGE_METRICS
from xdet_tasks.metrics.toxicity import TOXICITY_METRICS
from xdet_tasks.suites.protocols import PROTOCOLS
from xdet_tasks.suites.records import (
    LANGUAGES,
    NATURAL_SETS,
    PARADETOX,
    SUITES,
    check_language,
    check_suite,
    set_languages,
)
from xdet_tasks.suites.sets import EVAL_SETS, PAIR_SPLITS, slug


@dataclass(frozen=True)
class TaskFamily:
    """One kind of xdet task: how its names look and what its metrics measure."""

    key: str  # the ``--families`` vocabulary: gen, ppl, pref
    measure: str  # what the metrics measure: toxicity, perplexity, preference
    prefix: str
    filter: str  # the lm-eval filter its metrics are reported under
    sets: tuple[str, ...]  # evaluation sets (gen, ppl) or pair splits (pref)
    metrics: tuple[str, ...]
    default_metric: str  # what a table shows unless told otherwise
    tabled: bool  # the paper prints tables of this measure

    def task(self, set_name: str, lang: str) -> str:
        return f"{self.prefix}{slug(set_name)}_{lang}"


GENERATION = TaskFamily(
    "gen", "toxicity", "xdet_", "toxicity", EVAL_SETS + NATURAL_SETS,
    (*TOXICITY_METRICS, *at_k.METRICS, "repetition_rate", *diversity.DISTINCT_METRICS, "empty_rate",
     *LANGUAGE_METRICS, "unscored"),
    "avg_toxicity", True,
)
PERPLEXITY = TaskFamily(
    "ppl", "perplexity", "xdet_ppl_", "none", EVAL_SETS,
    ("mean_sentence_word_perplexity", "mean_sentence_byte_perplexity", "word_perplexity", "byte_perplexity",
     "bits_per_byte"),
    "mean_sentence_byte_perplexity", True,
)
PREFERENCE = TaskFamily(
    "pref", "preference", "xdet_pref_", "none", PAIR_SPLITS, ("acc", "acc_norm", "margin"), "margin", False,
)
TASK_FAMILIES: tuple[TaskFamily, ...] = (GENERATION, PERPLEXITY, PREFERENCE)
FAMILY_KEYS: tuple[str, ...] = tuple(f.key for f in TASK_FAMILIES)
BY_KEY: dict[str, TaskFamily] = {f.key: f for f in TASK_FAMILIES}
BY_MEASURE: dict[str, TaskFamily] = {f.measure: f for f in TASK_FAMILIES}
#: The measures the paper prints tables of, in the paper's order.
TABLE_MEASURES: tuple[str, ...] = tuple(f.measure for f in TASK_FAMILIES if f.tabled)
#: The metric a table shows per measure unless told otherwise.
DEFAULT_METRICS: dict[str, str] = {f.measure: f.default_metric for f in TASK_FAMILIES if f.tabled}

_LANG = re.compile(r"^[a-z]{2,3}$")
#: Longest prefix first, so ``xdet_ppl_`` wins over ``xdet_``.
_BY_PREFIX = sorted(TASK_FAMILIES, key=lambda f: len(f.prefix), reverse=True)


def generation_metrics(samples: int) -> tuple[str, ...]:
    """The metrics of a generation task with ``samples`` completions per prompt (its ``repeats``): an
    at-k estimate only for k < K (at k = K it is the plain metric), distinct-n from K = 2 on."""
    return tuple(m for m in GENERATION.metrics if at_k.reported(m, samples) and diversity.reported(m, samples))


@dataclass(frozen=True)
class TaskRef:
    """What a leaf task name means."""

    task: str
    family: TaskFamily
    set: str  # evaluation set (gen, ppl) or pair split (pref)
    lang: str

    @property
    def measure(self) -> str:
        return self.family.measure


def task_name(family: TaskFamily | str, set_name: str, lang: str) -> str:
    """``(gen | toxicity, toxic-test, de)`` -> ``xdet_toxic_test_de``."""
    if isinstance(family, str):
        family = BY_KEY.get(family) or BY_MEASURE[family]
    return family.task(set_name, lang)


def parse_task(task: str) -> TaskRef | None:
    """``xdet_ppl_toxic_test_de`` -> (perplexity, toxic-test, de); ``None`` for anything else."""
    for family in _BY_PREFIX:
        if not task.startswith(family.prefix):
            continue
        rest, _, lang = task[len(family.prefix):].rpartition("_")
        matches = [s for s in family.sets if slug(s) == rest]
        if matches and _LANG.match(lang):
            return TaskRef(task, family, matches[0], lang)
        return None
    return None


def task_names(
    langs: Sequence[str] | None = None, families: Sequence[str] = FAMILY_KEYS, suites: Sequence[str] = (PARADETOX,)
) -> list[str]:
    """The leaf tasks of ``suites`` × ``families`` for ``langs`` (default: each suite's languages).

    ParaDetox: per language its generation and perplexity tasks set by set, then its preference
    tasks; a natural-prompt suite: one generation task per language. With several suites, a
    language only some of them have is evaluated on those; one that none has is refused.
    """
    unknown = [f for f in families if f not in BY_KEY]
    if unknown:
        raise DataError(f"unknown task famil{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}; "
                        f"expected some of {', '.join(FAMILY_KEYS)}")
    chosen = [check_suite(s) for s in suites]
    if langs is not None:
        for lang in langs:
            check_language(lang)
            if len(chosen) == 1:
                check_language(lang, chosen[0].key)
            elif not any(lang in suite.languages for suite in chosen):
                raise DataError(f"language {lang!r} is in none of the suites {', '.join(suites)}")
    names: list[str] = []
    for suite in chosen:
        for lang in suite.languages if langs is None else [x for x in langs if x in suite.languages]:
            if suite.natural:
                names += [GENERATION.task(s, lang) for s in suite.sets if "gen" in families]
                continue
            for set_name in suite.sets:
                names += [BY_KEY[k].task(set_name, lang) for k in ("gen", "ppl") if k in families]
            if "pref" in families:
                names += [PREFERENCE.task(split, lang) for split in PAIR_SPLITS]
    return names


def is_generation(task: str) -> bool:
    """Generation tasks (and collections of them) need a toxicity scorer; the others do not."""
    ref = parse_task(task)
    if ref is not None:
        return ref.family is GENERATION
    return any(parse_task(t).family is GENERATION for t in collection_tasks(task))


# ------------------------------------------------------------------------------------------ collections


@dataclass(frozen=True)
class Collection:
    """A named set of leaf tasks: an lm-eval tag, or an averaging group (``aggregate`` metrics)."""

    name: str
    tasks: tuple[str, ...]
    description: str
    aggregate: tuple[str, ...] = ()  # averaged over the tasks (a group); empty: a tag
    filter: str = "none"
    parts: tuple[str, ...] = ()  # sub-groups of a group of groups

    @property
    def is_group(self) -> bool:
        return bool(self.aggregate or self.parts)


AVG_GROUP = "xdet-avg"
#: What an averaging group reports, per family: means over languages, each language weighted
#: equally as in the paper's AVG column. Word perplexity is not averaged: for unspaced scripts (zh) it
#: is meaningless (one "word" a sentence) and would swamp the mean.
_AVERAGED: dict[str, tuple[str, ...]] = {
    "ppl": ("bits_per_byte", "mean_sentence_byte_perplexity"),
    "pref": ("acc", "acc_norm", "margin"),
}


def _averaged(family: TaskFamily, samples: int) -> tuple[str, ...]:
    """A group's averages; generation: every metric its tasks report at their K but the unscored count."""
    if family is GENERATION:
        return tuple(m for m in generation_metrics(samples) if m != "unscored")
    return _AVERAGED[family.key]


def _avg_group_name(family: TaskFamily, set_name: str) -> str:
    family_part = "" if family is GENERATION else f"{family.key}-"
    return f"{AVG_GROUP}-{family_part}{set_name}"


def collections(langs: Sequence[str] = LANGUAGES) -> dict[str, Collection]:
    """Every tag and averaging group of the plugin, by name (``langs``: the paper's data's languages).

    The natural-prompt suites add a tag ``xdet_<suite>`` (every language) and an averaging group
    ``xdet-avg-<suite>``; ``xdet-avg`` stays the paper's benchmark."""
    out: dict[str, Collection] = {}

    def add(c: Collection) -> None:
        out[c.name] = c

    add(Collection("xdet", tuple(GENERATION.task(s, lang) for s in EVAL_SETS for lang in langs),
                   "all generation (toxicity) tasks"))
    for set_name in EVAL_SETS:
        add(Collection(f"xdet_{slug(set_name)}", tuple(GENERATION.task(set_name, lang) for lang in langs),
                       f"generation tasks on {set_name}, every language"))
    for lang in langs:
        add(Collection(f"xdet_{lang}", tuple(GENERATION.task(s, lang) for s in EVAL_SETS),
                       f"generation tasks of {lang}, every evaluation set"))
    for family in (PERPLEXITY, PREFERENCE):
        add(Collection(family.prefix.rstrip("_"), tuple(family.task(s, lang) for s in family.sets for lang in langs),
                       f"all {family.measure} tasks"))
    parts = []
    for family in TASK_FAMILIES:
        for set_name in (s for s in family.sets if s not in NATURAL_SETS):
            name = _avg_group_name(family, set_name)
            parts.append(name)
            add(Collection(name, tuple(family.task(set_name, lang) for lang in langs),
                           f"{family.measure} on {set_name}, averaged over languages",
                           aggregate=_averaged(family, PROTOCOLS[SUITES[PARADETOX].protocol].samples),
                           filter=family.filter))
    add(Collection(AVG_GROUP, tuple(t for p in parts for t in out[p].tasks),
                   "the whole benchmark with every average (run it alone)", parts=tuple(parts)))
    for suite in (s for s in SUITES.values() if s.natural):
        tasks = tuple(GENERATION.task(s, lang) for s in suite.sets for lang in suite.languages)
        add(Collection(f"{GENERATION.prefix}{slug(suite.key)}", tasks, f"{suite.title}: every language"))
        add(Collection(_avg_group_name(GENERATION, suite.key), tasks, f"{suite.title}, averaged over languages",
                       aggregate=_averaged(GENERATION, PROTOCOLS[suite.protocol].samples), filter=GENERATION.filter))
    return out


def collection_tasks(name: str) -> tuple[str, ...]:
    """The leaf tasks of a tag or group; a leaf task stands for itself; unknown names give ``()``."""
    ref = parse_task(name)
    if ref is not None:
        return (name,) if ref.lang in set_languages(ref.set) else ()
    found = collections().get(name)
    return found.tasks if found else ()


def task_languages(name: str) -> list[str]:
    """The evaluation languages a task, tag or group covers, in record order."""
    return order_languages({parse_task(t).lang for t in collection_tasks(name)})


def expand(names: Iterable[str]) -> list[str]:
    """Leaf tasks of ``names`` (tasks, tags, groups), each once, in order of first appearance."""
    return list(dict.fromkeys(t for name in names for t in collection_tasks(name)))
