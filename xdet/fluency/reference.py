"""The reference language model of ``xdet fluency``: checked before its weights load, and its identity.

Causal LMs only. Li et al. (2024) score with mT5-XL as ``AutoModelForSeq2SeqLM(full_ids, labels=full_ids)``,
which feeds the whole text, completion included, to the encoder and asks the decoder to reproduce it:
that is a copy loss, not the probability of the completion given the prompt. A sequence-to-sequence
reference is therefore refused in one line (a causal multilingual model such as mGPT, BLOOM or a
Llama/Qwen base model takes its place).

The reference's identity is a hash of its config, weight and tokenizer files (those that determine its
outputs) and of the dtype it runs in: the fluency cache keys on it and every fluency file records it,
so a new revision of a model under the same name is another reference, and two runs' fluency under
different references are never subtracted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xdet.fluency.compute import CONDITIONING
from xdet_tasks.errors import XdetError
from xdet_tasks.scoring.hf import NO_WEIGHT_PATTERNS, files_hash, pick_device, pick_dtype
from xdet_tasks.scoring.preset_files import snapshot_commit
from xdet_train.model import load_model_config, load_tokenizer, model_skeleton

#: Config fields that give a model's context window, first found wins.
_WINDOW_FIELDS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")
_WEIGHTS = (".safetensors", ".bin")


@dataclass(frozen=True)
class Reference:
    """A checked reference model (no weights loaded yet)."""

    model: str  # as the user gave it
    revision: str | None
    folder: Path
    files_sha256: str
    dtype: str
    device: str
    max_length: int
    architecture: str
    tokenizer: Any = field(repr=False, compare=False)

    @property
    def name(self) -> str:
        return Path(self.model.rstrip("/")).name if Path(self.model).expanduser().exists() else self.model

    @property
    def ident(self) -> str:
        return hashlib.sha256(f"{self.files_sha256}|{self.dtype}".encode()).hexdigest()[:16]

    @property
    def cache_key(self) -> str:
        """What the fluency cache keys on: the identity, the conditioning version and the window."""
        return f"{self.ident}|conditioning-{CONDITIONING['version']}|window-{self.max_length}"

    @property
    def pad_id(self) -> int:
        tok = self.tokenizer
        return next((i for i in (tok.pad_token_id, tok.eos_token_id) if i is not None), 0)

    def provenance(self) -> dict[str, Any]:
        return {"model": self.model, "name": self.name, "revision": self.revision,
                "commit": snapshot_commit(self.folder), "files_sha256": self.files_sha256, "dtype": self.dtype,
                "max_length": self.max_length, "architecture": self.architecture, "ident": self.ident}


def _folder(model: str, revision: str | None) -> Path:
    """The local folder of the model's files: the path given, or its hub snapshot (cached copies first)."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(model, revision=revision, allow_patterns=[*NO_WEIGHT_PATTERNS, "*.safetensors"]))
        if not any(folder.glob("*.safetensors")):  # older repositories ship only pytorch_model*.bin
            folder = Path(snapshot_download(model, revision=revision, allow_patterns=[*NO_WEIGHT_PATTERNS, "*.bin"]))
    except Exception as err:  # noqa: BLE001 - whatever the hub client raises, one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise XdetError(f"reference model {model!r}: cannot get its files: {first}") from None
    return folder


def _window(config: Any, tokenizer: Any, model: str, max_length: int | None) -> int:
    if max_length is not None:
        if max_length < 2:
            raise XdetError(f"--max-length {max_length}: a prompt token and a completion token need at least 2")
        return max_length
    for name in _WINDOW_FIELDS:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 1:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 1 < limit < 1_000_000:
        return limit
    raise XdetError(f"reference model {model!r}: its config gives no context window ({', '.join(_WINDOW_FIELDS)}); "
                    "pass --max-length")


def _check_device(device: str) -> str:
    import torch

    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise XdetError(f"--device {device!r}: not a torch device (cpu, cuda, cuda:1, mps)") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise XdetError(f"--device {device}: no CUDA GPU is available here; use --device cpu")
    return device


def check_reference(model: str, revision: str | None = None, *, device: str | None = None, dtype: str | None = None,
                    max_length: int | None = None) -> Reference:
    """Every check that needs no weights, in one-line errors: config, a causal LM, a fast tokenizer, the
    weight files; then the identity hash (which reads the files once)."""
    config = load_model_config(model, revision)
    if config.is_encoder_decoder:
        raise XdetError(
            f"reference model {model!r} ({config.model_type}) is sequence-to-sequence: fluency is the probability "
            "of a completion given its prompt under a causal LM (scoring prompt + completion with a seq2seq model "
            "lets its encoder see the completion); use a causal model, e.g. mGPT, BLOOM or a Llama/Qwen base")
    skeleton = model_skeleton(config, model)  # transformers can build it as a causal LM
    tokenizer = load_tokenizer(model, revision)
    if not getattr(tokenizer, "is_fast", False):
        raise XdetError(f"reference model {model!r}: its tokenizer ({type(tokenizer).__name__}) is not a fast "
                        "tokenizer; the completion's tokens are found by character offsets, which need one")
    folder = _folder(model, revision)
    if not any(p.name.endswith(_WEIGHTS) for p in folder.iterdir() if p.is_file()):
        raise XdetError(f"reference model {model!r}: no weight files (*.safetensors, *.bin) in {folder}")
    device = _check_device(pick_device(device))
    return Reference(model=model, revision=revision, folder=folder, files_sha256=files_hash(folder),
                     dtype=pick_dtype(dtype, device), device=device,
                     max_length=_window(config, tokenizer, model, max_length),
                     architecture=type(skeleton).__name__, tokenizer=tokenizer)


def load_reference(reference: Reference) -> Any:
    """The reference's weights, in evaluation mode on its device and dtype."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(reference.folder, dtype=getattr(torch, reference.dtype))
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise XdetError(f"reference model {reference.model!r}: cannot load its weights: {first}") from None
    return model.to(reference.device).eval()
