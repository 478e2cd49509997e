"""The demo's toy model: a small multilingual Llama-style LM pre-trained briefly on the train split.

Built with a locally trained tokenizer (:mod:`xdet_train.tiny`) and pre-trained with
``transformers.Trainer`` on a shuffled mix of the toxic and neutral train sentences of every
language, so it has something to detoxify. Cached under ``XDET_CACHE_DIR`` keyed by the recipe and
the data's content hash; concurrent builders (test workers) build it once under a file lock.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock

from xdet.console import verbose
from xdet_tasks.io import atomic_write_json, cache_dir, remove_partials, staged_dir
from xdet_tasks.suites.paradetox import content_hash, load_pairs
from xdet_tasks.suites.records import LANGUAGES

TOY_NAME = "xdet-toy-lm"
RECIPE_FILE = "xdet_toy.json"


@dataclass(frozen=True)
class PretrainRecipe:
    """The toy model's recipe; any change gives a new cache entry."""

    arch: str = "llama"
    size: str = "toy"  # an xdet_train.tiny.SIZES preset, narrowed below to fit a 2-core CPU budget
    hidden: int = 192
    layers: int = 4
    ffn: int = 512
    vocab_size: int = 2048
    steps: int = 100
    batch_size: int = 32
    max_length: int = 64
    learning_rate: float = 3e-3
    warmup_steps: int = 10
    seed: int = 0
    version: int = 1


def _train_texts(data_dir: str | Path | None) -> tuple[list[str], str]:
    pairs = [p for lang in LANGUAGES for p in load_pairs(lang, "train", data_dir=data_dir)]
    return [t for p in pairs for t in (p.toxic, p.neutral)], content_hash(pairs)


def toy_model(data_dir: str | Path | None = None, recipe: PretrainRecipe = PretrainRecipe(),
              rebuild: bool = False) -> Path:
    """Directory of the pre-trained toy LM for ``recipe`` and the current data, built on first use."""
    texts, data_hash = _train_texts(data_dir)
    key = hashlib.sha256(json.dumps({**asdict(recipe), "data": data_hash}, sort_keys=True).encode()).hexdigest()[:16]
    home = cache_dir() / "toy-lm" / key
    path = home / TOY_NAME
    if (path / RECIPE_FILE).is_file() and not rebuild:
        return path
    home.mkdir(parents=True, exist_ok=True)
    with FileLock(str(home / ".build.lock")):  # concurrent demos (test workers) build it once
        if (path / RECIPE_FILE).is_file() and not rebuild:
            return path
        remove_partials(home, TOY_NAME)  # a build killed earlier (we hold the lock)
        shutil.rmtree(path, ignore_errors=True)  # a rebuild replaces the old model
        with staged_dir(path) as tmp:
            start = time.perf_counter()
            curve = _pretrain(texts, recipe, tmp)
            atomic_write_json(tmp / RECIPE_FILE, {
                "recipe": asdict(recipe), "train_data_hash": data_hash, "n_sentences": len(texts),
                "loss_curve": curve, "seconds": round(time.perf_counter() - start, 1),
            })
        return path


def _pretrain(texts: list[str], recipe: PretrainRecipe, out: Path) -> list[dict[str, float]]:
    """Full-parameter causal-LM training with ``transformers.Trainer`` on the shuffled sentences."""
    import transformers
    from datasets import Dataset
    from transformers import (
        AutoModelForCausalLM,
        DataCollatorForLanguageModeling,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from xdet_train.progress import quiet
    from xdet_train.tiny import build_tokenizer, tiny_config

    tokenizer = build_tokenizer(texts, vocab_size=recipe.vocab_size)
    config = tiny_config(recipe.arch, tokenizer, recipe.size)
    config.hidden_size, config.num_hidden_layers, config.intermediate_size = recipe.hidden, recipe.layers, recipe.ffn
    config.head_dim = recipe.hidden // config.num_attention_heads
    set_seed(recipe.seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    order = list(range(len(texts)))
    random.Random(recipe.seed).shuffle(order)
    eos = tokenizer.eos_token_id
    rows = [{"input_ids": (tokenizer(texts[i])["input_ids"] + [eos])[: recipe.max_length]} for i in order]
    set_seed(recipe.seed)
    args = TrainingArguments(
        output_dir=str(out / "_trainer"), max_steps=recipe.steps, per_device_train_batch_size=recipe.batch_size,
        learning_rate=recipe.learning_rate, warmup_steps=recipe.warmup_steps, lr_scheduler_type="cosine",
        weight_decay=0.0, logging_steps=20, save_strategy="no", report_to="none", seed=recipe.seed,
        use_cpu=True, dataloader_num_workers=0, disable_tqdm=False, train_sampling_strategy="group_by_length",
    )
    trainer = quiet(Trainer(
        model=model, args=args, train_dataset=Dataset.from_list(rows),
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
    ), progress=True)
    trainer.train()
    shutil.rmtree(out / "_trainer", ignore_errors=True)
    if not verbose():  # no bar for writing a 2 M-parameter model
        transformers.utils.logging.disable_progress_bar()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return [{"step": int(h["step"]), "loss": float(h["loss"])} for h in trainer.state.log_history if "loss" in h]
