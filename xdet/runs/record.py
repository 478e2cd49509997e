"""The run record, ``xdet_run.json``: what a run folder was asked to compute, written last.

A folder is a complete run exactly when its record exists (:func:`complete_run` is a run's last
write). Two records answer the same request when their identity (:func:`run_identity`) is equal;
otherwise :func:`identity_differences` says how they differ.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xdet_tasks.errors import DataError
from xdet_tasks.io import atomic_write_json
from xdet_train.manifest import describe_differences
from xdet_train.strategies import STRATEGIES

RUN_FILE = "xdet_run.json"
RUN_SCHEMA = "xdet-run/1"
LM_EVAL_DIR = "lm_eval"


class ResultsError(DataError):
    """A run folder or results file is missing, corrupt or inconsistent; the message names the file."""


@dataclass(frozen=True)
class RunInfo:
    """The run manifest (``xdet_run.json``): which model, strategy, languages and percentage."""

    model: str
    model_name: str
    strategy: str
    train_langs: tuple[str, ...]
    pct: int | None
    seed: int | None
    peft: str | None
    raw: dict[str, Any] = field(compare=False, repr=False)


def model_display_name(model: str) -> str:
    """How a model is named in tables: a hub id or folder path by its last part."""
    return Path(model.rstrip("/")).name or model


def load_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ResultsError(f"{path}: not UTF-8 text ({err})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ResultsError(
            f"{path}: corrupt or truncated JSON at line {err.lineno} column {err.colno}: {err.msg}"
        ) from None


def read_run_record(run_dir: str | Path) -> dict[str, Any] | None:
    """The raw record of a complete run folder, or ``None`` if the folder holds no complete run."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ResultsError(f"{path}: corrupt run record ({err}); delete the folder to redo the run") from None


#: Fields of a run record that decide whether an existing run answers a new request.
IDENTITY_FIELDS: tuple[str, ...] = (
    "model", "peft", "tasks", "limit", "seed", "batch_size", "repeats", "protocol", "backend",
)


def run_identity(record: dict[str, Any]) -> dict[str, Any]:
    """What makes two runs the same request: the identity fields, the scorer version and the data hash."""
    return {k: record.get(k) for k in IDENTITY_FIELDS} | {
        "scorer": (record.get("scorer") or {}).get("version"),
        "data_hash": (record.get("data") or {}).get("fingerprint"),
    }


def identity_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``field: old -> new`` for each identity field that differs (what a user must know to decide)."""
    return describe_differences(run_identity(old), run_identity(new))


def complete_run(run_dir: str | Path, record: dict[str, Any]) -> Path:
    """Write ``xdet_run.json``: the last write of a run, which marks everything before it complete."""
    return atomic_write_json(Path(run_dir) / RUN_FILE, record)


def read_run_info(run_dir: str | Path) -> RunInfo:
    """Parse and check ``xdet_run.json``; a missing or bad field raises naming file and field."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise ResultsError(f"{path} missing: not a complete run folder (xdet eval writes it last)")
    raw = load_json(path)
    if not isinstance(raw, dict):
        raise ResultsError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    schema = raw.get("schema", RUN_SCHEMA)
    if schema != RUN_SCHEMA:
        raise ResultsError(f"{path}: field 'schema' is {schema!r}, this reader knows {RUN_SCHEMA!r}")
    for key in ("model", "strategy"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ResultsError(f"{path}: field {key!r} missing or not a string: {raw.get(key)!r}")
    record = STRATEGIES.get(raw["strategy"])
    if record is None:
        raise ResultsError(f"{path}: field 'strategy' is {raw['strategy']!r}; expected one of {', '.join(STRATEGIES)}")
    langs = raw.get("train_langs") or []
    if not isinstance(langs, list) or not all(isinstance(x, str) for x in langs):
        raise ResultsError(f"{path}: field 'train_langs' must be a list of language codes, got {langs!r}")
    pct = raw.get("pct")
    if pct is not None and (isinstance(pct, bool) or not isinstance(pct, int)):
        raise ResultsError(f"{path}: field 'pct' must be an integer or null, got {pct!r}")
    if "lang" in record.required and not langs:
        raise ResultsError(f"{path}: strategy {record.kind!r} needs 'train_langs' (the source language)")
    if "pct" in record.required and pct is None:
        raise ResultsError(f"{path}: strategy {record.kind!r} needs 'pct'")
    seed = raw.get("seed")
    return RunInfo(
        model=raw["model"],
        model_name=str(raw.get("model_name") or raw["model"]),
        strategy=raw["strategy"],
        train_langs=tuple(langs),
        pct=pct,
        seed=seed if isinstance(seed, int) else None,
        peft=raw.get("peft"),
        raw=raw,
    )
