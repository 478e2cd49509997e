"""Tiny random models of the paper's four families, built locally (no hub).

They exercise the same code paths as the real 8B checkpoints (the same ``transformers`` classes,
LoRA target modules, causal vs seq2seq handling) at a size that trains in seconds on a CPU. Used by
the tests, the benchmarks and the demo.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    BloomConfig,
    CohereConfig,
    LlamaConfig,
    MT5Config,
    PretrainedConfig,
    PreTrainedTokenizerFast,
)

#: architecture -> (the real checkpoint it stands in for, whether it is seq2seq)
ARCHITECTURES: dict[str, tuple[str, bool]] = {
    "cohere": ("CohereForAI/aya-expanse-8b", False),
    "bloom": ("bigscience/bloom-7b1", False),
    "mt5": ("google/mt5-large", True),
    "llama": ("meta-llama/Llama-3.1-8B", False),
}

SPECIAL_TOKENS = {"pad_token": "<pad>", "eos_token": "</s>", "bos_token": "<s>", "unk_token": "<unk>"}

#: width presets: "tiny" for unit tests, "toy" (a few million parameters) for the demo.
SIZES: dict[str, dict[str, int]] = {
    "tiny": {"hidden": 32, "layers": 2, "heads": 4, "ffn": 64},
    "toy": {"hidden": 256, "layers": 4, "heads": 4, "ffn": 768},
}


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
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {', '.join(ARCHITECTURES)}")
    s = SIZES[size]
    ids = {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.bos_token_id,
    }
    if arch == "llama":
        return LlamaConfig(
            hidden_size=s["hidden"], intermediate_size=s["ffn"], num_hidden_layers=s["layers"],
            num_attention_heads=s["heads"], num_key_value_heads=max(1, s["heads"] // 2),
            max_position_embeddings=512, tie_word_embeddings=True, **ids,
        )
    if arch == "cohere":
        return CohereConfig(
            hidden_size=s["hidden"], intermediate_size=s["ffn"], num_hidden_layers=s["layers"],
            num_attention_heads=s["heads"], num_key_value_heads=max(1, s["heads"] // 2),
            max_position_embeddings=512, logit_scale=1.0, **ids,
        )
    if arch == "bloom":
        return BloomConfig(hidden_size=s["hidden"], n_layer=s["layers"], n_head=s["heads"], **ids)
    return MT5Config(
        d_model=s["hidden"], d_kv=s["hidden"] // s["heads"], d_ff=s["ffn"], num_layers=s["layers"],
        num_decoder_layers=s["layers"], num_heads=s["heads"], relative_attention_num_buckets=8,
        decoder_start_token_id=tokenizer.pad_token_id, tie_word_embeddings=False, **ids,
    )


def build_model(arch: str, tokenizer: PreTrainedTokenizerFast, size: str = "tiny", seed: int = 0):
    """Random weights from :func:`tiny_config`, reproducible for ``seed``."""
    config = tiny_config(arch, tokenizer, size)
    torch.manual_seed(seed)
    auto = AutoModelForSeq2SeqLM if ARCHITECTURES[arch][1] else AutoModelForCausalLM
    model = auto.from_config(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
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
