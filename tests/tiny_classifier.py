"""A tiny toxicity classifier built and fine-tuned locally, for testing the ``hf:<path>`` backend.

A two-layer BERT with a byte-level BPE tokenizer trained on the shared train split, fine-tuned for a
few dozen steps with the transformers Trainer on toxic (1) vs neutral (0) train sentences of every
language, then saved with ``id2label = {0: "neutral", 1: "toxic"}``. Built once per test session
and shared between xdist workers through a file lock.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from filelock import FileLock

STEPS = 40


def shared_root(tmp_path_factory) -> Path:
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out = root / "xdet-shared" / "classifiers"
    out.mkdir(parents=True, exist_ok=True)
    return out


def build_tiny_classifier(out_dir: Path, data_dir: Path, steps: int = STEPS, seed: int = 0, lr: float = 5e-3) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    from xdet_tasks.data import load_pairs
    from xdet_tasks.languages import LANGUAGES
    from xdet_train.tiny import build_tokenizer

    pairs = [p for lang in LANGUAGES for p in load_pairs(lang, "train", data_dir=data_dir)]
    texts = [p.toxic for p in pairs] + [p.neutral for p in pairs]
    labels = [1] * len(pairs) + [0] * len(pairs)
    tokenizer = build_tokenizer(texts, vocab_size=1024)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
        num_labels=2, id2label={0: "neutral", 1: "toxic"}, label2id={"neutral": 0, "toxic": 1},
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config)
    enc = tokenizer(texts, truncation=True, max_length=48)

    class Rows(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(labels)

        def __getitem__(self, i: int) -> dict:
            return {"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                    "labels": labels[i]}

    from transformers import DataCollatorWithPadding

    args = TrainingArguments(
        output_dir=str(out_dir) + ".trainer", max_steps=steps, per_device_train_batch_size=32,
        learning_rate=lr, warmup_steps=4, logging_steps=1000, save_strategy="no", report_to=[],
        seed=seed, use_cpu=True, disable_tqdm=True, dataloader_num_workers=0,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 2-layer, 32-wide model: extra threads only contend
    try:
        Trainer(model=model, args=args, train_dataset=Rows(),
                data_collator=DataCollatorWithPadding(tokenizer)).train()
    finally:
        torch.set_num_threads(threads)
    shutil.rmtree(str(out_dir) + ".trainer", ignore_errors=True)
    tokenizer.model_max_length = 128
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def tiny_classifier_path(tmp_path_factory, data_dir: Path) -> Path:
    root = shared_root(tmp_path_factory)
    out = root / "tiny-toxic-bert"
    with FileLock(str(root / "tiny-toxic-bert.lock")):
        if not (out / "config.json").is_file():
            tmp = root / "tiny-toxic-bert.partial"
            shutil.rmtree(tmp, ignore_errors=True)
            build_tiny_classifier(tmp, data_dir)
            tmp.rename(out)
    return out
