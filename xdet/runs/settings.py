"""What makes two numbers of a task comparable: the settings a run actually used, read from lm-eval's files.

A toxicity number depends on more than the model: how the completions were sampled, how many per
prompt, on which documents and prompts, with which seed, scored by which scorer, under which task
version. lm-eval records every one of these in its results file (``--gen_kwargs`` included: it
rewrites the task's ``generation_kwargs``), for ``xdet eval`` folders and plain ``lm_eval`` output
alike, so they are read from there, per task, and never from what a command line is assumed to have
been. Two results of one task merge only when these agree; a Δ is only taken between runs whose
settings agree, unless the user names the settings that may differ (then the table says so).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xdet.runs.record import ResultsError
from xdet_tasks.io import iter_jsonl
from xdet_tasks.scoring.completions import parse_provenance, parse_record
from xdet_tasks.scoring.language import parse_identifier
from xdet_tasks.scoring.routing import language_provenance


@dataclass(frozen=True)
class Setting:
    key: str  # as messages and ``--allow-different`` name it
    meaning: str
    source: str  # where lm-eval records it
    #: a Δ across two values may be taken on request (``--allow-different``); not so for the scorer,
    #: whose numbers on two sides of a Δ would be two different metrics
    allowable: bool = True


SETTINGS: tuple[Setting, ...] = (
    Setting("temperature", "sampling temperature", "configs[task].generation_kwargs (--gen_kwargs included)"),
    Setting("top_p", "nucleus sampling mass", "configs[task].generation_kwargs"),
    Setting("max_gen_toks", "most new tokens per completion", "configs[task].generation_kwargs"),
    Setting("do_sample", "sampling instead of greedy decoding", "configs[task].generation_kwargs"),
    Setting("until", "stop sequences", "configs[task].generation_kwargs"),
    Setting("samples_per_prompt", "completions per prompt (lm-eval's repeats)", "configs[task].repeats"),
    Setting("num_fewshot", "few-shot examples in each prompt", "configs[task].num_fewshot"),
    Setting("limit", "documents per task (--limit)", "config.limit"),
    Setting("documents", "the documents and prompts themselves", "task_hashes[task] (lm-eval's hash of every "
            "document, prompt and target)"),
    Setting("seed", "random, numpy and torch seeds", "config.random_seed, numpy_seed, torch_seed"),
    Setting("scorer", "the toxicity scorer (backend@version)", "the scorer provenance of the task's filter",
            allowable=False),
    Setting("language_identifier", "the language identifier of every completion (package@version, floor, "
            "minimum length)", "the identifier named in the task's filter"),
    Setting("task_version", "the task's version", "versions[task]"),
    Setting("chat_template", "the chat template wrapped around the prompt", "chat_template_sha"),
    Setting("system_instruction", "a system instruction before the prompt", "system_instruction_sha"),
)
KEYS: tuple[str, ...] = tuple(s.key for s in SETTINGS)
#: the settings ``--allow-different`` may name
ALLOWABLE: tuple[str, ...] = tuple(s.key for s in SETTINGS if s.allowable)
_GENERATION = ("temperature", "top_p", "max_gen_toks", "do_sample", "until")


def scorer_ident(provenance: Mapping[str, Any] | None) -> str | None:
    """``backend@version``, what makes two scores comparable (the score cache's key)."""
    if not provenance or "backend" not in provenance:
        return None
    return f"{provenance['backend']}@{provenance.get('version')}"


def filter_provenance(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The scorer provenance a task config's toxicity filter carries as written (a routing list's names
    every routed language), or ``None`` (not a generation task)."""
    for entry in config.get("filter_list") or []:
        for step in (entry.get("filter") or []) if isinstance(entry, dict) else []:
            found = parse_provenance(step.get("provenance")) if isinstance(step, dict) else None
            if found:
                return found
    return None


def task_scorer(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The provenance of the scorer that scored this task: its language's, under a routing list."""
    kwargs = config.get("dataset_kwargs")
    lang = kwargs.get("lang") if isinstance(kwargs, dict) else None
    return language_provenance(filter_provenance(config), lang)


def task_identifier(config: Mapping[str, Any]) -> str | None:
    """The language identifier a task config's filter names, or ``None`` (before task version 2.2)."""
    for entry in config.get("filter_list") or []:
        for step in (entry.get("filter") or []) if isinstance(entry, dict) else []:
            found = parse_identifier(step.get("language_identifier")) if isinstance(step, dict) else None
            if found:
                return found
    return None


def task_settings(data: Mapping[str, Any], task: str) -> dict[str, Any]:
    """Every setting of :data:`SETTINGS` that an lm-eval results file records for ``task``."""
    configs = data.get("configs") if isinstance(data.get("configs"), dict) else {}
    config = configs.get(task) if isinstance(configs.get(task), dict) else {}
    run = data.get("config") if isinstance(data.get("config"), dict) else {}
    out: dict[str, Any] = {}
    if config.get("output_type") == "generate_until" or "generation_kwargs" in config:
        gen = config.get("generation_kwargs") or {}
        for key in _GENERATION:
            out[key] = gen.get(key)
        out["samples_per_prompt"] = config.get("repeats", 1)
        out["scorer"] = scorer_ident(task_scorer(config))
        if identifier := task_identifier(config):
            out["language_identifier"] = identifier
    out["num_fewshot"] = config.get("num_fewshot", (data.get("n-shot") or {}).get(task))
    out["limit"] = run.get("limit")
    hashes = data.get("task_hashes") or {}
    if task in hashes:
        out["documents"] = hashes[task]
    out["seed"] = {k: run.get(k) for k in ("random_seed", "numpy_seed", "torch_seed")}
    out["task_version"] = (data.get("versions") or {}).get(task)
    out["chat_template"] = data.get("chat_template_sha")
    out["system_instruction"] = data.get("system_instruction_sha")
    return out


def completion_records(line: Mapping[str, Any]) -> list[Any]:
    """The scored-completion records of a samples line: lm-eval nests a request's K filtered responses in a
    list (``[[rec, ...]]``); older files held them flat."""
    out: list[Any] = []
    for item in line.get("filtered_resps") or []:
        for r in item if isinstance(item, list) else [item]:
            if isinstance(r, (str, dict)):
                try:
                    out.append(parse_record(r))
                except ValueError:  # not a record (another filter's plain text)
                    continue
    return out


def samples_settings(path: Path) -> dict[str, Any]:
    """The settings a samples file alone records: its documents and prompts (lm-eval's task hash, recomputed
    the way lm-eval computes it), the sampling arguments and K of a generation task, and its scorer."""
    parts: list[str] = []
    out: dict[str, Any] = {}
    for _, rec in iter_jsonl(path, ResultsError):
        if not isinstance(rec, dict):
            continue
        if all(isinstance(rec.get(k), str) for k in ("doc_hash", "prompt_hash", "target_hash")):
            parts.append(rec["doc_hash"] + rec["prompt_hash"] + rec["target_hash"])
        args = (rec.get("arguments") or {}).get("gen_args_0") or {}
        if "samples_per_prompt" not in out and isinstance(args.get("arg_1"), dict):
            for key in _GENERATION:
                out[key] = args["arg_1"].get(key)
            resps = rec.get("resps") or [[]]
            out["samples_per_prompt"] = len(resps[0]) if isinstance(resps[0], list) else 1
            out["scorer"] = next((r.get("scorer") for r in completion_records(rec) if isinstance(r, dict)), None)
        if "language_identifier" not in out:
            found = [r["lang_identifier"] for r in completion_records(rec) if isinstance(r, dict) and "lang_identifier" in r]
            if found:
                out["language_identifier"] = found[0]
    if parts:
        out["documents"] = hashlib.sha256("".join(parts).encode("utf-8")).hexdigest()
    return out


def _show(key: str, value: Any) -> str:
    if key == "documents" and isinstance(value, str):
        return value[:10]
    if key == "seed" and isinstance(value, dict):
        values = set(value.values())
        return str(value["torch_seed"]) if len(values) == 1 else json.dumps(value)
    if key == "limit" and value is None:
        return "none (every document)"
    if isinstance(value, float) and value.is_integer():  # lm-eval records --limit 4 as 4.0
        return str(int(value))
    return json.dumps(value) if not isinstance(value, str) else value


def differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, str]:
    """``{setting: "a vs b"}`` for every setting both record and that differs."""
    return {key: f"{_show(key, a[key])} vs {_show(key, b[key])}" for key in KEYS
            if key in a and key in b and a[key] != b[key]}


def describe(diff: Mapping[str, str]) -> str:
    return "; ".join(f"{key} {how}" for key, how in diff.items())


def check_allowed(names: Iterable[str]) -> tuple[str, ...]:
    """``--allow-different`` values, checked against :data:`ALLOWABLE` (``all`` allows every one of them)."""
    out: list[str] = []
    for name in names:
        for part in (p.strip() for p in name.split(",")):
            if part == "all":
                out.extend(ALLOWABLE)
            elif part in KEYS and part not in ALLOWABLE:
                raise ResultsError(f"--allow-different {part!r}: numbers from different scorers are different "
                                   "metrics, so a Δ across them is never taken; score both runs with one scorer")
            elif part not in KEYS:
                raise ResultsError(f"--allow-different {part!r}: not a setting; expected some of "
                                   f"{', '.join(ALLOWABLE)} or all")
            elif part:
                out.append(part)
    return tuple(dict.fromkeys(out))
