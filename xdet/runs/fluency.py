"""Fluency files: per-completion conditional perplexities under a reference model, beside the samples they score.

lm-eval's ``samples_<task>_<ts>.jsonl`` is never modified. ``xdet fluency`` writes, beside it,
``fluency_<task>_<ts>__<reference slug>.jsonl`` (atomically, whole; one file per reference model, the
slug being the reference's name and the start of its identity hash, so references never overwrite each
other). Its first line is the header::

    {"schema": "xdet-fluency/1", "task", "samples_file" (the name), "samples_sha256",
     "reference": {"model", "name", "revision", "commit", "files_sha256", "dtype", "max_length",
                   "architecture", "ident"},
     "conditioning": {...how prompt and completion were tokenized...},
     "counts": {"completions", "scored", "empty", "truncated"}, "xdet_version", "created"}

then one line per document of the samples file, in its order::

    {"doc_id": 0, "nll": [n_1, ..., n_K], "tokens": [t_1, ..., t_K], "perplexity": [p_1, ..., p_K],
     "truncated": [false, ...]}

``nll`` is the summed negative log-likelihood (nats) of a completion's tokens given its prompt,
``tokens`` how many were scored, ``perplexity`` ``exp(nll / tokens)``. An empty completion has
``tokens`` 0 and ``null`` nll and perplexity (undefined, never 0). Tables read the file of exactly the
samples file of the invocation that gave a task's numbers (:meth:`xdet.runs.folder.Run.samples_file`),
so fluency, like everything else, rebuilds from the samples files and these files alone.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xdet.runs.record import ResultsError
from xdet.runs.samples import SampleValues, samples_task
from xdet_tasks.io import atomic_write_text, iter_jsonl
from xdet_tasks.names import GENERATION, parse_task

SCHEMA = "xdet-fluency/1"
PREFIX = "fluency_"
#: The flag of ``xdet tables`` and ``xdet analyze`` that picks one reference where several were used.
REFERENCE_FLAG = "--fluency-model"


def samples_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fluency_path(samples: Path, slug: str) -> Path:
    """``samples_<task>_<ts>.jsonl`` -> ``fluency_<task>_<ts>__<slug>.jsonl`` beside it."""
    stem = samples.name.removeprefix("samples_").removesuffix(".jsonl")
    return samples.with_name(f"{PREFIX}{stem}__{slug}.jsonl")


def fluency_files(samples: Path) -> list[Path]:
    """Every fluency file of one samples file (one per reference model), sorted."""
    stem = samples.name.removeprefix("samples_").removesuffix(".jsonl")
    return sorted(samples.parent.glob(f"{PREFIX}{glob.escape(stem)}__*.jsonl"))


def reference_slug(name: str, ident: str) -> str:
    """A file-name-safe reference label: its name and the first 8 characters of its identity hash."""
    clean = re.sub(r"[^A-Za-z0-9.-]+", "-", name).strip("-.") or "reference"
    return f"{clean}-{ident[:8]}"


# ------------------------------------------------------------------------------------------ samples


@dataclass(frozen=True)
class SampleCompletions:
    """What a generation task's samples file holds for fluency: per document, the exact context the
    model was given (``arguments.gen_args_0.arg_0``) and its K raw completions (``resps``)."""

    path: Path
    task: str
    doc_ids: tuple[int, ...]
    contexts: tuple[str, ...]
    completions: tuple[tuple[str, ...], ...]

    @property
    def count(self) -> int:
        return sum(map(len, self.completions))


def is_generation_samples(path: Path) -> bool:
    task = samples_task(path)
    ref = parse_task(task) if task else None
    return ref is not None and ref.family is GENERATION


def _strings(value: Any) -> list[str] | None:
    """lm-eval logs a prompt's K completions as ``[[c_1, ..., c_K]]``; flattened, or ``None`` if not strings."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            found = _strings(item)
            if found is None:
                return None
            out += found
        return out
    return None


def read_completions(path: Path) -> SampleCompletions:
    """The contexts and raw completions of a generation task's samples file; a line without them is named."""
    task = samples_task(path) or ""
    doc_ids: list[int] = []
    seen: set[int] = set()  # a list lookup per line would make a large file quadratic
    contexts: list[str] = []
    completions: list[tuple[str, ...]] = []
    for lineno, rec in iter_jsonl(path, ResultsError):
        where = f"{path}:{lineno}"
        if not isinstance(rec, dict) or not isinstance(rec.get("doc_id"), int):
            raise ResultsError(f"{where}: no integer 'doc_id' in sample line")
        if rec.get("filter", GENERATION.filter) != GENERATION.filter:
            continue
        args = (rec.get("arguments") or {}).get("gen_args_0") if isinstance(rec.get("arguments"), dict) else None
        context = args.get("arg_0") if isinstance(args, dict) else None
        if not isinstance(context, str):
            raise ResultsError(f"{where}: no prompt in 'arguments.gen_args_0.arg_0' (not a generation sample line)")
        found = _strings(rec.get("resps"))
        if found is None:
            raise ResultsError(f"{where}: 'resps' must hold the completions as strings, got {rec.get('resps')!r:.80}")
        if rec["doc_id"] in seen:
            raise ResultsError(f"{where}: doc_id {rec['doc_id']} appears twice")
        seen.add(rec["doc_id"])
        doc_ids.append(rec["doc_id"])
        contexts.append(context)
        completions.append(tuple(found))
    if not doc_ids:
        raise ResultsError(f"{path}: no sample lines with completions")
    return SampleCompletions(path, task, tuple(doc_ids), tuple(contexts), tuple(completions))


# ------------------------------------------------------------------------------------------ fluency files


@dataclass(frozen=True)
class Scored:
    """One completion's conditional log-likelihood under the reference model."""

    nll: float | None  # summed -log p over its scored tokens (nats); None without tokens
    tokens: int  # completion tokens scored; 0: no perplexity
    truncated: bool = False  # the context (or the completion's tail) was cut to fit the reference's window


def write_fluency(path: Path, header: dict[str, Any], samples: SampleCompletions,
                  scored: list[list[Scored]]) -> Path:
    """The fluency file of ``samples``: ``header`` plus one line per document, written atomically."""
    from xdet_tasks.metrics.fluency import completion_perplexity

    lines = [json.dumps({"schema": SCHEMA, **header}, ensure_ascii=False, sort_keys=True)]
    for doc_id, row in zip(samples.doc_ids, scored, strict=True):
        perplexity = [completion_perplexity(s.nll, s.tokens) for s in row]
        lines.append(json.dumps({
            "doc_id": doc_id, "nll": [s.nll for s in row], "tokens": [s.tokens for s in row],
            "perplexity": [None if math.isnan(p) else p for p in perplexity],
            "truncated": [s.truncated for s in row]}))
    return atomic_write_text(path, "\n".join(lines) + "\n")


@dataclass(frozen=True)
class FluencyFile:
    """A fluency file read back: its header and per-document completion perplexities."""

    path: Path
    header: dict[str, Any]
    doc_ids: np.ndarray  # (n,) int
    perplexity: np.ndarray  # (n, K) float; NaN = no perplexity (empty completion, or a shorter row)

    @property
    def reference(self) -> dict[str, Any]:
        return self.header["reference"]

    @property
    def label(self) -> str:
        """How tables name the reference: its name and identity hash."""
        return f"{self.reference.get('name')} ({self.reference.get('ident')})"

    def values(self) -> SampleValues:
        """Per-document rows of completion perplexities, as the tables' bootstrap reads per-sample values."""
        return SampleValues(self.doc_ids, self.perplexity, self.path)


def read_header(path: Path) -> dict[str, Any]:
    for lineno, rec in iter_jsonl(path, ResultsError):
        if not isinstance(rec, dict) or rec.get("schema") != SCHEMA:
            raise ResultsError(f"{path}:{lineno}: not an xdet fluency file (schema {SCHEMA!r} expected on line 1)")
        reference = rec.get("reference")
        if not isinstance(reference, dict) or not isinstance(reference.get("ident"), str):
            raise ResultsError(f"{path}:{lineno}: the header names no reference model ('reference.ident')")
        return rec
    raise ResultsError(f"{path}: empty fluency file")


def read_fluency(path: Path) -> FluencyFile:
    """A fluency file; a malformed line is named (file:line)."""
    header = read_header(path)
    doc_ids: list[int] = []
    rows: list[list[float]] = []
    for lineno, rec in iter_jsonl(path, ResultsError):
        if lineno == 1 or (isinstance(rec, dict) and rec.get("schema") == SCHEMA):
            continue
        values = rec.get("perplexity") if isinstance(rec, dict) else None
        if not isinstance(rec, dict) or not isinstance(rec.get("doc_id"), int) or not isinstance(values, list) or any(
                v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))) for v in values):
            raise ResultsError(f"{path}:{lineno}: expected {{'doc_id': int, 'perplexity': [number or null, ...]}}")
        doc_ids.append(rec["doc_id"])
        rows.append([math.nan if v is None else float(v) for v in values])
    width = max((len(r) for r in rows), default=0)
    table = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        table[i, :len(row)] = row
    return FluencyFile(path, header, np.asarray(doc_ids, dtype=int), table)


def _matches(header: dict[str, Any], path: Path, wanted: str) -> bool:
    ref = header["reference"]
    return wanted in (ref.get("model"), ref.get("name"), path.name.rsplit("__", 1)[-1].removesuffix(".jsonl")) or (
        len(wanted) >= 6 and str(ref.get("ident", "")).startswith(wanted))


def select_fluency(samples: Path, reference: str | None = None) -> FluencyFile | None:
    """The fluency file of ``samples`` under ``reference`` (a model as given to ``xdet fluency``, its name,
    its slug or the start of its identity hash); ``None`` if there is none. Several candidates, or one made
    from other contents of the samples file, are refused in one line."""
    found = [(p, read_header(p)) for p in fluency_files(samples)]
    if reference is not None:
        found = [(p, h) for p, h in found if _matches(h, p, reference)]
    if not found:
        return None
    if len(found) > 1:
        names = ", ".join(p.name for p, _ in found[:3])
        raise ResultsError(f"{samples.parent}: {len(found)} fluency files for {samples.name} ({names}): choose the "
                           f"reference model with {REFERENCE_FLAG} <model, name or identity hash>")
    path, header = found[0]
    if header.get("samples_sha256") != samples_sha256(samples):
        raise ResultsError(f"{path}: made from other contents of {samples.name} than it now holds; rerun xdet fluency "
                           "on this folder to recompute it")
    return read_fluency(path)
