"""``xdet fluency``: every completion of a run's samples files scored under a reference LM, written beside them.

* :mod:`~xdet.fluency.reference`: the reference model, checked before its weights load, and its identity;
* :mod:`~xdet.fluency.compute`: conditional log-likelihood of completions given prompts, batched;
* :mod:`~xdet.fluency.cache`: the SQLite cache that makes a rerun score only what is missing.

The files it writes (:mod:`xdet.runs.fluency`) are read by ``xdet tables --metric fluency`` and
``xdet analyze``; the metric definitions are :mod:`xdet_tasks.metrics.fluency`. Nothing is regenerated:
the completions are the ones the samples files hold.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from xdet.fluency.cache import FluencyCache, pair_key
from xdet.fluency.compute import CONDITIONING, encode, score_batches
from xdet.fluency.reference import Reference, check_reference, load_reference
from xdet.runs.fluency import (
    SampleCompletions,
    Scored,
    fluency_path,
    is_generation_samples,
    read_completions,
    read_header,
    reference_slug,
    samples_sha256,
    write_fluency,
)
from xdet_tasks import __version__
from xdet_tasks.errors import XdetError

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """What ``xdet fluency`` will do, decided before any weight loads."""

    reference: Reference
    todo: list[tuple[SampleCompletions, Path]]  # samples to score and the fluency file each gets
    up_to_date: list[Path]  # fluency files already made from these samples under this reference


@dataclass
class Summary:
    written: list[Path] = field(default_factory=list)
    completions: int = 0
    computed: int = 0  # distinct (prompt, completion) pairs the model scored
    from_cache: int = 0  # completions answered by the cache
    empty: int = 0
    truncated: int = 0


def find_samples(folders: Sequence[str | Path]) -> list[Path]:
    """The generation tasks' samples files under each folder (staging folders left by a killed run are
    skipped); a folder without any is refused, naming it."""
    found: list[Path] = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise XdetError(f"{folder}: not a folder (give run folders or lm_eval output folders)")
        here = sorted(p for p in folder.rglob("samples_*.jsonl") if is_generation_samples(p)
                      and not any(part.endswith(".partial") for part in p.relative_to(folder).parts))
        if not here:
            raise XdetError(f"{folder}: no samples file of a generation task (samples_xdet_<set>_<lang>_<ts>.jsonl); "
                            "fluency scores completions that lm_eval --log_samples (or xdet eval) wrote")
        found += here
    return list(dict.fromkeys(found))


def _current(path: Path, reference: Reference, digest: str) -> bool:
    """Whether an existing fluency file was made from these samples under this reference and conditioning."""
    try:
        header = read_header(path)
    except XdetError:
        return False
    return (header["reference"].get("ident") == reference.ident and header.get("samples_sha256") == digest
            and header.get("conditioning", {}).get("version") == CONDITIONING["version"]
            and header["reference"].get("max_length") == reference.max_length)


def plan_fluency(folders: Sequence[str | Path], model: str, *, revision: str | None = None, device: str | None = None,
                 dtype: str | None = None, max_length: int | None = None) -> Plan:
    """Every check first: the folders and their samples files (each read whole), then the reference model."""
    samples = [read_completions(p) for p in find_samples(folders)]
    reference = check_reference(model, revision, device=device, dtype=dtype, max_length=max_length)
    slug = reference_slug(reference.name, reference.ident)
    todo, current = [], []
    for s in samples:
        target = fluency_path(s.path, slug)
        if target.exists() and _current(target, reference, samples_sha256(s.path)):
            current.append(target)
        else:
            todo.append((s, target))
    return Plan(reference, todo, current)


def _pairs(samples: SampleCompletions) -> list[tuple[str, str]]:
    return [(context, c) for context, row in zip(samples.contexts, samples.completions, strict=True) for c in row]


def score_samples(samples: SampleCompletions, reference: Reference, cache: FluencyCache, model: Any | None,
                  batch_size: int, summary: Summary, load: Any = None) -> list[list[Scored]]:
    """Every completion of one samples file: from the cache where it is there, else from the model (loaded
    by ``load()`` on first need), each batch committed to the cache as soon as it is scored."""
    pairs = _pairs(samples)
    keys = [pair_key(c, k) for c, k in pairs]
    found: dict[str, Scored] = cache.get_many(reference.cache_key, [k for k, (_, c) in zip(keys, pairs, strict=True) if c.strip()])
    cached = set(found)
    missing = list(dict.fromkeys(k for k, (_, c) in zip(keys, pairs, strict=True) if c.strip() and k not in found))
    if missing:
        first = {k: i for i, k in reversed(list(enumerate(keys)))}
        todo = [pairs[first[k]] for k in missing]
        encoded = encode(reference.tokenizer, [c for c, _ in todo], [k for _, k in todo], reference.max_length)
        model = model if model is not None else load()
        for batch in score_batches(model, encoded, batch_size=batch_size, pad_id=reference.pad_id,
                                   device=reference.device):
            done = [(missing[i], scored) for i, scored in batch]
            cache.put_many(reference.cache_key, done)
            found.update(done)
    flat = [found.get(k, Scored(None, 0)) if c.strip() else Scored(None, 0) for k, (_, c) in zip(keys, pairs, strict=True)]
    summary.completions += len(flat)
    summary.computed += len(missing)
    summary.from_cache += sum(k in cached for k in keys)
    summary.empty += sum(s.tokens == 0 for s in flat)
    summary.truncated += sum(s.truncated for s in flat)
    rows, at = [], 0
    for row in samples.completions:
        rows.append(flat[at:at + len(row)])
        at += len(row)
    return rows


def run_fluency(plan: Plan, *, batch_size: int = 32, cache: FluencyCache | None = None, model: Any | None = None,
                on_file: Any = None) -> Summary:
    """Score every planned samples file and write its fluency file (atomically, one file at a time).

    ``model``: the reference's weights already loaded (tests hook it); otherwise they load on the first
    completion the cache does not hold, so a rerun that finds everything cached never loads them.
    """
    cache = cache or FluencyCache()
    summary = Summary()
    loaded: dict[str, Any] = {}

    def load() -> Any:
        if "model" not in loaded:
            loaded["model"] = load_reference(plan.reference)
        return loaded["model"]

    for index, (samples, target) in enumerate(plan.todo, start=1):
        before = summary.empty, summary.truncated
        rows = score_samples(samples, plan.reference, cache, model, batch_size, summary, load)
        header = {
            "task": samples.task, "samples_file": samples.path.name, "samples_sha256": samples_sha256(samples.path),
            "reference": plan.reference.provenance(), "conditioning": CONDITIONING,
            "counts": {"completions": samples.count, "scored": samples.count - (summary.empty - before[0]),
                       "empty": summary.empty - before[0], "truncated": summary.truncated - before[1]},
            "xdet_version": __version__, "created": datetime.now(timezone.utc).isoformat(),
        }
        summary.written.append(write_fluency(target, header, samples, rows))
        if on_file is not None:
            on_file(index, len(plan.todo), target)
    return summary

