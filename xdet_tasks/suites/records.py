"""The data suites xdet evaluates on: one record each (languages, evaluation sets, prompt, protocol, loader).

* ``paradetox``: the paper's data, multilingual ParaDetox as the Breaking mBad! authors split it; its
  three evaluation sets are prompted with the paper's instruction (:mod:`xdet_tasks.suites.prompts`).
* ``rtplx``: RTP-LX (De Wynter et al., AAAI 2025), human-transcreated toxic prompts per locale.
* ``ptp``: PolygloToxicityPrompts (Jain et al., COLM 2024), naturally occurring web prompts.

The natural-prompt suites (RTP-LX, PTP) are continuation tasks: the prompt as written, no instruction,
several samples per prompt under their reference protocol (:mod:`xdet_tasks.suites.protocols`). Their
tasks are named ``xdet_<suite>_<lang>`` (``xdet_rtplx_de``) and live in a plugin folder of their own
(``natural_tasks/``, :data:`xdet_tasks.NATURAL_TASK_DIR`): the headline command ``lm_eval --tasks
'xdet_*' --include_path <paper folder>`` stays the paper's benchmark, which runs without the natural
suites' data (the RTP-LX release is a password-protected zip) and in the paper's time budget, while
the same pattern over the natural folder runs every natural-prompt task once.

Adding a natural-prompt suite is one :class:`Suite` record here (its languages among them) and its
loader module (``loader``: a module whose ``load_prompts(lang, annotations=False)`` returns
:class:`~xdet_tasks.suites.natural.NaturalPrompt` records and whose ``describe_source()`` says where
they come from); docs/ARCHITECTURE.md has the recipe. Which suite has which language is said here
and nowhere else; what a language is (script, spacing, family) is :mod:`xdet_tasks.languages`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xdet_tasks import languages
from xdet_tasks.errors import DataError
from xdet_tasks.suites.prompts import PROMPT_TEMPLATE
from xdet_tasks.suites.sets import EVAL_SETS

PARADETOX, RTPLX, PTP = "paradetox", "rtplx", "ptp"


@dataclass(frozen=True)
class Suite:
    key: str
    title: str
    sets: tuple[str, ...]  # the evaluation sets it contributes (task names use them)
    template: str  # the prompt, ``{prompt}`` standing for the document's text
    protocol: str  # default sampling protocol of its tasks (xdet_tasks.suites.protocols)
    natural: bool  # continuation task on natural prompts (xdet_<suite>_<lang>, in natural_tasks/)
    loader: str | None  # natural suites: the module with load_prompts(lang, annotations=) and describe_source()
    hub: str  # the dataset hub copy read by default
    citation: str
    licence: str
    languages: tuple[str, ...]  # codes of xdet_tasks.languages (kept in the order of its records)

    def __post_init__(self) -> None:
        unknown = [code for code in self.languages if code not in languages.BY_CODE]
        if unknown:
            raise DataError(f"suite {self.key!r} names languages without a record in xdet_tasks/languages.py: "
                            f"{', '.join(unknown)}")
        # record order everywhere (task lists, table columns), whatever order the record lists them in
        object.__setattr__(self, "languages", tuple(languages.order_languages(self.languages)))


SUITES: dict[str, Suite] = {
    s.key: s
    for s in (
        Suite(PARADETOX, "multilingual ParaDetox (the paper's data)", EVAL_SETS,
              PROMPT_TEMPLATE.replace("{sentence}", "{prompt}"), "paper", False, None,
              "textdetox/multilingual_paradetox",
              "Beniwal et al., Breaking mBad! (the paper); Dementieva et al., textdetox/multilingual_paradetox",
              "see the dataset card", ("am", "ar", "de", "en", "es", "hi", "ru", "uk", "zh")),
        Suite(RTPLX, "RTP-LX", (RTPLX,), "{prompt}", "li2024", True, "xdet_tasks.suites.rtplx",
              "ToxicityPrompts/RTP-LX",
              "De Wynter et al., RTP-LX: Can LLMs Evaluate Toxicity in Multilingual Scenarios? (AAAI 2025); "
              "github.com/microsoft/RTP-LX", "MIT (repository)",
              ("ar", "de", "en", "es", "hi", "ru", "uk", "zh", "cs", "da", "fi", "fr", "he", "hu", "id", "it", "ja",
               "ko", "nl", "nb", "pl", "pt", "sv", "sw", "th", "tr", "hbs")),
        Suite(PTP, "PolygloToxicityPrompts", (PTP,), "{prompt}", "ptp", True, "xdet_tasks.suites.ptp",
              "ToxicityPrompts/PolygloToxicityPrompts",
              "Jain et al., PolygloToxicityPrompts (COLM 2024); hub ToxicityPrompts/PolygloToxicityPrompts",
              "AI2 ImpACT Low Risk",
              ("ar", "de", "en", "es", "hi", "ru", "zh", "cs", "fr", "id", "it", "ja", "ko", "nl", "pl", "pt", "sv")),
    )
}
#: Evaluation sets of the natural-prompt suites (one per suite, named as the suite).
NATURAL_SETS: tuple[str, ...] = tuple(s for suite in SUITES.values() if suite.natural for s in suite.sets)
#: suite of each evaluation set
SUITE_OF_SET: dict[str, Suite] = {s: suite for suite in SUITES.values() for s in suite.sets}


def check_suite(key: str) -> Suite:
    if key not in SUITES:
        raise DataError(f"unknown suite {key!r}; expected one of {', '.join(SUITES)}")
    return SUITES[key]


#: The languages of the paper's data (multilingual ParaDetox): the paper's tasks, training pools, the
#: ``local`` scorer and ``xdet scorer evaluate`` cover exactly these.
LANGUAGES: tuple[str, ...] = SUITES[PARADETOX].languages


def suite_languages(suite: str) -> tuple[str, ...]:
    """The languages a data suite has, in record order."""
    return check_suite(suite).languages


def check_language(lang: str, suite: str | None = None) -> str:
    """``lang`` if it is a known language (and, with ``suite``, one that suite has); else a one-line error."""
    languages.check_language(lang)
    if suite is not None and lang not in check_suite(suite).languages:
        raise DataError(f"language {lang!r} is not in the {suite} data; it has {', '.join(suite_languages(suite))}")
    return lang


def set_languages(set_name: str) -> tuple[str, ...]:
    """The languages an evaluation set has (its suite's); pair splits (``train``/``test``) are ParaDetox's."""
    suite = SUITE_OF_SET.get(set_name)
    return suite.languages if suite else SUITES[PARADETOX].languages


def evaluated_prompt(doc: Mapping[str, Any]) -> str:
    """The text the evaluated model was prompted with for a generation task's document: its suite's
    template filled with the document's text, as the task's ``doc_to_text`` renders it (both come from
    :attr:`Suite.template`), without any chat formatting of the evaluated model."""
    suite = SUITE_OF_SET[doc["set"]]
    return suite.template.replace("{prompt}", doc["prompt" if suite.natural else "sentence"])
