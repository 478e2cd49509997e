"""The adapter manifest (``xdet_adapter.json``): what an adapter is, so an identical request reuses it.

Every adapter directory is a standard PEFT adapter plus this manifest: base model, strategy,
languages, percentage, seed, data hash, resolved hyper-parameters, library versions and the loss
curve. The *identity* fields decide whether an existing adapter answers a new request; anything
else differing (a changed training set, other hyper-parameters) is refused with the fields named.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from xdet_tasks.errors import XdetError

MANIFEST_NAME = "xdet_adapter.json"
MANIFEST_SCHEMA = "xdet-adapter/1"
#: Keys of the manifest that must match for an existing adapter to be reused.
IDENTITY_KEYS: tuple[str, ...] = (
    "base_model", "strategy", "strategy_spec", "train_langs", "pct", "seed", "format", "data_hash", "hyperparameters",
)
#: Settings that do not change the adapter's weights, ignored when deciding whether to reuse one.
_NON_IDENTITY_HYPER: tuple[str, ...] = ("logging_steps", "eval_examples", "quantize")


def read_manifest(adapter_dir: str | Path) -> dict[str, Any]:
    """The ``xdet_adapter.json`` of an adapter directory; :class:`XdetError` naming the path if absent or bad."""
    path = Path(adapter_dir) / MANIFEST_NAME
    if not path.is_file():
        raise XdetError(f"{path}: missing adapter manifest (is {adapter_dir} an xdet adapter directory?)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise XdetError(f"{path}: corrupt adapter manifest ({err})") from None
    if not isinstance(data, dict) or data.get("schema") != MANIFEST_SCHEMA:
        raise XdetError(f"{path}: not an {MANIFEST_SCHEMA} manifest (schema {data.get('schema') if isinstance(data, dict) else None!r})")
    missing = [k for k in IDENTITY_KEYS if k not in data]
    if missing:
        raise XdetError(f"{path}: manifest lacks field(s) {', '.join(missing)}")
    return data


def normalize_model_id(model: str | Path) -> str:
    """Local directories by absolute path, hub ids as given (so one base has one name)."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else str(model)


def check_adapter_base(adapter_dir: str | Path, base_model: str | Path) -> dict[str, Any]:
    """Raise :class:`XdetError` unless the adapter in ``adapter_dir`` was trained on ``base_model``."""
    manifest = read_manifest(adapter_dir)
    wanted = normalize_model_id(base_model)
    if manifest["base_model"] != wanted:
        raise XdetError(
            f"adapter {adapter_dir} was trained on base model {manifest['base_model']!r}, not {wanted!r}"
        )
    return manifest


def identity(manifest: dict[str, Any]) -> dict[str, Any]:
    out = {k: manifest.get(k) for k in IDENTITY_KEYS}
    if isinstance(out["hyperparameters"], dict):
        out["hyperparameters"] = {
            k: v for k, v in out["hyperparameters"].items() if k not in _NON_IDENTITY_HYPER
        }
    return out


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "peft", "trl", "accelerate", "datasets", "bitsandbytes", "xdet"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def describe_differences(old: Mapping[str, Any], new: Mapping[str, Any], keys: Iterable[str] | None = None,
                         prefix: str = "") -> list[str]:
    """What differs between two identity records, one entry per field, for a refusal message: nested
    mappings by dotted field (``hyperparameters.max_steps: 30 -> 2``), lists by the items removed and
    added (two long task lists cut to the same prefix would hide the difference)."""
    out: list[str] = []
    for key in keys if keys is not None else dict.fromkeys([*old, *new]):
        a, b, name = old.get(key), new.get(key), f"{prefix}{key}"
        if a == b:
            continue
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += describe_differences(a, b, prefix=f"{name}.")
        elif isinstance(a, list) and isinstance(b, list):
            removed, added = [x for x in a if x not in b], [x for x in b if x not in a]
            parts = [f"{len(items)} {what} {_short(items)}" for what, items in (("removed", removed), ("added", added))
                     if items]
            out.append(f"{name}: {'; '.join(parts) or 'the same items in another order'}")
        else:
            out.append(f"{name}: {_short(a)} -> {_short(b)}")
    return out


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def holds_adapter(out: Path, wanted: dict[str, Any]) -> bool:
    """True if ``out`` already holds this adapter; raise if it holds anything else."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise XdetError(f"output path {out} exists and is not a directory")
    if not any(out.iterdir()):
        return False
    if not (out / MANIFEST_NAME).is_file():
        raise XdetError(f"output directory {out} is not empty and holds no {MANIFEST_NAME}; refusing to overwrite it")
    found, asked = identity(read_manifest(out)), identity(wanted)
    if found != asked:
        raise XdetError(
            f"output directory {out} already holds a different adapter "
            f"({'; '.join(describe_differences(found, asked, IDENTITY_KEYS))}); choose another --out or remove it"
        )
    return True
