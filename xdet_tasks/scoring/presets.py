"""Named scorer presets: open classifiers pinned to a hub revision, run through the ``hf`` backend.

Perspective API closes at the end of 2026, so research numbers need an open scorer that anyone can
re-run bit for bit. A preset fixes everything that changes scores: the model id, its hub revision,
and which class is "toxic". Specs (``XDET_SCORER``): ``textdetox`` or ``textdetox-v1``, optionally
followed by ``hf`` options, e.g. ``textdetox:#batch=64,dtype=bf16,device=cuda`` (``label`` and
``revision`` are fixed by the preset).

Revisions. ``textdetox-v1`` is pinned to a commit found in the hub's public history. No commit of
``textdetox/xlmr-large-toxicity-classifier-v2`` could be found, so ``textdetox`` is pinned on first
use instead: the commit the hub serves then is written to ``$XDET_CACHE_DIR/scorer-presets/
textdetox.json`` together with the weight hash, and every later run loads exactly that commit (from
the local hub cache, without asking the hub) and refuses weights whose hash changed. Delete that file
to move to the hub's newest commit. The revision is in the provenance and in the score-cache key
(the scorer's version), so scores of two revisions never mix.

Local copies (tests, offline mirrors). ``XDET_SCORER_PRESET_DIR_<NAME>`` (the preset name in upper
case, ``-`` as ``_``: ``XDET_SCORER_PRESET_DIR_TEXTDETOX``, ``XDET_SCORER_PRESET_DIR_TEXTDETOX_V1``)
points a preset at a local model folder. Provenance still names the preset and the model id it
stands for, plus the folder and the hash of its files; the revision is taken from the folder name
when it is a hub snapshot folder (40 hex digits), else recorded as unknown.

Offline. A preset is looked up in the local hub cache first; the hub is asked only when nothing is
cached, once, with a 3 s timeout (``XDET_SCORER_HUB_TIMEOUT``) and no retries, so a machine without
network fails within seconds (at once when ``HF_HUB_OFFLINE`` is set, DNS fails or the connection is
refused) with one line naming the preset, the model and the ways out (``XDET_SCORER=local`` or a
local copy).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xdet_tasks.errors import ScorerError
from xdet_tasks.hub import unreachable
from xdet_tasks.io import atomic_write_json, cache_dir
from xdet_tasks.languages import LANGUAGES
from xdet_tasks.scoring.hf import HFScorer
from xdet_tasks.scoring.registry import ENV_SCORER

ENV_DIR_PREFIX = "XDET_SCORER_PRESET_DIR_"
#: seconds to wait for the hub's answer before declaring it unreachable (one try, no retries);
#: ``XDET_SCORER_HUB_TIMEOUT`` overrides it on slow links.
HUB_TIMEOUT = 3.0
#: files a preset needs from the hub (no optimizer states or training arguments).
HUB_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt"]
#: hf options a preset spec may carry; the rest (label, revision) is the preset's.
PRESET_OPTIONS = ("batch", "max_length", "device", "dtype")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: the nine xdet languages, which both TextDetox classifiers cover.
_XDET9 = LANGUAGES


@dataclass(frozen=True)
class Preset:
    """One named scorer: what to load and how to read its output, with the evidence for each."""

    name: str
    model: str
    #: hub commit; ``None``: pinned on first download (see the module docstring).
    revision: str | None
    label_index: int
    label_name: str
    #: languages its model card reports results for; others are refused (``check_language``).
    languages: tuple[str, ...]
    #: sha256 of ``model.safetensors`` as the hub's LFS pointer gives it, when known.
    weights_sha256: str | None
    source: str


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="textdetox",
            model="textdetox/xlmr-large-toxicity-classifier-v2",
            revision=None,
            label_index=1,
            label_name="toxic",
            languages=(*_XDET9, "it", "fr", "hin", "he", "ja", "tt"),
            weights_sha256=None,
            source="TextDetox 2025 shared-task evaluation classifier (XLM-RoBERTa large); model card: "
            "'idx 0 for neutral, idx 1 for toxic'; no hub commit found, pinned on first download",
        ),
        Preset(
            name="textdetox-v1",
            model="textdetox/xlmr-large-toxicity-classifier",
            revision="c9bb2227aaed85b4ffe865776630b0374683697e",
            label_index=1,
            label_name="toxic",
            languages=_XDET9,
            weights_sha256="829a9d93b6ed9f0d6664a4dc454fdbc5fde3cb1ab9229a555e0537ca8bbaea55",
            source="TextDetox 2024 classifier; revision = newest commit of main in the hub history "
            "('Update README.md'); config.json id2label {0: neutral, 1: toxic} since commit f378345; "
            "weights sha256 from the LFS pointer of commit 83eca9e",
        ),
    )
}


@dataclass(frozen=True)
class ResolvedPreset:
    """Where a preset's files are on this machine, and which revision they are."""

    preset: Preset
    folder: Path
    revision: str | None
    #: ``local-dir`` (override), ``hub-cache`` (already downloaded) or ``hub`` (downloaded now).
    origin: str
    #: this machine's pin (:func:`read_lock`); ``{}`` for a local folder or a revision the preset table fixes.
    lock: dict[str, Any] = field(default_factory=dict)


def preset_names() -> list[str]:
    return sorted(PRESETS)


def env_dir_var(name: str) -> str:
    """``XDET_SCORER_PRESET_DIR_TEXTDETOX_V1`` for ``textdetox-v1``."""
    return ENV_DIR_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _unavailable(preset: Preset, why: str) -> ScorerError:
    """The one-line error for a preset that cannot be loaded, naming the ways out."""
    why = " ".join(why.split())
    return ScorerError(
        f"scorer {preset.name!r} ({preset.model}) cannot be loaded: {why}; set {ENV_SCORER}=local for the "
        f"offline development scorer, or point {env_dir_var(preset.name)} at a local copy"
    )


def lock_path(name: str) -> Path:
    return cache_dir() / "scorer-presets" / f"{name}.json"


def read_lock(preset: Preset) -> dict[str, Any]:
    """The revision (and weight hash) this machine pinned for ``preset``; ``{}`` if none or stale."""
    path = lock_path(preset.name)
    try:
        lock = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise ScorerError(f"scorer {preset.name!r}: unreadable revision lock {path}: {err}; delete it") from None
    if lock.get("model") != preset.model or not _COMMIT.fullmatch(str(lock.get("revision", ""))):
        return {}  # written for another model: the table changed since
    return lock


def _write_lock(preset: Preset, revision: str, files_sha256: str | None) -> None:
    atomic_write_json(lock_path(preset.name), {
        "preset": preset.name, "model": preset.model, "revision": revision, "files_sha256": files_sha256,
        "pinned_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })


def _hub_cache() -> str:
    """The hub cache as the environment says now (the hub library reads it only at import)."""
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return constants.HF_HUB_CACHE


def _from_cache(preset: Preset, revision: str | None) -> Path | None:
    """The cached snapshot of ``revision`` (``None``: the cached ``main``), without any network."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(preset.model, revision=revision, cache_dir=_hub_cache(),
                                        allow_patterns=HUB_PATTERNS, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure here just means "not cached"
        return None
    return folder if any(folder.glob("*.safetensors")) else None


def _from_hub(preset: Preset, revision: str | None) -> tuple[Path, str]:
    """Resolve ``revision`` (default: the newest commit) with one short request, then download it."""
    from huggingface_hub import HfApi, snapshot_download

    reason = unreachable()
    if reason:
        raise _unavailable(preset, f"the hub cannot be reached ({reason}) and no local copy is cached")
    endpoint = os.environ.get("HF_ENDPOINT") or None  # as the environment says now, not at import
    timeout = float(os.environ.get("XDET_SCORER_HUB_TIMEOUT") or HUB_TIMEOUT)
    try:
        commit = HfApi(endpoint=endpoint).model_info(preset.model, revision=revision, timeout=timeout).sha
    except Exception as err:  # noqa: BLE001 - connection refused, DNS, timeout, 404, 401...
        kind = type(err).__name__
        if any(word in kind for word in ("Connect", "Timeout", "Network", "Offline", "Transport", "Proxy")):
            raise _unavailable(preset, "the hub is unreachable and no local copy is cached") from None
        raise _unavailable(preset, f"the hub answered {kind}: {str(err)[:200]}") from None
    if not commit or not _COMMIT.fullmatch(commit):
        raise _unavailable(preset, f"the hub returned no commit for revision {revision or 'main'}")
    try:
        folder = Path(snapshot_download(preset.model, revision=commit, cache_dir=_hub_cache(),
                                        allow_patterns=HUB_PATTERNS, endpoint=endpoint))
    except Exception as err:  # noqa: BLE001 - a broken transfer
        raise _unavailable(preset, f"download of commit {commit} failed: {type(err).__name__}: {err}") from None
    return folder, commit


def resolve_preset(name: str) -> ResolvedPreset:
    """Find (or download) the files of preset ``name``; raise a one-line :class:`ScorerError` if impossible."""
    if name not in PRESETS:
        raise ScorerError(f"unknown scorer preset {name!r}; expected one of {', '.join(preset_names())}")
    preset = PRESETS[name]
    override = os.environ.get(env_dir_var(name), "").strip()
    if override:
        folder = Path(override).expanduser()
        if not folder.is_dir():
            raise _unavailable(preset, f"{env_dir_var(name)}={override} is not a folder")
        folder = folder.resolve()
        return ResolvedPreset(preset, folder, _snapshot_commit(folder), "local-dir")
    lock = {} if preset.revision else read_lock(preset)
    revision = preset.revision or lock.get("revision")
    folder = _from_cache(preset, revision)
    if folder is not None:
        return ResolvedPreset(preset, folder, revision or _snapshot_commit(folder), "hub-cache", lock)
    folder, commit = _from_hub(preset, revision)
    return ResolvedPreset(preset, folder, commit, "hub", lock)


def _snapshot_commit(folder: Path) -> str | None:
    return folder.name if _COMMIT.fullmatch(folder.name) else None


def _lfs_sha256(folder: Path) -> str | None:
    """sha256 of ``model.safetensors`` read off the hub cache's blob name (free: no re-hashing)."""
    target = Path(os.path.realpath(folder / "model.safetensors"))
    return target.name if target.exists() and _SHA256.fullmatch(target.name) else None


def _preset_options(name: str, arg: str) -> str:
    """``hf`` options from a preset spec's argument (``#batch=64`` or ``batch=64``), checked."""
    opts = arg.strip().lstrip("#").strip()
    for item in filter(None, (p.strip() for p in opts.split(","))):
        key = item.partition("=")[0].strip()
        if key not in PRESET_OPTIONS:
            raise ScorerError(
                f"{ENV_SCORER}={name}:{arg}: option {key!r} is not allowed for a preset (it fixes the model, "
                f"revision and label); expected {', '.join(PRESET_OPTIONS)}, or use hf:<model>#{key}=..."
            )
    return opts


class PresetScorer(HFScorer):
    """An :class:`HFScorer` built from a preset, whose provenance names the preset and its revision."""

    def __init__(self, name: str, arg: str = ""):
        opts = _preset_options(name, arg)
        resolved = resolve_preset(name)
        preset = resolved.preset
        lock = resolved.lock
        try:
            super().__init__(f"{resolved.folder}#label={preset.label_index}" + (f",{opts}" if opts else ""))
        except ScorerError as err:  # e.g. a folder without tokenizer files: still one line naming the preset
            raise _unavailable(preset, str(err)) from None
        if self.label_name.lower() not in (preset.label_name, f"label_{preset.label_index}"):
            raise _unavailable(preset, f"class {preset.label_index} is named {self.label_name!r}, "
                                       f"not {preset.label_name!r} as the preset expects")
        lfs = _lfs_sha256(resolved.folder)
        if preset.weights_sha256 and lfs and lfs != preset.weights_sha256:
            raise _unavailable(preset, f"model.safetensors has sha256 {lfs}, expected {preset.weights_sha256}")
        if lock.get("files_sha256") and lock["files_sha256"] != self.files_sha256:
            raise _unavailable(preset, f"the files of pinned revision {lock['revision']} changed on disk "
                                       f"(sha256 {self.files_sha256[:16]}, pinned {lock['files_sha256'][:16]})")
        if resolved.origin != "local-dir" and not preset.revision and not lock.get("files_sha256"):
            _write_lock(preset, str(resolved.revision), self.files_sha256)  # first use pins the revision
        self.preset = preset
        self.covers = preset.languages
        self.revision = resolved.revision
        self.origin = resolved.origin
        self.local_path = str(resolved.folder)
        self.weights_lfs_sha256 = lfs
        self.model_ref = preset.model
        if self.revision:
            self.version = f"{self.version}@{self.revision[:12]}"

    def check_language(self, lang: str) -> None:
        if lang not in self.preset.languages:
            raise ScorerError(
                f"scorer {self.preset.name!r} ({self.preset.model}) has no reported results for language "
                f"{lang!r}; its model card covers {', '.join(self.preset.languages)}"
            )

    def provenance(self) -> dict[str, Any]:
        return {
            **super().provenance(),
            "preset": self.preset.name,
            "model": self.preset.model,
            "revision": self.revision,
            "revision_pinned_by": "preset table" if self.preset.revision else
            ("local folder" if self.origin == "local-dir" else f"first download ({lock_path(self.preset.name)})"),
            "origin": self.origin,
            "local_path": self.local_path,
            "weights_lfs_sha256": self.weights_lfs_sha256,
            "preset_source": self.preset.source,
        }


def build_preset(name: str, arg: str = "") -> PresetScorer:
    """The scorer of preset ``name`` (``XDET_SCORER=<name>[:<hf options>]``)."""
    return PresetScorer(name, arg)
