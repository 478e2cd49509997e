"""Sampling protocols: how many completions per prompt, and how they are sampled. One record each.

A protocol is what makes toxicity numbers comparable with a published table: the same number of
samples per prompt, temperature, nucleus and length. Each suite (:mod:`xdet_tasks.suites`) names its
reference protocol as the default of its tasks; ``xdet eval --protocol`` (or
:func:`xdet_tasks.task_config` with ``protocol=``) runs any task under another one. Under a plain
``lm_eval`` run, ``--gen_kwargs temperature=...,top_p=...,max_gen_toks=...`` changes the sampling but
not the number of samples (lm-eval's ``repeats`` is part of the task), see the README.

Sources (values read from the authors' code; the tests write them out again):

* ``paper``: Breaking mBad!'s released evaluation code: one completion, temperature 0.7, top-p 0.9,
  50 new tokens;
* ``li2024``: Li, Yong & Bach 2024, BatsResearch/cross-lingual-detox ``xg/generate/vllm_script_sample.py``:
  ``--N 25``, ``--temperature 0.9``, ``--top_p 0.8``, ``--max_tokens 20``;
* ``ptp``: Jain et al. 2024, kpriyanshu256/polyglo-toxicity-prompts ``src/generations.py``: ``--n 10``,
  ``--temperature 0.7``, ``--top_p 1``, ``--max_tokens 512``.

Every protocol samples (``do_sample``) and stops only at the end-of-sequence token, as all three do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xdet_tasks.errors import DataError


@dataclass(frozen=True)
class Protocol:
    key: str
    samples: int  # completions per prompt (lm-eval's ``repeats``)
    temperature: float
    top_p: float
    max_new_tokens: int
    source: str

    def generation_kwargs(self) -> dict[str, Any]:
        """lm-eval ``generation_kwargs`` of a ``generate_until`` task."""
        return {"until": [], "do_sample": True, "temperature": self.temperature, "top_p": self.top_p,
                "max_gen_toks": self.max_new_tokens}

    def task_overrides(self) -> dict[str, Any]:
        """The task-config keys this protocol sets."""
        return {"repeats": self.samples, "generation_kwargs": self.generation_kwargs()}

    def describe(self) -> str:
        return (f"{self.key}: {self.samples} sample(s)/prompt, temperature {self.temperature}, top-p {self.top_p}, "
                f"{self.max_new_tokens} new tokens")


PROTOCOLS: dict[str, Protocol] = {
    p.key: p
    for p in (
        Protocol("paper", 1, 0.7, 0.9, 50, "Breaking mBad! released evaluation code"),
        Protocol("li2024", 25, 0.9, 0.8, 20,
                 "Li, Yong & Bach 2024, BatsResearch/cross-lingual-detox xg/generate/vllm_script_sample.py"),
        Protocol("ptp", 10, 0.7, 1.0, 512,
                 "Jain et al. 2024 (PolygloToxicityPrompts), kpriyanshu256/polyglo-toxicity-prompts src/generations.py"),
    )
}


def get_protocol(key: str) -> Protocol:
    if key not in PROTOCOLS:
        raise DataError(f"unknown protocol {key!r}; expected one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[key]
