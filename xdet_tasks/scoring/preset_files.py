"""Where a scorer preset's files come from: a local folder, the local hub cache, or one download.

A preset has up to two parts, each a hub repository: the classifier (``model``) and, when the
evaluation it reproduces loads the tokenizer from elsewhere, the ``tokenizer``. Each part is found
the same way, in this order:

1. a local folder named by an environment variable (:func:`env_dir_var`; offline mirrors, tests);
2. the local hub cache, at the revision the preset table fixes or this machine pinned earlier
   (no network);
3. the hub, asked once with a short timeout for the newest commit (or the fixed one), then downloaded
   (weights only for the classifier).

Revisions the table does not fix are pinned on first download in ``$XDET_CACHE_DIR/scorer-presets/
<name>.json`` (one lock per preset, both parts), together with each part's files hash; later runs
load exactly those commits and refuse files whose hash changed. Delete the lock to move to the
hub's newest commits.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xdet_tasks.errors import ScorerError
from xdet_tasks.io import atomic_write_json, cache_dir, unreachable
from xdet_tasks.scoring.base import ENV_SCORER
from xdet_tasks.scoring.hf import has_tokenizer_files

ENV_DIR_PREFIX = "XDET_SCORER_PRESET_DIR_"
ENV_TOKENIZER_DIR_PREFIX = "XDET_SCORER_PRESET_TOKENIZER_DIR_"
#: seconds to wait for the hub's answer before declaring it unreachable (one try, no retries);
#: ``XDET_SCORER_HUB_TIMEOUT`` overrides it on slow links.
HUB_TIMEOUT = 3.0
#: files a classifier needs from the hub (no optimizer states or training arguments) ...
MODEL_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]
#: ... and a tokenizer (no weights; a chat template may be a file of its own).
TOKENIZER_PATTERNS = ["*.json", "*.model", "*.txt", "*.jinja"]
#: the parts of a preset, and the lock keys of each: (revision, files hash, repository).
PARTS = {"model": ("revision", "files_sha256", "model"),
         "tokenizer": ("tokenizer_revision", "tokenizer_files_sha256", "tokenizer")}
_COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class PartFiles:
    """One part of a preset on this machine: its folder, its revision and how it was found."""

    repo: str
    folder: Path
    revision: str | None
    #: ``local-dir`` (environment override), ``hub-cache`` (already downloaded) or ``hub`` (downloaded now).
    origin: str
    #: whether the revision is this machine's pin (``False``: fixed by the table, or a local folder).
    pinned_here: bool


def env_dir_var(name: str, part: str = "model") -> str:
    """``XDET_SCORER_PRESET_DIR_TEXTDETOX_V1`` for ``textdetox-v1``; the tokenizer's variable has
    ``TOKENIZER_DIR`` in place of ``DIR``."""
    prefix = ENV_DIR_PREFIX if part == "model" else ENV_TOKENIZER_DIR_PREFIX
    return prefix + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def unavailable(name: str, model: str, why: str, part: str = "model") -> ScorerError:
    """The one-line error for a preset that cannot be loaded, naming the ways out."""
    why = " ".join(why.split())
    return ScorerError(
        f"scorer {name!r} ({model}) cannot be loaded: {why}; set {ENV_SCORER}=local for the "
        f"offline development scorer, or point {env_dir_var(name, part)} at a local copy"
    )


def lock_path(name: str) -> Path:
    return cache_dir() / "scorer-presets" / f"{name}.json"


def read_lock(name: str, model: str) -> dict[str, Any]:
    """The revisions (and files hashes) this machine pinned for preset ``name``; ``{}`` if none or stale."""
    path = lock_path(name)
    try:
        lock = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise ScorerError(f"scorer {name!r}: unreadable revision lock {path}: {err}; delete it") from None
    if lock.get("model") != model or not _COMMIT.fullmatch(str(lock.get("revision", ""))):
        return {}  # written for another model: the table changed since
    return lock


def pinned_revision(lock: dict[str, Any], part: str, repo: str) -> str | None:
    """The revision of ``part`` pinned in ``lock``, if it was pinned for the same repository."""
    rev_key, _, repo_key = PARTS[part]
    revision = str(lock.get(rev_key) or "")
    return revision if lock.get(repo_key) == repo and _COMMIT.fullmatch(revision) else None


def write_lock(name: str, parts: dict[str, tuple[PartFiles, str]]) -> None:
    """Pin each ``part -> (files, files hash)`` of preset ``name`` (all parts in one file)."""
    record: dict[str, Any] = {"preset": name}
    for part, (files, digest) in parts.items():
        rev_key, hash_key, repo_key = PARTS[part]
        record.update({repo_key: files.repo, rev_key: files.revision, hash_key: digest})
    record["pinned_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    atomic_write_json(lock_path(name), record)


def check_pins(name: str, model: str, lock: dict[str, Any], parts: dict[str, tuple[PartFiles | None, str]]) -> None:
    """Refuse pinned files that changed on disk; pin what was found without a pin (first use).

    ``parts`` maps each part to its files (``None``: the preset has no such part) and their hash."""
    pinned = {part: (files, digest) for part, (files, digest) in parts.items()
              if files is not None and files.pinned_here}
    unpinned = False
    for part, (files, digest) in pinned.items():
        rev_key, hash_key, _ = PARTS[part]
        if lock.get(rev_key) != files.revision or not lock.get(hash_key):
            unpinned = True
        elif lock[hash_key] != digest:
            raise unavailable(name, model, f"the files of pinned {part} revision {files.revision} changed on disk "
                                           f"(sha256 {digest[:16]}, pinned {lock[hash_key][:16]})", part)
    if unpinned:  # first use pins the revisions
        write_lock(name, pinned)


def _hub_cache() -> str:
    """The hub cache as the environment says now (the hub library reads it only at import)."""
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return constants.HF_HUB_CACHE


def _complete(folder: Path, part: str) -> bool:
    return any(folder.glob("*.safetensors")) if part == "model" else has_tokenizer_files(folder)


def _patterns(part: str) -> list[str]:
    return MODEL_PATTERNS if part == "model" else TOKENIZER_PATTERNS


def _from_cache(repo: str, revision: str | None, part: str) -> Path | None:
    """The cached snapshot of ``revision`` (``None``: the cached ``main``), without any network."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo, revision=revision, cache_dir=_hub_cache(),
                                        allow_patterns=_patterns(part), local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure here just means "not cached"
        return None
    return folder if _complete(folder, part) else None


def _from_hub(name: str, model: str, repo: str, revision: str | None, part: str) -> tuple[Path, str]:
    """Resolve ``revision`` (default: the newest commit) with one short request, then download it."""
    from huggingface_hub import HfApi, snapshot_download

    what = "" if part == "model" else f"its tokenizer {repo}: "

    def fail(why: str) -> ScorerError:
        return unavailable(name, model, what + why, part)

    reason = unreachable()
    if reason:
        raise fail(f"the hub cannot be reached ({reason}) and no local copy is cached")
    endpoint = os.environ.get("HF_ENDPOINT") or None  # as the environment says now, not at import
    timeout = float(os.environ.get("XDET_SCORER_HUB_TIMEOUT") or HUB_TIMEOUT)
    try:
        commit = HfApi(endpoint=endpoint).model_info(repo, revision=revision, timeout=timeout).sha
    except Exception as err:  # noqa: BLE001 - connection refused, DNS, timeout, 404, 401...
        kind = type(err).__name__
        if any(word in kind for word in ("Connect", "Timeout", "Network", "Offline", "Transport", "Proxy")):
            raise fail("the hub is unreachable and no local copy is cached") from None
        raise fail(f"the hub answered {kind}: {str(err)[:200]}") from None
    if not commit or not _COMMIT.fullmatch(commit):
        raise fail(f"the hub returned no commit for revision {revision or 'main'}")
    try:
        folder = Path(snapshot_download(repo, revision=commit, cache_dir=_hub_cache(),
                                        allow_patterns=_patterns(part), endpoint=endpoint))
    except Exception as err:  # noqa: BLE001 - a broken transfer
        raise fail(f"download of commit {commit} failed: {type(err).__name__}: {err}") from None
    return folder, commit


def snapshot_commit(folder: Path) -> str | None:
    """The commit a hub snapshot folder is named after, else ``None``."""
    return folder.name if _COMMIT.fullmatch(folder.name) else None


def find_part(name: str, model: str, repo: str, fixed: str | None, lock: dict[str, Any],
              part: str = "model") -> PartFiles:
    """Find (or download) one part of preset ``name`` (shown as ``model`` in errors)."""
    override = os.environ.get(env_dir_var(name, part), "").strip()
    if override:
        folder = Path(override).expanduser()
        if not folder.is_dir():
            raise unavailable(name, model, f"{env_dir_var(name, part)}={override} is not a folder", part)
        folder = folder.resolve()
        return PartFiles(repo, folder, snapshot_commit(folder), "local-dir", False)
    revision = fixed or pinned_revision(lock, part, repo)
    folder = _from_cache(repo, revision, part)
    if folder is not None:
        return PartFiles(repo, folder, revision or snapshot_commit(folder), "hub-cache", not fixed)
    folder, commit = _from_hub(name, model, repo, revision, part)
    return PartFiles(repo, folder, commit, "hub", not fixed)
