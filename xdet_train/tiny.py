"""Tiny random models of every architecture xdet is tested on, built locally (no hub).

Each :class:`TinyArch` record names a ``transformers`` model type, the real checkpoint it stands in for
and the config values of a model small enough to train in seconds on a CPU. The models run the same
code paths as the real checkpoints (the same ``transformers`` classes, LoRA target resolution, causal
vs seq2seq handling, lm-eval's loading). A new architecture is one record; the tests' matrix reads
:data:`ARCHITECTURES`. Used by the tests, the benchmarks and the demo.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    PretrainedConfig,
    PreTrainedTokenizerFast,
)

SPECIAL_TOKENS = {"pad_token": "<pad>", "eos_token": "</s>", "bos_token": "<s>", "unk_token": "<unk>"}

#: width presets: "tiny" for unit tests, "toy" (a few million parameters) for the demo.
SIZES: dict[str, dict[str, int]] = {
    "tiny": {"hidden": 32, "layers": 2, "heads": 4, "ffn": 64},
    "toy": {"hidden": 256, "layers": 4, "heads": 4, "ffn": 768},
}


@dataclass(frozen=True)
class TinyArch:
    """How to build a small model of one architecture.

    ``dims`` maps the config's own field names to a size key of :data:`SIZES` (``hidden``, ``layers``,
    ``heads``, ``ffn``) or to ``kv_heads`` (half the heads) / ``head_dim`` (hidden / heads); ``fixed``
    holds literal config values.
    """

    model_type: str
    stands_for: str
    dims: dict[str, str]
    fixed: dict[str, Any] = field(default_factory=dict)

    @property
    def seq2seq(self) -> bool:
        return bool(AutoConfig.for_model(self.model_type).is_encoder_decoder)


_DECODER = {"hidden_size": "hidden", "intermediate_size": "ffn", "num_hidden_layers": "layers",
            "num_attention_heads": "heads", "num_key_value_heads": "kv_heads"}
_POSITIONS = {"max_position_embeddings": 512}
_BART = {"d_model": "hidden", "encoder_layers": "layers", "decoder_layers": "layers", "encoder_attention_heads": "heads",
         "decoder_attention_heads": "heads", "encoder_ffn_dim": "ffn", "decoder_ffn_dim": "ffn"}
_T5 = {"d_model": "hidden", "d_kv": "head_dim", "d_ff": "ffn", "num_layers": "layers", "num_decoder_layers": "layers",
       "num_heads": "heads"}

#: Every architecture the tests build, by ``config.model_type``.
RECORDS: tuple[TinyArch, ...] = (
    TinyArch("llama", "meta-llama/Llama-3.1-8B", _DECODER, {**_POSITIONS, "tie_word_embeddings": True}),
    TinyArch("cohere", "CohereForAI/aya-expanse-8b", _DECODER, {**_POSITIONS, "logit_scale": 1.0}),
    TinyArch("mistral", "mistralai/Mistral-7B-v0.3", _DECODER, _POSITIONS),
    TinyArch("qwen2", "Qwen/Qwen2.5-7B", _DECODER, _POSITIONS),
    TinyArch("qwen3", "Qwen/Qwen3-8B", {**_DECODER, "head_dim": "head_dim"}, _POSITIONS),
    TinyArch("gemma2", "google/gemma-2-9b", {**_DECODER, "head_dim": "head_dim"},
             {**_POSITIONS, "query_pre_attn_scalar": 8}),
    TinyArch("gemma3_text", "google/gemma-3-1b-pt", {**_DECODER, "head_dim": "head_dim"},
             {**_POSITIONS, "query_pre_attn_scalar": 8}),
    TinyArch("phi", "microsoft/phi-2", {k: v for k, v in _DECODER.items() if k != "num_key_value_heads"}, _POSITIONS),
    TinyArch("phi3", "microsoft/Phi-3.5-mini-instruct", _DECODER, {**_POSITIONS, "original_max_position_embeddings": 512}),
    TinyArch("gpt2", "ai-forever/mGPT", {"n_embd": "hidden", "n_layer": "layers", "n_head": "heads", "n_inner": "ffn"},
             {"n_positions": 512}),
    TinyArch("gpt_neox", "EleutherAI/pythia-1.4b",
             {k: v for k, v in _DECODER.items() if k != "num_key_value_heads"}, _POSITIONS),
    TinyArch("opt", "facebook/opt-1.3b",
             {"hidden_size": "hidden", "word_embed_proj_dim": "hidden", "ffn_dim": "ffn", "num_hidden_layers": "layers",
              "num_attention_heads": "heads"}, _POSITIONS),
    TinyArch("falcon", "tiiuae/falcon-7b", {"hidden_size": "hidden", "num_hidden_layers": "layers",
                                            "num_attention_heads": "heads"}, {"max_position_embeddings": 512}),
    TinyArch("bloom", "bigscience/bloom-7b1", {"hidden_size": "hidden", "n_layer": "layers", "n_head": "heads"}),
    TinyArch("olmo2", "allenai/OLMo-2-1124-7B", _DECODER, _POSITIONS),
    TinyArch("mixtral", "mistralai/Mixtral-8x7B-v0.1", _DECODER,
             {**_POSITIONS, "num_local_experts": 4, "num_experts_per_tok": 2}),
    TinyArch("qwen2_moe", "Qwen/Qwen1.5-MoE-A2.7B", {**_DECODER, "moe_intermediate_size": "ffn",
                                                    "shared_expert_intermediate_size": "ffn"},
             {**_POSITIONS, "num_experts": 4, "num_experts_per_tok": 2}),
    TinyArch("mamba", "state-spaces/mamba-130m-hf", {"hidden_size": "hidden", "num_hidden_layers": "layers"},
             {"state_size": 8}),
    TinyArch("xglm", "facebook/xglm-564M", {"d_model": "hidden", "num_layers": "layers", "attention_heads": "heads",
                                            "ffn_dim": "ffn"}, {"max_position_embeddings": 512}),
    TinyArch("mt5", "google/mt5-large", _T5, {"relative_attention_num_buckets": 8, "tie_word_embeddings": False}),
    TinyArch("umt5", "google/umt5-base", _T5, {"relative_attention_num_buckets": 8}),
    TinyArch("bart", "facebook/bart-base", _BART, _POSITIONS),
    TinyArch("mbart", "facebook/mbart-large-50", _BART, _POSITIONS),
)
ARCHITECTURES: dict[str, TinyArch] = {a.model_type: a for a in RECORDS}


def build_tokenizer(texts: Iterable[str], vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts`` (every script round-trips, no ``<unk>``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL_TOKENS)
    fast.model_max_length = 512
    return fast


def tiny_config(arch: str, tokenizer: PreTrainedTokenizerFast, size: str = "tiny") -> PretrainedConfig:
    """A small config of architecture ``arch`` whose special-token ids match ``tokenizer``."""
    record = ARCHITECTURES.get(arch)
    if record is None:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {', '.join(ARCHITECTURES)}")
    s = SIZES[size]
    sizes = {**s, "kv_heads": max(1, s["heads"] // 2), "head_dim": s["hidden"] // s["heads"]}
    values = {name: sizes[key] for name, key in record.dims.items()}
    ids = {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.bos_token_id,
    }
    if record.seq2seq:
        ids["decoder_start_token_id"] = tokenizer.pad_token_id
    return AutoConfig.for_model(arch, **values, **record.fixed, **ids)


def build_model(arch: str, tokenizer: PreTrainedTokenizerFast, size: str = "tiny", seed: int = 0):
    """Random weights from :func:`tiny_config`, reproducible for ``seed``."""
    config = tiny_config(arch, tokenizer, size)
    torch.manual_seed(seed)
    auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
    model = auto.from_config(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    if config.is_encoder_decoder:
        model.generation_config.decoder_start_token_id = tokenizer.pad_token_id
    return model


def save_tiny_model(
    arch: str, out_dir: str | Path, texts: Iterable[str], size: str = "tiny", seed: int = 0,
    vocab_size: int = 1024,
) -> Path:
    """Build tokenizer + model and save both as a directory ``from_pretrained`` (and lm-eval) can load."""
    out = Path(out_dir)
    tokenizer = build_tokenizer(texts, vocab_size=vocab_size)
    model = build_model(arch, tokenizer, size=size, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
