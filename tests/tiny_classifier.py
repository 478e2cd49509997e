"""Tiny toxicity classifiers built locally, for testing the ``hf:<path>`` backend and the presets.

A two-layer BERT with a byte-level BPE tokenizer trained on the shared train split, fine-tuned for a
few dozen steps with the transformers Trainer on toxic (1) vs neutral (0) train sentences of every
language, then saved with ``id2label = {0: "neutral", 1: "toxic"}``; and a random two-layer XLM-R
classifier saved without a tokenizer, beside a SentencePiece-style tokenizer of its own (the layout
of the TextDetox 2025 scorer). Each is built once per test session and shared between xdist workers
through a file lock. Also: an isolated offline hub cache and a hub snapshot writer for preset tests.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock

STEPS = 40


def isolate_hub(tmp_path: Path, monkeypatch) -> Path:
    """An empty hub cache and an empty xdet cache (no revision locks), offline unless a test says otherwise,
    and no local preset folders; returns the hub cache."""
    from xdet_tasks.scoring.presets import PRESETS, env_dir_var

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("XDET_CACHE_DIR", str(tmp_path / "xdet-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in PRESETS:
        for part in ("model", "tokenizer"):
            monkeypatch.delenv(env_dir_var(name, part), raising=False)
    return tmp_path / "hub"


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Tiny models run faster on one thread, and two xdist workers share two cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def shared_root(tmp_path_factory) -> Path:
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out = root / "xdet-shared" / "classifiers"
    out.mkdir(parents=True, exist_ok=True)
    return out


def build_tiny_classifier(out_dir: Path, data_dir: Path, steps: int = STEPS, seed: int = 0, lr: float = 5e-3) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    from xdet_tasks.suites.paradetox import load_pairs
    from xdet_tasks.suites.records import LANGUAGES
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


def build_tiny_xlmr(out_dir: Path, data_dir: Path, seed: int = 0) -> tuple[Path, Path]:
    """A random two-layer XLM-R classifier in ``out_dir/classifier`` (config and weights only, like a hub
    repository that ships no tokenizer) and, in ``out_dir/tokenizer``, an XLM-R tokenizer of its own: a
    SentencePiece-style Unigram model trained here on the train split, with XLM-R's special tokens.

    The tokenizer's ``model_max_length`` is 128 on purpose, below the 512 tokens the TextDetox
    evaluation passes explicitly, and the model has XLM-R's 514 positions, so texts between 128 and
    512 tokens tell the two limits apart.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification, XLMRobertaTokenizerFast

    from xdet_tasks.suites.paradetox import load_pairs
    from xdet_tasks.suites.records import LANGUAGES

    texts = [t for lang in LANGUAGES for p in load_pairs(lang, "train", data_dir=data_dir) for t in (p.toxic, p.neutral)]
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # XLM-R's ids 0-3, <mask> last
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(texts, trainers.UnigramTrainer(vocab_size=6000, special_tokens=specials, unk_token="<unk>"))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tokenizer = XLMRobertaTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", model_max_length=128)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1, bos_token_id=0,
        eos_token_id=2, num_labels=2, id2label={0: "neutral", 1: "toxic"}, label2id={"neutral": 0, "toxic": 1},
        initializer_range=0.5,  # wide random logits: scores spread over (0, 1) instead of all near 0.5
    )
    torch.manual_seed(seed)
    XLMRobertaForSequenceClassification(config).save_pretrained(out_dir / "classifier")
    tokenizer.save_pretrained(out_dir / "tokenizer")
    return out_dir / "classifier", out_dir / "tokenizer"


def tiny_xlmr_paths(tmp_path_factory, data_dir: Path) -> tuple[Path, Path]:
    """``(classifier folder, tokenizer folder)`` of :func:`build_tiny_xlmr`, built once per session."""
    root = shared_root(tmp_path_factory)
    out = root / "tiny-xlmr"
    with FileLock(str(root / "tiny-xlmr.lock")):
        if not (out / "classifier" / "config.json").is_file():
            tmp = root / "tiny-xlmr.partial"
            shutil.rmtree(tmp, ignore_errors=True)
            build_tiny_xlmr(tmp, data_dir)
            tmp.rename(out)
    return out / "classifier", out / "tokenizer"


def add_hub_commit(hub: Path, repo_id: str, commit: str, source: Path, note: str | None = None) -> Path:
    """Lay out ``source`` as the hub cache's snapshot ``commit`` of ``repo_id`` and point ``main`` at it;
    ``note`` edits the snapshot's config (a different upload)."""
    import json

    repo = hub / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    shutil.copytree(source, snapshot)
    if note:
        name = "config.json" if (snapshot / "config.json").is_file() else "tokenizer_config.json"
        (snapshot / name).write_text(json.dumps({**json.loads((snapshot / name).read_text()), "note": note}))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot
