"""Tiny random chat models for the ``guard:`` and ``judge:`` tests, built once per session (shared through a lock).

Each is a model of :mod:`xdet_train.tiny` whose tokenizer carries one of the transcribed chat templates
of :mod:`xdet_train.tiny_chat`; ``no-template`` has none. Also a tokenizer that cannot tell two
Qwen3Guard verdicts apart (both unknown words), beside weights that cannot be read.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from filelock import FileLock

#: name -> (architecture, chat template)
MODELS = {"qwen3guard": ("qwen3", "qwen3guard"), "llama-guard-3": ("llama", "llama-guard-3"),
          "qwen3-chat": ("qwen3", "qwen3"), "no-template": ("qwen3", None)}


def _root(tmp_path_factory) -> Path:
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "xdet-shared" / "chat-models"
    root.mkdir(parents=True, exist_ok=True)
    return root


def chat_model_path(tmp_path_factory, data_dir: Path, name: str) -> Path:
    from training_data import training_texts

    from xdet_train.tiny_chat import save_tiny_chat_model

    root = _root(tmp_path_factory)
    out = root / name
    with FileLock(str(root / f"{name}.lock")):
        if not (out / "config.json").is_file():
            tmp = root / f"{name}.partial"
            shutil.rmtree(tmp, ignore_errors=True)
            arch, template = MODELS[name]
            save_tiny_chat_model(arch, tmp, training_texts(data_dir), template)
            tmp.rename(out)
    return out


def unreadable_weights(folder: Path) -> None:
    """A config and a ``model.safetensors`` that is not one: loading the weights would fail loudly."""
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"]}))
    (folder / "model.safetensors").write_bytes(b"these are not weights")


def word_level_guard(folder: Path) -> Path:
    """A word-level tokenizer with the Qwen3Guard template whose vocabulary lacks 'Unsafe' and 'Controversial':
    both verdicts encode as the unknown token. Weights unreadable."""
    from jinja2 import Environment
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from xdet_train.tiny_chat import CHAT_SPECIAL_TOKENS, CHAT_TEMPLATES

    template = CHAT_TEMPLATES["qwen3guard"]
    rendered = Environment().from_string(template).render(messages=[{"role": "user", "content": "xdet probe"}])
    words = {w for w, _ in pre_tokenizers.Whitespace().pre_tokenize_str(rendered)} - {"Unsafe", "Controversial"}
    vocab = {w: i for i, w in enumerate(["[UNK]", "[PAD]", *sorted(words)])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]")
    fast.add_special_tokens({"additional_special_tokens": CHAT_SPECIAL_TOKENS})
    fast.chat_template = template
    folder.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(folder)
    unreadable_weights(folder)
    return folder
