"""Loading a base model for LoRA training: its config (checked first), 4-bit when possible, LoRA targets.

The config is loaded before anything heavy so that a wrong model path or id fails in a second with
one line. On a CUDA machine with bitsandbytes the base model is loaded in 4-bit NF4 (QLoRA, as the
released scripts do); on CPU plain LoRA.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from xdet_tasks.errors import XdetError
from xdet_tasks.io import unreachable
from xdet_train.config import TrainConfig

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
        base = auto.from_pretrained(model, config=config, **kwargs)  # the config the skeleton was built from
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
    import copy

    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
    try:
        with torch.device("meta"):  # on a copy: from_config records its attention choice in the config
            return auto.from_config(copy.deepcopy(config))
    except (ValueError, KeyError) as err:
        kind = "sequence-to-sequence" if config.is_encoder_decoder else "causal"
        raise XdetError(
            f"model {model_id!r} ({config.model_type}): transformers has no {kind} language model class for "
            f"this architecture ({auto.__name__}), so it cannot be trained or generate: {_first_line(err)}"
        ) from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def lora_config(cfg: TrainConfig, *, seq2seq: bool):
    """The ``LoraConfig`` training wraps the base model with (SFT and DPO alike); the skeleton is wrapped
    with this same call before any weight loads, so what passes there is what training gets."""
    from peft import LoraConfig, TaskType

    return LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, bias="none",
        target_modules=_as_peft_targets(cfg.target_modules),
        task_type=TaskType.SEQ_2_SEQ_LM if seq2seq else TaskType.CAUSAL_LM,
    )


def _as_peft_targets(targets):
    """PEFT's ``target_modules``: ``None`` (its default) and a string (``all-linear``) as they are, names as a list."""
    return targets if targets is None or isinstance(targets, str) else list(targets)


def _one_line(err: BaseException, limit: int = 300) -> str:
    """An exception's message as one line (PEFT's can span lines, e.g. when it prints a module)."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _wrap(config, model_id: str, cfg: TrainConfig, targets) -> set[str]:
    """The module names PEFT wraps on a fresh skeleton with training's LoRA config and ``targets``
    (``None``: PEFT's default; a string: PEFT's ``all-linear``). PEFT's exceptions pass through."""
    import warnings

    import torch
    from peft import get_peft_model

    skeleton = model_skeleton(config, model_id)
    lora = lora_config(replace(cfg, target_modules=targets), seq2seq=bool(config.is_encoder_decoder))
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "fan_in_fan_out" notes on GPT-2's Conv1D
        wrapped = get_peft_model(skeleton, lora)
    return {name.removeprefix("base_model.model.") for name, module in wrapped.named_modules()
            if hasattr(module, "lora_A") and hasattr(module, "base_layer")}


def _shortest(names: list[str], wrapped: set[str]) -> list[str]:
    """Name suffixes that select exactly ``wrapped`` (PEFT matches a target against each name's end),
    else the full names: the manifest then reads ``q_proj, v_proj`` instead of one entry per layer."""
    suffixes = sorted({name.rsplit(".", 1)[-1] for name in wrapped})
    selected = {name for name in names if name.rsplit(".", 1)[-1] in suffixes}
    return suffixes if selected == wrapped else sorted(wrapped)


def _is_linear(module) -> bool:
    import torch

    return isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D"


def _fused_experts(modules: list[tuple[str, Any]]) -> list[str]:
    """Modules holding the experts of a mixture-of-experts layer as stacked 3-D weights (transformers 5
    fuses Mixtral's, Qwen2-MoE's, ...): no LoRA layer type wraps them, so a default never targets them."""
    import torch

    return [name for name, module in modules if not isinstance(module, torch.nn.modules.conv._ConvNd)
            and any(p.ndim >= 3 for p in module.parameters(recurse=False))]


def _attention_projections(modules: list[tuple[str, Any]]) -> list[str]:
    """Suffixes of the linear layers directly inside attention modules (``*Attention`` classes)."""
    attention = {name for name, module in modules if type(module).__name__.endswith("Attention")}
    return sorted({name.rsplit(".", 1)[-1] for name, module in modules
                   if _is_linear(module) and name.rpartition(".")[0] in attention})


#: Where default LoRA targets come from (the manifest's ``lora_targets_from``), in the order tried.
TARGET_SOURCES: dict[str, str] = {
    "explicit": "--target-modules",
    "peft-default": "PEFT's default for the architecture",
    "attention": "the attention projections; its experts are fused",
    "all-linear": "all linear layers",
    "supported-linear": "the linear layers PEFT accepts on this architecture",
}


def _refused(config, model_id: str, targets, err: BaseException) -> XdetError:
    what = ",".join(targets) if isinstance(targets, list | tuple) else repr(targets)
    return XdetError(f"model {model_id!r} ({config.model_type}): PEFT cannot put LoRA on {what}: {_one_line(err)}")


def _candidates(config, model_id: str, cfg: TrainConfig, skeleton, names: list[str]):
    """Default target lists, best first, each with its source: PEFT's default where it resolves; for
    fused experts the attention projections; else all linear layers; else those PEFT accepts one by one
    (on a state-space model PEFT refuses ``out_proj``, leaving the SSM's input, x and dt projections)."""
    modules = list(skeleton.named_modules())
    try:
        yield _shortest(names, _wrap(config, model_id, cfg, None)), "peft-default"
    except Exception:  # PEFT keeps no default, or its default does not resolve here
        pass
    if _fused_experts(modules):
        yield _attention_projections(modules), "attention"
        return
    try:
        yield _shortest(names, _wrap(config, model_id, cfg, "all-linear")), "all-linear"
    except Exception:  # some linear layer is refused: keep those PEFT accepts
        head = skeleton.get_output_embeddings()
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in modules if _is_linear(m) and m is not head})
        accepted = []
        for suffix in linear:
            try:
                _wrap(config, model_id, cfg, [suffix])
                accepted.append(suffix)
            except Exception:
                continue
        yield accepted, "supported-linear"


def resolve_target_modules(config, cfg: TrainConfig, model_id: str) -> tuple[tuple[str, ...], str]:
    """LoRA targets and where they come from (:data:`TARGET_SOURCES`), decided on the model's skeleton
    before weights load, with the LoRA config training then uses (:func:`lora_config`).

    ``cfg.target_modules`` (``--target-modules``) wins and must name layers the model has; otherwise the
    first default of :func:`_candidates` that PEFT wraps as the list training passes it. Any failure
    PEFT raises is one line naming the model, its type, the targets and PEFT's message.
    """
    skeleton = model_skeleton(config, model_id)
    modules = list(skeleton.named_modules())
    names = [name for name, _ in modules if name]
    wanted = cfg.target_modules
    if wanted:
        suffixes = {name.rsplit(".", 1)[-1] for name in names}
        missing = [t for t in wanted if t not in suffixes]
        if missing:
            linear = sorted({n.rsplit(".", 1)[-1] for n, m in modules if _is_linear(m)})
            raise XdetError(
                f"model {model_id!r} ({config.model_type}): target module(s) {', '.join(missing)} not found; its "
                f"linear layers are {', '.join(linear[:30]) or 'none'} (choose with --target-modules)"
            )
        try:
            _wrap(config, model_id, cfg, list(wanted))
        except Exception as err:  # whatever PEFT raises is the user's choice refused
            raise _refused(config, model_id, list(wanted), err) from None
        return tuple(wanted), "explicit"
    last: tuple[list[str], BaseException] | None = None
    for targets, source in _candidates(config, model_id, cfg, skeleton, names):
        if not targets:
            continue
        try:  # exactly the list training will pass (a default PEFT resolved differently is re-checked)
            if _wrap(config, model_id, cfg, targets):
                log.debug("%s: LoRA targets %s (%s)", model_id, ", ".join(targets), source)
                return tuple(targets), source
        except Exception as err:
            last = (targets, err)
    if last is not None:
        raise _refused(config, model_id, last[0], last[1])
    raise XdetError(f"model {model_id!r} ({config.model_type}): PEFT finds no layer LoRA can adapt")


def check_model(model: str, revision: str | None = None, *, tokenizer: bool = True,
                train: TrainConfig | None = None) -> Any:
    """Every check of a model that needs no weights, before a command creates anything: its config, that
    transformers can build it as a language model, its tokenizer, and (given ``train``, the training
    settings) its LoRA targets."""
    config = load_model_config(model, revision)
    if train is not None:
        resolve_target_modules(config, train, model)
    else:
        model_skeleton(config, model)
    if tokenizer:
        load_tokenizer(model, revision)
    return config
