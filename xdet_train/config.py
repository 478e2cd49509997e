"""Training hyper-parameters as one dataclass: defaults written once, help text in field metadata.

``xdet train`` and ``xdet sweep`` generate their training flags from these fields (as TRL and PEFT
generate theirs from their config dataclasses), so a new hyper-parameter is one field here.

Defaults are the released code's: LoRA r 16, alpha 32, dropout 0.05, lr 2e-4, max length 256,
per-device batch 12 with gradient accumulation 4 (``11_finetune_all_percentage.py``), and the
strategy's epochs (:data:`xdet_train.strategies.STRATEGIES`); DPO defaults are explained in
:mod:`xdet_train.dpo`. ``None`` means "the default for this strategy and architecture", filled in by
:meth:`TrainConfig.resolved` (and, for the LoRA targets, :func:`xdet_train.model.resolve_target_modules`)
and recorded resolved in every adapter manifest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from xdet_tasks.errors import XdetError
from xdet_train.strategies import STRATEGIES

FORMATS: tuple[str, ...] = ("neutral-lm", "pair")
QUANTIZE: tuple[str, ...] = ("auto", "4bit", "none")
DPO_PROMPTS: tuple[str, ...] = ("complete-prefix", "rewrite")

def _opt(help_text: str, default: Any = None, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help_text, **extra})


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters; ``None`` means "the released code's default for this strategy"."""

    lora_r: int = _opt("LoRA rank", 16)
    lora_alpha: int = _opt("LoRA alpha (scaling numerator)", 32)
    lora_dropout: float = _opt("LoRA dropout", 0.05)
    learning_rate: float | None = _opt("learning rate (default 2e-4 SFT, 1e-4 DPO)", aliases=("--lr",))
    epochs: float | None = _opt("epochs (default: the strategy's: 10 x-ft, 15 p-ft/m-ft, 3 dpo)")
    max_steps: int | None = _opt("optimizer steps; overrides --epochs (smoke runs)")
    batch_size: int | None = _opt("per-device training batch (default 12 SFT, 8 DPO)")
    grad_accum: int | None = _opt("gradient accumulation steps (default 4 SFT, 2 DPO)")
    max_length: int = _opt("longest training example in tokens", 256)
    lr_scheduler: str | None = _opt("learning-rate schedule (default linear SFT, cosine DPO)")
    warmup_ratio: float | None = _opt("share of steps spent warming up (default 0 SFT, 0.1 DPO)")
    max_grad_norm: float | None = _opt("gradient clipping norm (default 1.0 SFT, 0.3 DPO)")
    format: str | None = _opt("training format (default neutral-lm causal, pair seq2seq and DPO)", choices=FORMATS)
    target_modules: tuple[str, ...] | None = _opt(
        "comma-separated LoRA target modules (default: PEFT's for the architecture; for fused experts the attention "
        "projections; else every linear layer PEFT accepts; README 'Architectures')")
    quantize: str = _opt("auto: 4-bit NF4 QLoRA when CUDA and bitsandbytes are present", "auto", choices=QUANTIZE)
    gradient_checkpointing: bool = _opt("recompute activations to save memory", False)
    max_examples: int | None = _opt("train on a seeded subset of this many examples")
    logging_steps: int = _opt("log the training loss every N steps", 10)
    eval_examples: int = _opt("training examples whose loss is measured before/after (0: skip)", 64)
    dpo_beta: float = _opt("DPO beta (TRL's default)", 0.1)
    dpo_prompt: str = _opt("DPO prompt style (see xdet_train.dpo)", "complete-prefix", choices=DPO_PROMPTS)

    def resolved(self, kind: str, *, seq2seq: bool) -> TrainConfig:
        """Fill every ``None`` with its default for strategy ``kind`` and the model's kind (LoRA targets are
        resolved on the model itself: :func:`xdet_train.model.resolve_target_modules`)."""
        record = STRATEGIES[kind]
        dpo = record.trainer == "dpo"
        defaults: dict[str, Any] = {
            "learning_rate": 1e-4 if dpo else 2e-4,
            "epochs": record.default_epochs,
            "batch_size": 8 if dpo else 12,
            "grad_accum": 2 if dpo else 4,
            "lr_scheduler": "cosine" if dpo else "linear",
            "warmup_ratio": 0.1 if dpo else 0.0,
            "max_grad_norm": 0.3 if dpo else 1.0,
            "format": "pair" if seq2seq or dpo else "neutral-lm",
        }
        changes = {k: v for k, v in defaults.items() if getattr(self, k) is None}
        if self.target_modules is not None:
            changes["target_modules"] = tuple(self.target_modules)
        return replace(self, **changes)

    def validate(self) -> None:
        for name, what, choices in (
            ("format", "training format", FORMATS),
            ("quantize", "quantize mode", QUANTIZE),
            ("dpo_prompt", "DPO prompt style", DPO_PROMPTS),
        ):
            value = getattr(self, name)
            if value is not None and value not in choices:
                raise XdetError(f"unknown {what} {value!r}; expected one of {', '.join(choices)}")
        for name in ("lora_r", "lora_alpha", "max_length", "logging_steps"):
            if getattr(self, name) < 1:
                raise XdetError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("batch_size", "grad_accum", "max_steps", "max_examples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise XdetError(f"{name} must be at least 1, got {value}")
        if self.epochs is not None and self.epochs <= 0:
            raise XdetError(f"epochs must be positive, got {self.epochs}")
        ranges = (  # (field, lowest, highest, lowest allowed?, highest allowed?)
            ("learning_rate", 0.0, math.inf, True, False),  # 0 keeps the adapter a no-op: a control
            ("lora_dropout", 0.0, 1.0, True, False),
            ("warmup_ratio", 0.0, 1.0, True, True),
            ("max_grad_norm", 0.0, math.inf, False, False),
            ("dpo_beta", 0.0, math.inf, False, False),  # beta <= 0 would reward the toxic side
            ("eval_examples", 0, math.inf, True, False),
        )
        for name, low, high, low_ok, high_ok in ranges:
            value = getattr(self, name)
            if value is None:
                continue
            if not (low <= value if low_ok else low < value) or not (value <= high if high_ok else value < high):
                interval = f"{'[' if low_ok else '('}{low}, {high}{']' if high_ok else ')'}"
                raise XdetError(f"--{name.replace('_', '-')} must lie in {interval}, got {value}")
        if self.lr_scheduler is not None:
            from transformers import SchedulerType

            known = [s.value for s in SchedulerType]
            if self.lr_scheduler not in known:
                raise XdetError(f"--lr-scheduler {self.lr_scheduler!r}: expected one of {', '.join(known)}")
