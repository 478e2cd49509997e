"""Datasets from the Hugging Face hub (an id, or a local folder in the hub's layout), offline-aware.

Every suite whose data has a hub copy (ParaDetox, the RTP-LX hub copy, PolygloToxicityPrompts) loads
it through :func:`load_hub_dataset`: a local folder is re-read whenever it changes, a hub id comes
from the datasets cache, and an unreachable hub with nothing cached is one line naming the dataset
and the way out, at once, instead of minutes of retries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xdet_tasks.errors import DataError
from xdet_tasks.io import unreachable


def folder_fingerprint(dataset: str) -> str | None:
    """A content hash of a local dataset folder (``None`` for a hub id), so edits are never served stale."""
    folder = Path(dataset).expanduser()
    if not folder.is_dir():
        return None
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


@contextmanager
def _cache_only(datasets_module: Any, active: bool) -> Iterator[None]:
    """Offline mode for one call: an unreachable hub then fails at once instead of after retries."""
    if not active:
        yield
        return
    import huggingface_hub.constants as hub_constants

    saved = datasets_module.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE
    datasets_module.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets_module.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved


def load_hub_dataset(dataset: str, *, revision: str | None, split: str, what: str, way_out: str,
                     name: str | None = None, data_files: dict[str, str] | None = None) -> Any:
    """One split of a hub dataset (id or local folder in the hub's layout), offline-aware.

    A local folder is re-read every time (``force_redownload``: an edited folder is never served
    stale); a hub id uses the datasets cache, and only when that misses and the hub is unreachable
    does this fail, at once, with one line naming ``what`` and ``way_out``.
    """
    import datasets  # heavy import: only for hub sources

    local = Path(dataset).expanduser().is_dir()
    reason = None if local else unreachable("HF_DATASETS_OFFLINE")
    try:
        with _cache_only(datasets, reason is not None):
            return datasets.load_dataset(dataset, name, split=split, revision=revision, data_files=data_files,
                                         download_mode="force_redownload" if local else None)
    except ValueError as err:  # unknown config or split
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise DataError(f"{what} has no {f'config {name!r} with ' if name else ''}split {split!r}: {first}") from None
    except (OSError, ConnectionError) as err:
        where = f"the hub cannot be reached ({reason}) and no cached copy exists" if reason else str(err).splitlines()[0]
        raise DataError(f"{what} cannot be loaded: {where}; {way_out}") from None
