"""Loading a base model for LoRA training: its config (checked first), 4-bit when possible, LoRA targets.

The config is loaded before anything heavy so that a wrong model path or id fails in a second with
one line. On a CUDA machine with bitsandbytes the base model is loaded in 4-bit NF4 (QLoRA, as the
released scripts do); on CPU plain LoRA.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from xdet_tasks.errors import XdetError
from xdet_tasks.hub import unreachable

log = logging.getLogger(__name__)

#: Tried in order on an architecture without an entry in ``config.TARGET_MODULES``
#: (the released scripts' detection).
_FALLBACK_PATTERNS: tuple[tuple[str, ...], ...] = (
    ("q_proj", "k_proj", "v_proj", "o_proj"), ("query_key_value",), ("q", "v"), ("c_attn",),
)


def _cuda_4bit_available() -> bool:
    import importlib.util

    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes") is not None


def use_4bit(mode: str) -> bool:
    if mode == "none":
        return False
    available = _cuda_4bit_available()
    if mode == "4bit" and not available:
        raise XdetError("quantize=4bit needs a CUDA GPU and the bitsandbytes package; use quantize=auto or none")
    return available


#: What a model hub id looks like: ``name`` or ``org/name``.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def load_model_config(model: str, revision: str | None = None) -> Any:
    """The model's config: the one check every command makes before it creates anything.

    A local model is a folder with ``config.json``; anything else must look like a hub id. A hub id
    that cannot be fetched says whether the hub was unreachable (and how to use a local copy) or
    the id is wrong, in one line.
    """
    from transformers import AutoConfig

    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise XdetError(f"model {model!r}: a local model must be a folder holding config.json")
    elif model.startswith(("/", ".", "~")) or not _HUB_ID.match(model):
        raise XdetError(f"model {model!r}: no such folder, and not a hub id like 'org/name'")
    if not path.exists():
        try:  # a copy in the hub cache serves offline too
            return AutoConfig.from_pretrained(model, revision=revision, local_files_only=True)
        except (OSError, ValueError):
            reason = unreachable("TRANSFORMERS_OFFLINE")
            if reason:
                raise XdetError(
                    f"model {model!r}: the model hub cannot be reached ({reason}) and no local copy is cached; "
                    f"download it where the hub is reachable (`hf download {model} --local-dir <folder>`) and "
                    "pass --model <folder>"
                ) from None
    try:
        return AutoConfig.from_pretrained(str(path) if path.exists() else model, revision=revision)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise XdetError(f"model {model!r}: cannot load its config: {first}") from None


def load_model(model: str, revision: str | None, config, quantized: bool):
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    kwargs: dict[str, Any] = {"revision": revision}
    if quantized:
        from transformers import BitsAndBytesConfig

        compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute,
        )
        kwargs["device_map"] = {"": 0}
        kwargs["dtype"] = compute
    elif torch.cuda.is_available():
        kwargs["dtype"] = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
    try:
        tokenizer = AutoTokenizer.from_pretrained(model, revision=revision)
        base = auto.from_pretrained(model, **kwargs)
    except (OSError, ValueError) as err:
        raise XdetError(f"cannot load model {model!r}: {err}") from None
    if tokenizer.pad_token is None:  # the released scripts pad with EOS
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    if quantized:
        from peft import prepare_model_for_kbit_training

        base = prepare_model_for_kbit_training(base)
    return base, tokenizer


def _module_suffixes(model) -> set[str]:
    return {name.rsplit(".", 1)[-1] for name, _ in model.named_modules() if name}


def resolve_target_modules(model, wanted: tuple[str, ...] | None, model_id: str) -> tuple[str, ...]:
    """Check ``wanted`` exist in ``model`` (or detect them); :class:`XdetError` listing linear layers if not."""
    import torch

    suffixes = _module_suffixes(model)
    if wanted is None:
        for pattern in _FALLBACK_PATTERNS:
            if all(t in suffixes for t in pattern):
                log.info("%s: detected LoRA target modules %s", model_id, pattern)
                return pattern
    missing = [t for t in (wanted or ()) if t not in suffixes]
    if wanted is None or missing:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        what = f"target module(s) {', '.join(missing)} not found" if wanted else "no known LoRA target modules found"
        raise XdetError(
            f"model {model_id!r} ({model.config.model_type}): {what}; its linear layers are "
            f"{', '.join(linear[:30]) or 'none'} (choose with --target-modules)"
        )
    return tuple(wanted)
