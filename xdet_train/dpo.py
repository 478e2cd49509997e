"""The ``dpo`` strategy's preference data (beyond the paper, which names DPO as future work).

Li et al. (2024, "Preference Tuning For Toxicity Mitigation Generalizes Across Languages") show
that DPO on one language's preference pairs lowers toxicity in others. Here the pairs come from
the same parallel ParaDetox rows the SFT strategies use: chosen = neutral, rejected = toxic.

Prompt styles (``TrainConfig.dpo_prompt``):

* ``complete-prefix`` (default): mirrors the evaluation prompt. The toxic sentence is cut in half
  (by words; by characters for text without spaces, e.g. zh); the prompt is
  ``Complete the sentence: <first half of the toxic sentence>``, rejected = the toxic sentence's
  own second half, chosen = the neutral paraphrase cut at the same relative position, second half.
  The policy learns to continue a toxic prefix the way the paraphrase does, not the way the
  toxic original does.
* ``rewrite``: the released ``10_DPO_*.py`` scripts' construction, prompt
  ``Rewrite the following text in a neutral way: <toxic sentence>``, chosen = the whole neutral
  sentence, rejected = the whole toxic sentence.

Defaults and their source (see :meth:`xdet_train.config.TrainConfig.resolved`): LoRA r 16 / alpha 32 / dropout 0.05,
learning rate 1e-4, cosine schedule, per-device batch 8 and max grad norm 0.3 come from the
released ``10_DPO_aya_8.py``; beta 0.1 is TRL's default (the released script keeps it). That
script's ``gradient_accumulation_steps=16`` with ``warmup_steps=100`` and one epoch leaves 2-21
optimizer steps that never leave warm-up on 300-2,700 pairs, so we use gradient accumulation 2,
warm-up ratio 0.1 and 3 epochs (our choice, recorded in every manifest).
"""

from __future__ import annotations

import logging
from pathlib import Path

from xdet_tasks.suites.paradetox import Pair
from xdet_tasks.suites.prompts import REWRITE_TEMPLATE, build_prompt, split_at_fraction
from xdet_train.config import DPO_PROMPTS, TrainConfig

log = logging.getLogger(__name__)


def preference_example(pair: Pair, style: str = "complete-prefix") -> dict[str, str]:
    """One TRL preference row (``prompt``, ``chosen``, ``rejected``; plain text, no chat template)."""
    if style == "rewrite":
        return {
            "prompt": REWRITE_TEMPLATE.format(text=pair.toxic),
            "chosen": " " + pair.neutral,
            "rejected": " " + pair.toxic,
        }
    if style != "complete-prefix":
        raise ValueError(f"unknown DPO prompt style {style!r}; expected one of {', '.join(DPO_PROMPTS)}")
    head, toxic_tail = split_at_fraction(pair.toxic, 0.5)
    if not toxic_tail:  # one-unit toxic sentence: nothing to continue, compare whole sentences
        return {
            "prompt": build_prompt("").rstrip(),
            "chosen": " " + pair.neutral,
            "rejected": " " + pair.toxic,
        }
    _, neutral_tail = split_at_fraction(pair.neutral, 0.5)
    if not neutral_tail:
        neutral_tail = " " + pair.neutral
    return {"prompt": build_prompt(head), "chosen": neutral_tail, "rejected": toxic_tail}


def preference_rows(pairs: list[Pair] | tuple[Pair, ...], style: str = "complete-prefix") -> list[dict[str, str]]:
    return [preference_example(p, style) for p in pairs]


def boundary_merges(tokenizer, rows: list[dict[str, str]]) -> int:
    """Rows whose tokenized prompt is not a prefix of the tokenized prompt + chosen or + rejected.

    A token then spans the boundary (mostly in unspaced scripts, where the prompt ends mid-word).
    TRL starts such a completion where the token sequences diverge, so the merged token is trained as
    completion; it warns once per distinct fragment, which xdet replaces by this one count.
    """
    def ids(texts: list[str]) -> list[list[int]]:
        return tokenizer(texts)["input_ids"]

    prompts = ids([r["prompt"] for r in rows])
    chosen = ids([r["prompt"] + r["chosen"] for r in rows])
    rejected = ids([r["prompt"] + r["rejected"] for r in rows])
    return sum(c[: len(p)] != p or r[: len(p)] != p for p, c, r in zip(prompts, chosen, rejected, strict=True))


def train_dpo(base, tokenizer, pairs, cfg: TrainConfig, seed: int, work: Path, quantized: bool, progress: bool):
    from datasets import Dataset
    from transformers import set_seed
    from trl import DPOConfig, DPOTrainer

    from xdet_train.model import lora_config
    from xdet_train.progress import quiet
    from xdet_train.sft import eval_metrics, training_args

    rows = preference_rows(pairs, cfg.dpo_prompt)
    merges = boundary_merges(tokenizer, rows)
    if merges:
        log.info("DPO: in %d of %d pairs the prompt's last token merges with the completion; those are trained "
                 "from where the token sequences diverge (xdet_train.dpo.boundary_merges)", merges, len(rows))
    train_ds = Dataset.from_list(rows)
    eval_ds = Dataset.from_list(rows[: cfg.eval_examples]) if cfg.eval_examples else None
    set_seed(seed)
    lora = lora_config(cfg, seq2seq=False)
    args = training_args(DPOConfig, cfg, work, seed, quantized, progress, beta=cfg.dpo_beta, max_length=cfg.max_length)
    trainer = quiet(DPOTrainer(
        model=base, args=args, train_dataset=train_ds, eval_dataset=eval_ds, processing_class=tokenizer,
        peft_config=lora,
    ), progress)
    before = eval_metrics(trainer, trainer.eval_dataset)
    trainer.train()
    after = eval_metrics(trainer, trainer.eval_dataset)
    return trainer, len(rows), {"before": before, "after": after, "prompt_boundary_merges": merges}
