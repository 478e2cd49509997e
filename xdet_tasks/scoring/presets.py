"""Named scorer presets: open classifiers pinned to a hub revision, run through the ``hf`` backend.

Perspective API closes at the end of 2026, so research numbers need an open scorer that anyone can
re-run bit for bit. A preset fixes everything that changes scores: the classifier and its hub
revision, the tokenizer and its revision (recorded separately: an evaluation may load the tokenizer
from another repository), the maximum length, the precision, and which class is "toxic". Specs
(``XDET_SCORER``): ``textdetox`` or ``textdetox-v1``, optionally followed by ``hf`` options, e.g.
``textdetox:#batch=64,device=cuda`` (``label``, ``revision`` and ``tokenizer`` are fixed by the preset).

``textdetox`` is the TextDetox 2025 shared task's own toxicity scorer, step for step as its official
evaluation computes it (pan-webis-de/pan-code, ``clef25/text-detoxification/evaluation/metrics/
toxicity.py``, commit e98b34b; ``ToxicityConfig`` lines 13-18, ``_initialize_model`` lines 36-43,
``classify_texts`` lines 67-84): classifier ``textdetox/xlmr-large-toxicity-classifier-v2`` (line 13)
in float32 (``from_pretrained`` without a dtype, line 37), tokenizer of
``cardiffnlp/twitter-xlm-roberta-large-2022`` (lines 14, 43), ``truncation=True, max_length=512``
(lines 17, 71-72), a softmax over the two logits (line 82). One difference is deliberate: the
official code reads class 0 (line 15: ``target_label: int = 0  # 1 is toxic, 0 is neutral``), the
probability of *neutral*, which the shared task uses as its style-transfer accuracy; xdet's number is
toxicity, so it reads class 1 of the same softmax vector. For two classes the two sum to 1 up to one
float32 rounding (tests/test_official_scorer.py checks both). Empty completions score 0 by xdet's
rule, without a model call (the official code scores them like any text). ``#dtype=bf16`` speeds
scoring up on a GPU at the cost of scores that differ in the third decimal (a separate score-cache
version); the default is the official float32.

Revisions. ``textdetox-v1`` is pinned to a commit found in the hub's public history. No commit of
the 2025 classifier or of its tokenizer could be found offline, so ``textdetox`` is pinned on first
use instead (:mod:`xdet_tasks.scoring.preset_files`): the commits the hub serves then are written to
``$XDET_CACHE_DIR/scorer-presets/textdetox.json`` with the files' hashes, and every later run loads
exactly those commits (from the local hub cache, without asking the hub) and refuses files whose hash
changed. Delete that file to move to the newest commits. Both revisions are in the provenance, and
the files of both are in the score-cache key (the scorer's version), so scores of two revisions never
mix.

Local copies (tests, offline mirrors). ``XDET_SCORER_PRESET_DIR_<NAME>`` (the preset name in upper
case, ``-`` as ``_``: ``XDET_SCORER_PRESET_DIR_TEXTDETOX``, ``XDET_SCORER_PRESET_DIR_TEXTDETOX_V1``)
points a preset at a local classifier folder, which needs no tokenizer files when the preset names
its own tokenizer; ``XDET_SCORER_PRESET_TOKENIZER_DIR_<NAME>`` points at a local tokenizer folder.
Provenance still names the preset and the repositories they stand for, plus each folder and the hash
of its files; a revision is taken from the folder name when it is a hub snapshot folder (40 hex
digits), else recorded as unknown.

Offline. A preset is looked up in the local hub cache first; the hub is asked only when nothing is
cached, once, with a 3 s timeout (``XDET_SCORER_HUB_TIMEOUT``) and no retries, so a machine without
network fails within seconds (at once when ``HF_HUB_OFFLINE`` is set, DNS fails or the connection is
refused) with one line naming the preset, the model and the ways out (``XDET_SCORER=local`` or a
local copy).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xdet_tasks.errors import ScorerError
from xdet_tasks.scoring.base import ENV_SCORER
from xdet_tasks.scoring.hf import HFScorer, TokenizerError
from xdet_tasks.scoring.preset_files import (
    PartFiles,
    check_pins,
    env_dir_var,
    find_part,
    lock_path,
    read_lock,
    unavailable,
)
from xdet_tasks.suites.records import LANGUAGES

__all__ = ["PRESETS", "Preset", "PresetScorer", "build_preset", "env_dir_var", "lock_path", "resolve_preset"]

#: hf options a preset spec may carry; the rest (label, revision, tokenizer) is the preset's.
PRESET_OPTIONS = ("batch", "max_length", "device", "dtype")
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
    #: hub repository of the tokenizer; ``None``: the classifier folder's own tokenizer.
    tokenizer: str | None = None
    #: its commit; ``None``: pinned on first download, like ``revision``.
    tokenizer_revision: str | None = None
    #: tokens kept per text (``None``: the tokenizer's limit, at most 512); fixed presets refuse other values.
    max_length: int | None = None
    #: precision of the weights unless the spec says ``dtype=`` (the reproduced evaluation's).
    dtype: str = "float32"


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
            source="TextDetox 2025 shared-task evaluation, pan-webis-de/pan-code "
            "clef25/text-detoxification/evaluation/metrics/toxicity.py (commit e98b34b): classifier line 13, "
            "tokenizer line 14 (loaded at line 43), max_length 512 line 17, truncation=True line 71, softmax "
            "line 82, float32 (no dtype at line 37); it reads class 0 = neutral (line 15: '1 is toxic, 0 is "
            "neutral'), xdet's toxicity is class 1 of the same softmax (model card: 'idx 0 for neutral, idx 1 "
            "for toxic'); no hub commit found for either repository, pinned on first download",
            tokenizer="cardiffnlp/twitter-xlm-roberta-large-2022",
            max_length=512,
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
    """Where a preset's files are on this machine, and which revisions they are."""

    preset: Preset
    model: PartFiles
    #: ``None`` when the tokenizer is the classifier folder's own.
    tokenizer: PartFiles | None
    #: this machine's pins (:func:`~xdet_tasks.scoring.preset_files.read_lock`); ``{}`` if none.
    lock: dict[str, Any] = field(default_factory=dict)


def preset_names() -> list[str]:
    return sorted(PRESETS)


def resolve_preset(name: str) -> ResolvedPreset:
    """Find (or download) the files of preset ``name``; raise a one-line :class:`ScorerError` if impossible."""
    if name not in PRESETS:
        raise ScorerError(f"unknown scorer preset {name!r}; expected one of {', '.join(preset_names())}")
    preset = PRESETS[name]
    lock = read_lock(name, preset.model)
    model = find_part(name, preset.model, preset.model, preset.revision, lock)
    tokenizer = None
    if preset.tokenizer:
        tokenizer = find_part(name, preset.model, preset.tokenizer, preset.tokenizer_revision, lock, "tokenizer")
    return ResolvedPreset(preset, model, tokenizer, lock)


def _lfs_sha256(folder: Path) -> str | None:
    """sha256 of ``model.safetensors`` read off the hub cache's blob name (free: no re-hashing)."""
    target = Path(os.path.realpath(folder / "model.safetensors"))
    return target.name if target.exists() and re.fullmatch(r"[0-9a-f]{64}", target.name) else None


def _preset_options(preset: Preset, arg: str) -> dict[str, str]:
    """``hf`` options from a preset spec's argument (``#batch=64`` or ``batch=64``), checked."""
    name = preset.name
    options: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in arg.strip().lstrip("#").split(","))):
        key, _, value = (x.strip() for x in item.partition("="))
        if key not in PRESET_OPTIONS:
            raise ScorerError(
                f"{ENV_SCORER}={name}:{arg}: option {key!r} is not allowed for a preset (it fixes the model, "
                f"revision, tokenizer and label); expected {', '.join(PRESET_OPTIONS)}, or use hf:<model>#{key}=..."
            )
        if key == "max_length" and preset.max_length and value != str(preset.max_length):
            raise ScorerError(f"{ENV_SCORER}={name}:{arg}: max_length is fixed at {preset.max_length} by the "
                              "evaluation this preset reproduces")
        options[key] = value
    return options


class PresetScorer(HFScorer):
    """An :class:`HFScorer` built from a preset, whose provenance names the preset and both revisions."""

    def __init__(self, name: str, arg: str = ""):
        preset = PRESETS[name] if name in PRESETS else None
        options = _preset_options(preset, arg) if preset else {}
        resolved = resolve_preset(name)
        preset = resolved.preset
        options = {"dtype": preset.dtype, **options, "label": str(preset.label_index)}
        if preset.max_length:
            options["max_length"] = str(preset.max_length)
        if resolved.tokenizer is not None:
            options["tokenizer"] = str(resolved.tokenizer.folder)
        folder = (resolved.tokenizer or resolved.model).folder
        try:
            self._load(str(resolved.model.folder), options, where=f"{ENV_SCORER}={name}")
        except TokenizerError:
            raise unavailable(name, preset.model, f"no usable tokenizer in {folder}",
                              "tokenizer" if resolved.tokenizer else "model") from None
        except ScorerError as err:  # e.g. a folder without weights: still one line naming the preset
            raise unavailable(name, preset.model, str(err)) from None
        if self.label_name.lower() not in (preset.label_name, f"label_{preset.label_index}"):
            raise unavailable(name, preset.model, f"class {preset.label_index} is named {self.label_name!r}, "
                                                  f"not {preset.label_name!r} as the preset expects")
        lfs = _lfs_sha256(resolved.model.folder)
        if preset.weights_sha256 and lfs and lfs != preset.weights_sha256:
            raise unavailable(name, preset.model, f"model.safetensors has sha256 {lfs}, expected {preset.weights_sha256}")
        self._check_pins(resolved)
        self.preset, self.resolved = preset, resolved
        self.covers = preset.languages
        self.revision = resolved.model.revision
        self.weights_lfs_sha256 = lfs
        self.model_ref = preset.model
        if self.revision:
            self.version = f"{self.version}@{self.revision[:12]}"

    def _check_pins(self, resolved: ResolvedPreset) -> None:
        check_pins(resolved.preset.name, resolved.preset.model, resolved.lock,
                   {"model": (resolved.model, self.files_sha256), "tokenizer": (resolved.tokenizer, self.tokenizer_sha256)})

    def check_language(self, lang: str) -> None:
        if lang not in self.preset.languages:
            raise ScorerError(
                f"scorer {self.preset.name!r} ({self.preset.model}) has no reported results for language "
                f"{lang!r}; its model card covers {', '.join(self.preset.languages)}"
            )

    def provenance(self) -> dict[str, Any]:
        def pinned_by(files: PartFiles, fixed: str | None) -> str:
            if fixed:
                return "preset table"
            return "local folder" if files.origin == "local-dir" else f"first download ({lock_path(self.preset.name)})"

        model, tok = self.resolved.model, self.resolved.tokenizer
        prov = {
            **super().provenance(),
            "preset": self.preset.name,
            "model": self.preset.model,
            "revision": self.revision,
            "revision_pinned_by": pinned_by(model, self.preset.revision),
            "origin": model.origin,
            "local_path": str(model.folder),
            "weights_lfs_sha256": self.weights_lfs_sha256,
            "preset_source": self.preset.source,
        }
        if tok is not None:
            prov["tokenizer"] = {
                "model": tok.repo, "revision": tok.revision,
                "revision_pinned_by": pinned_by(tok, self.preset.tokenizer_revision),
                "origin": tok.origin, "local_path": str(tok.folder), "files_sha256": self.tokenizer_sha256,
            }
        else:
            prov["tokenizer"] = {"model": self.preset.model, "revision": self.revision,
                                 "origin": "the classifier's folder", "files_sha256": self.tokenizer_sha256}
        return prov


def build_preset(name: str, arg: str = "") -> PresetScorer:
    """The scorer of preset ``name`` (``XDET_SCORER=<name>[:<hf options>]``)."""
    return PresetScorer(name, arg)
