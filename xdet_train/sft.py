"""Supervised LoRA fine-tuning on ``transformers.Trainer``, causal and seq2seq alike.

Training formats:

* ``neutral-lm`` -- causal LM loss on each neutral sentence (the paper's text, the aya scripts).
  On a seq2seq model: input ``Complete the sentence: <first half>``, target the second half.
* ``pair`` -- the toxic sentence in, its neutral paraphrase out, loss on the paraphrase only (the
  released Bloom and mT5 scripts). Causal models see the Bloom script's template
  (:data:`xdet_tasks.suites.prompts.PAIR_TEMPLATE`); seq2seq models train ``toxic -> neutral`` as the mT5
  script does.

Labels are -100 where no loss is taken; there is no hand-written training loop.
"""

from __future__ import annotations

from pathlib import Path

from xdet_tasks.suites.prompts import PAIR_TEMPLATE, build_prompt, split_at_fraction
from xdet_train.config import TrainConfig
from xdet_train.model import lora_config
from xdet_train.progress import quiet


def _ids(tokenizer, text: str, *, special: bool) -> list[int]:
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])


def _with_eos(ids: list[int], eos: int | None) -> list[int]:
    return ids + [eos] if eos is not None and (not ids or ids[-1] != eos) else ids


def sft_example(tokenizer, pair, fmt: str, *, seq2seq: bool, max_length: int) -> dict[str, list[int]]:
    """Token ids and labels of one SFT example (labels -100 where no loss is taken)."""
    eos = tokenizer.eos_token_id
    if seq2seq:
        if fmt == "pair":
            source, target = pair.toxic, pair.neutral
        else:
            head, tail = split_at_fraction(pair.neutral, 0.5)
            source, target = build_prompt(head), tail.strip() or pair.neutral
        input_ids = _ids(tokenizer, source, special=True)[:max_length]
        labels = _with_eos(_ids(tokenizer, target, special=False), eos)[:max_length]
        return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}
    if fmt == "neutral-lm":
        ids = _with_eos(_ids(tokenizer, pair.neutral, special=True), eos)[:max_length]
        return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": list(ids)}
    prompt = _ids(tokenizer, PAIR_TEMPLATE.format(toxic=pair.toxic), special=True)
    target = _with_eos(_ids(tokenizer, pair.neutral, special=False), eos)
    ids = (prompt + target)[:max_length]
    labels = ([-100] * len(prompt) + target)[:max_length]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def training_args(cls, cfg: TrainConfig, out: Path, seed: int, quantized: bool, progress: bool, **extra):
    import torch

    cuda = torch.cuda.is_available()
    return cls(
        output_dir=str(out),
        num_train_epochs=float(cfg.epochs),
        max_steps=cfg.max_steps or -1,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=float(cfg.warmup_ratio),  # a float in [0, 1) is a ratio of the total steps
        max_grad_norm=cfg.max_grad_norm,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        seed=seed,
        data_seed=seed,
        disable_tqdm=not progress,
        activation_checkpointing=cfg.gradient_checkpointing,
        optim="paged_adamw_32bit" if quantized else "adamw_torch",
        bf16=cuda and torch.cuda.is_bf16_supported(),
        use_cpu=not cuda,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        **extra,
    )


def eval_metrics(trainer, dataset) -> dict[str, float] | None:
    if dataset is None:
        return None
    metrics = trainer.evaluate(dataset)
    skip = ("runtime", "per_second", "preparation_time")
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not any(s in k for s in skip)}


def train_sft(base, tokenizer, pairs, cfg: TrainConfig, seed: int, work: Path, quantized: bool, progress: bool):
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments, set_seed

    seq2seq = bool(base.config.is_encoder_decoder)
    rows = [sft_example(tokenizer, p, cfg.format, seq2seq=seq2seq, max_length=cfg.max_length) for p in pairs]
    train_ds = Dataset.from_list(rows)
    eval_ds = Dataset.from_list(rows[: cfg.eval_examples]) if cfg.eval_examples else None
    set_seed(seed)  # LoRA A is initialised randomly
    model = get_peft_model(base, lora_config(cfg, seq2seq=seq2seq))
    collator = DataCollatorForSeq2Seq(tokenizer, model=base if seq2seq else None, label_pad_token_id=-100)
    trainer = quiet(Trainer(
        model=model, args=training_args(TrainingArguments, cfg, work, seed, quantized, progress),
        train_dataset=train_ds, data_collator=collator, processing_class=tokenizer,
    ), progress)
    before = eval_metrics(trainer, eval_ds)
    trainer.train()
    after = eval_metrics(trainer, eval_ds)
    return trainer, len(rows), {"before": before, "after": after}
