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
from xdet_tasks.io import unreachable

log = logging.getLogger(__name__)


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


#: Files a tokenizer is saved as (fast JSON, SentencePiece, BPE vocabulary + merges, WordPiece vocabulary).
_TOKENIZER_FILES = frozenset({"tokenizer.json", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model",
                              "vocab.json", "merges.txt", "vocab.txt", "tokenizer_config.json"})


def load_tokenizer(model: str, revision: str | None = None):
    """The model's tokenizer, checked before any weight loads: a folder without tokenizer files is named."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model, revision=revision)
    except (OSError, ValueError, TypeError, KeyError) as err:
        folder = Path(model).expanduser()
        files = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
        why = ("no tokenizer files beside config.json" if files and not files & _TOKENIZER_FILES
               else _first_line(err))
        raise XdetError(
            f"model {model!r}: cannot load its tokenizer ({why}); a model folder needs the tokenizer files "
            f"beside config.json ({', '.join(sorted(_TOKENIZER_FILES)[:4])}, ... as its tokenizer class reads)"
        ) from None
    if tokenizer is None or isinstance(tokenizer, bool):
        raise XdetError(f"model {model!r}: no tokenizer files found beside config.json")
    return tokenizer


def load_model(model: str, revision: str | None, config, quantized: bool, tokenizer):
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

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


def model_skeleton(config, model_id: str):
    """The model's modules on the meta device: every layer's name and type, no weights, no memory.

    What LoRA can target is decided on this skeleton, so a bad choice fails (and an identical rerun is
    recognised) before any weight is read.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
    try:
        with torch.device("meta"):
            return auto.from_config(config)
    except (ValueError, KeyError) as err:
        kind = "sequence-to-sequence" if config.is_encoder_decoder else "causal"
        raise XdetError(
            f"model {model_id!r} ({config.model_type}): transformers has no {kind} language model class for "
            f"this architecture ({auto.__name__}), so it cannot be trained or generate: {_first_line(err)}"
        ) from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _lora_targets(config, model_id: str, targets) -> set[str]:
    """The module names PEFT wraps on a fresh skeleton for ``targets`` (``None``: PEFT's default)."""
    import warnings

    import torch
    from peft import LoraConfig, get_peft_model

    skeleton = model_skeleton(config, model_id)
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "fan_in_fan_out" notes on GPT-2's Conv1D
        wrapped = get_peft_model(skeleton, LoraConfig(r=1, target_modules=targets))
    return {name.removeprefix("base_model.model.") for name, module in wrapped.named_modules()
            if hasattr(module, "lora_A") and hasattr(module, "base_layer")}


def _shortest(names: list[str], wrapped: set[str]) -> list[str]:
    """Name suffixes that select exactly ``wrapped`` (PEFT matches a target against each name's end),
    else the full names: the manifest then reads ``q_proj, v_proj`` instead of one entry per layer."""
    suffixes = sorted({name.rsplit(".", 1)[-1] for name in wrapped})
    selected = {name for name in names if name.rsplit(".", 1)[-1] in suffixes}
    return suffixes if selected == wrapped else sorted(wrapped)


def resolve_target_modules(config, wanted: tuple[str, ...] | None, model_id: str) -> tuple[tuple[str, ...], str]:
    """LoRA targets and where they come from, decided on the model's skeleton before weights load.

    ``wanted`` (``--target-modules``) wins and must name layers the model has; otherwise PEFT's own
    per-architecture default (``peft.utils.constants``), and where PEFT has none, PEFT's ``all-linear``
    (every linear layer but the output head). Returns the module name suffixes (or full names) and
    ``explicit``, ``peft-default`` or ``all-linear``.
    """
    import torch

    modules = list(model_skeleton(config, model_id).named_modules())
    names = [name for name, _ in modules if name]
    if wanted:
        suffixes = {name.rsplit(".", 1)[-1] for name in names}
        missing = [t for t in wanted if t not in suffixes]
        if missing:
            linear = sorted({n.rsplit(".", 1)[-1] for n, m in modules
                             if isinstance(m, torch.nn.Linear) or type(m).__name__ == "Conv1D"})
            raise XdetError(
                f"model {model_id!r} ({config.model_type}): target module(s) {', '.join(missing)} not found; its "
                f"linear layers are {', '.join(linear[:30]) or 'none'} (choose with --target-modules)"
            )
        try:
            _lora_targets(config, model_id, list(wanted))
        except ValueError as err:
            raise XdetError(f"model {model_id!r}: --target-modules {','.join(wanted)}: {_first_line(err)}") from None
        return tuple(wanted), "explicit"
    try:
        wrapped, source = _lora_targets(config, model_id, None), "peft-default"
    except ValueError:  # PEFT keeps no default for this model type
        try:
            wrapped, source = _lora_targets(config, model_id, "all-linear"), "all-linear"
        except ValueError as err:
            raise XdetError(
                f"model {model_id!r} ({config.model_type}): PEFT cannot adapt it with LoRA: {_first_line(err)}"
            ) from None
    if not wrapped:
        raise XdetError(f"model {model_id!r} ({config.model_type}): PEFT finds no layer LoRA can adapt")
    targets = tuple(_shortest(names, wrapped))
    log.debug("%s: LoRA targets %s (%s)", model_id, ", ".join(targets), source)
    return targets, source


def check_model(model: str, revision: str | None = None, *, tokenizer: bool = True,
                lora_targets: tuple[str, ...] | None = None, trains: bool = False) -> Any:
    """Every check of a model that needs no weights, before a command creates anything: its config, that
    transformers can build it as a language model, its tokenizer, and (``trains``) its LoRA targets."""
    config = load_model_config(model, revision)
    if trains:
        resolve_target_modules(config, lora_targets, model)
    else:
        model_skeleton(config, model)
    if tokenizer:
        load_tokenizer(model, revision)
    return config
