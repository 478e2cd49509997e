"""LoRA detox adapters: one trainer for every strategy and model family (``xdet train``).

Replaces the authors' per-model scripts with one recipe. SFT runs on ``transformers.Trainer``
(causal and seq2seq alike, labels masked with -100 where no loss is wanted), the ``dpo`` strategy on
TRL's ``DPOTrainer``; there is no hand-written training loop. On a CUDA machine with bitsandbytes
the base model is loaded in 4-bit NF4 (QLoRA, as the released scripts do); on CPU plain LoRA.

The result is a standard PEFT adapter directory plus ``xdet_adapter.json`` (see :func:`read_manifest`)
that loads unchanged with ``lm_eval --model hf --model_args pretrained=<base>,peft=<dir>``. The
directory is built under a temporary name beside ``out_dir`` and renamed into place when complete,
so an interrupted run leaves nothing that looks like an adapter; rerunning an identical request
reuses the finished adapter.

Training formats:

* ``neutral-lm`` -- causal LM loss on each neutral sentence (the paper's text, the aya scripts).
  On a seq2seq model: input ``Complete the sentence: <first half>``, target the second half.
* ``pair`` -- the toxic sentence in, its neutral paraphrase out, loss on the paraphrase only (the
  released Bloom and mT5 scripts). Causal models see the Bloom script's template
  ``Complete the neutral version of this sentence: <toxic>\\nNeutral completion: <neutral>``; seq2seq
  models train ``toxic -> neutral`` as the mT5 script does.

Defaults (``TrainConfig``) are the released code's: LoRA r 16, alpha 32, dropout 0.05, lr 2e-4,
max length 256, per-device batch 12 with gradient accumulation 4 (``11_finetune_all_percentage.py``),
10 epochs for x-ft and 15 for p-ft / m-ft; DPO defaults are documented in :mod:`xdet_train.dpo`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import tempfile
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from xdet_tasks.data import content_hash, describe_source
from xdet_tasks.io import atomic_write_json
from xdet_train.dpo import DPO_PROMPTS, preference_rows, split_at_fraction
from xdet_train.errors import XdetError
from xdet_train.strategies import USAGE, Strategy, TrainingSet, parse_strategy, training_set

log = logging.getLogger(__name__)

MANIFEST_NAME = "xdet_adapter.json"
MANIFEST_SCHEMA = "xdet-adapter/1"
FORMATS: tuple[str, ...] = ("neutral-lm", "pair")
QUANTIZE: tuple[str, ...] = ("auto", "4bit", "none")
PAIR_TEMPLATE = "Complete the neutral version of this sentence: {toxic}\nNeutral completion: "
SEQ2SEQ_LM_TEMPLATE = "Complete the sentence: {text}"

#: LoRA targets per ``config.model_type``. Attention projections as in the released scripts; Bloom
#: adds its dense layers (``3_finetune_bloom_xx_yy.py``); mT5 adapts q and v (``3_finetune_mt5_xx_yy.py``).
_ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")
TARGET_MODULES: dict[str, tuple[str, ...]] = {
    **{t: _ATTN for t in ("llama", "cohere", "cohere2", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "olmo")},
    "bloom": ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
    "mt5": ("q", "v"),
    "t5": ("q", "v"),
    "umt5": ("q", "v"),
}
#: Tried in order on an architecture not listed above (the released scripts' detection).
_FALLBACK_PATTERNS: tuple[tuple[str, ...], ...] = (_ATTN, ("query_key_value",), ("q", "v"), ("c_attn",))

#: Keys of the manifest that must match for an existing adapter to be reused.
IDENTITY_KEYS: tuple[str, ...] = (
    "base_model", "strategy", "strategy_spec", "train_langs", "pct", "seed", "format", "data_hash", "hyperparameters",
)
#: Settings that do not change the adapter's weights, ignored when deciding whether to reuse one.
_NON_IDENTITY_HYPER: tuple[str, ...] = ("logging_steps", "eval_examples", "quantize")


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters; ``None`` means "the released code's default for this strategy"."""

    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    learning_rate: float | None = None  # 2e-4 (SFT), 1e-4 (DPO)
    epochs: float | None = None  # 10 x-ft, 15 p-ft/m-ft, 3 dpo
    max_steps: int | None = None  # overrides epochs (tests, smoke runs)
    batch_size: int | None = None  # 12 (SFT), 8 (DPO)
    grad_accum: int | None = None  # 4 (SFT), 2 (DPO)
    max_length: int = 256
    lr_scheduler: str | None = None  # linear (SFT, Trainer default), cosine (DPO)
    warmup_ratio: float | None = None  # 0.0 (SFT), 0.1 (DPO)
    max_grad_norm: float | None = None  # 1.0 (SFT, Trainer default), 0.3 (DPO)
    format: str | None = None  # neutral-lm for causal models, pair for seq2seq
    target_modules: tuple[str, ...] | None = None  # None: per architecture (TARGET_MODULES)
    quantize: str = "auto"  # auto: 4-bit when CUDA and bitsandbytes are present
    gradient_checkpointing: bool = False
    max_examples: int | None = None  # train on the first N of the (seeded-shuffled) set
    logging_steps: int = 10
    eval_examples: int = 64  # training-set examples whose loss is measured before/after; 0 = skip
    dpo_beta: float = 0.1
    dpo_prompt: str = "complete-prefix"

    def resolved(self, kind: str, *, seq2seq: bool, model_type: str) -> TrainConfig:
        """Fill every ``None`` with its default for ``kind`` and the model's architecture."""
        dpo = kind == "dpo"
        defaults: dict[str, Any] = {
            "learning_rate": 1e-4 if dpo else 2e-4,
            "epochs": {"x-ft": 10, "p-ft": 15, "m-ft": 15, "dpo": 3}[kind],
            "batch_size": 8 if dpo else 12,
            "grad_accum": 2 if dpo else 4,
            "lr_scheduler": "cosine" if dpo else "linear",
            "warmup_ratio": 0.1 if dpo else 0.0,
            "max_grad_norm": 0.3 if dpo else 1.0,
            "format": "pair" if seq2seq or dpo else "neutral-lm",
        }
        changes = {k: v for k, v in defaults.items() if getattr(self, k) is None}
        if self.target_modules is None:
            changes["target_modules"] = TARGET_MODULES.get(model_type)
        else:
            changes["target_modules"] = tuple(self.target_modules)
        return replace(self, **changes)

    def validate(self) -> None:
        if self.format is not None and self.format not in FORMATS:
            raise XdetError(f"unknown training format {self.format!r}; expected one of {', '.join(FORMATS)}")
        if self.quantize not in QUANTIZE:
            raise XdetError(f"unknown quantize mode {self.quantize!r}; expected one of {', '.join(QUANTIZE)}")
        if self.dpo_prompt not in DPO_PROMPTS:
            raise XdetError(f"unknown DPO prompt style {self.dpo_prompt!r}; expected one of {', '.join(DPO_PROMPTS)}")
        for name in ("lora_r", "lora_alpha", "max_length", "logging_steps"):
            if getattr(self, name) < 1:
                raise XdetError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("batch_size", "grad_accum", "max_steps", "max_examples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise XdetError(f"{name} must be at least 1, got {value}")
        if self.epochs is not None and self.epochs <= 0:
            raise XdetError(f"epochs must be positive, got {self.epochs}")


# --------------------------------------------------------------------------------------------- manifest


def read_manifest(adapter_dir: str | Path) -> dict[str, Any]:
    """The ``xdet_adapter.json`` of an adapter directory; :class:`XdetError` naming the path if absent or bad."""
    path = Path(adapter_dir) / MANIFEST_NAME
    if not path.is_file():
        raise XdetError(f"{path}: missing adapter manifest (is {adapter_dir} an xdet adapter directory?)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise XdetError(f"{path}: corrupt adapter manifest ({err})") from None
    if not isinstance(data, dict) or data.get("schema") != MANIFEST_SCHEMA:
        raise XdetError(f"{path}: not an {MANIFEST_SCHEMA} manifest (schema {data.get('schema') if isinstance(data, dict) else None!r})")
    missing = [k for k in IDENTITY_KEYS if k not in data]
    if missing:
        raise XdetError(f"{path}: manifest lacks field(s) {', '.join(missing)}")
    return data


def normalize_model_id(model: str | Path) -> str:
    """Local directories by absolute path, hub ids as given (so one base has one name)."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else str(model)


def check_adapter_base(adapter_dir: str | Path, base_model: str | Path) -> dict[str, Any]:
    """Raise :class:`XdetError` unless the adapter in ``adapter_dir`` was trained on ``base_model``."""
    manifest = read_manifest(adapter_dir)
    wanted = normalize_model_id(base_model)
    if manifest["base_model"] != wanted:
        raise XdetError(
            f"adapter {adapter_dir} was trained on base model {manifest['base_model']!r}, not {wanted!r}"
        )
    return manifest


def _identity(manifest: dict[str, Any]) -> dict[str, Any]:
    out = {k: manifest.get(k) for k in IDENTITY_KEYS}
    if isinstance(out["hyperparameters"], dict):
        out["hyperparameters"] = {
            k: v for k, v in out["hyperparameters"].items() if k not in _NON_IDENTITY_HYPER
        }
    return out


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "peft", "trl", "accelerate", "datasets", "bitsandbytes", "xdet"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


# --------------------------------------------------------------------------------------------- model


def _cuda_4bit_available() -> bool:
    import importlib.util

    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes") is not None


def _use_4bit(mode: str) -> bool:
    if mode == "none":
        return False
    available = _cuda_4bit_available()
    if mode == "4bit" and not available:
        raise XdetError("quantize=4bit needs a CUDA GPU and the bitsandbytes package; use quantize=auto or none")
    return available


def _load_config(model: str, revision: str | None):
    from transformers import AutoConfig

    path = Path(model).expanduser()
    if not path.exists() and (model.startswith(("/", ".", "~")) or model.count("/") > 1):
        raise XdetError(f"model {model!r}: no such directory (and not a hub id like 'org/name')")
    try:
        return AutoConfig.from_pretrained(model, revision=revision)
    except (OSError, ValueError) as err:
        raise XdetError(f"cannot load model config of {model!r}: {err}") from None


def _load_model(model: str, revision: str | None, config, quantized: bool):
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

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
        tokenizer = AutoTokenizer.from_pretrained(model, revision=revision)
        base = auto.from_pretrained(model, **kwargs)
    except (OSError, ValueError) as err:
        raise XdetError(f"cannot load model {model!r}: {err}") from None
    if tokenizer.pad_token is None:  # the released scripts pad with EOS
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    if quantized:
        from peft import prepare_model_for_kbit_training

        base = prepare_model_for_kbit_training(base)
    return base, tokenizer


def _module_suffixes(model) -> set[str]:
    return {name.rsplit(".", 1)[-1] for name, _ in model.named_modules() if name}


def resolve_target_modules(model, wanted: tuple[str, ...] | None, model_id: str) -> tuple[str, ...]:
    """Check ``wanted`` exist in ``model`` (or detect them); :class:`XdetError` listing linear layers if not."""
    import torch

    suffixes = _module_suffixes(model)
    if wanted is None:
        for pattern in _FALLBACK_PATTERNS:
            if all(t in suffixes for t in pattern):
                log.info("%s: detected LoRA target modules %s", model_id, pattern)
                return pattern
    missing = [t for t in (wanted or ()) if t not in suffixes]
    if wanted is None or missing:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        what = f"target module(s) {', '.join(missing)} not found" if wanted else "no known LoRA target modules found"
        raise XdetError(
            f"model {model_id!r} ({model.config.model_type}): {what}; its linear layers are "
            f"{', '.join(linear[:30]) or 'none'} (choose with --target-modules)"
        )
    return tuple(wanted)


# --------------------------------------------------------------------------------------------- data


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
            source, target = SEQ2SEQ_LM_TEMPLATE.format(text=head), tail.strip() or pair.neutral
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


def _subset(tset: TrainingSet, n: int | None, seed: int) -> tuple:
    """The first ``n`` pairs of a seeded shuffle (all pairs, in order, when ``n`` is None)."""
    if n is None or n >= len(tset.pairs):
        return tset.pairs
    import random

    order = list(range(len(tset.pairs)))
    random.Random(seed).shuffle(order)
    return tuple(tset.pairs[i] for i in sorted(order[:n]))


# --------------------------------------------------------------------------------------------- training


def _training_args(cls, cfg: TrainConfig, out: Path, seed: int, quantized: bool, progress: bool, **extra):
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


def _eval_metrics(trainer, dataset) -> dict[str, float] | None:
    if dataset is None:
        return None
    metrics = trainer.evaluate(dataset)
    skip = ("runtime", "per_second", "preparation_time")
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not any(s in k for s in skip)}


def _train_sft(base, tokenizer, pairs, cfg: TrainConfig, seed: int, work: Path, quantized: bool, progress: bool):
    from datasets import Dataset
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments, set_seed

    seq2seq = bool(base.config.is_encoder_decoder)
    rows = [sft_example(tokenizer, p, cfg.format, seq2seq=seq2seq, max_length=cfg.max_length) for p in pairs]
    train_ds = Dataset.from_list(rows)
    eval_ds = Dataset.from_list(rows[: cfg.eval_examples]) if cfg.eval_examples else None
    set_seed(seed)  # LoRA A is initialised randomly
    lora = LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, bias="none",
        target_modules=list(cfg.target_modules),
        task_type=TaskType.SEQ_2_SEQ_LM if seq2seq else TaskType.CAUSAL_LM,
    )
    model = get_peft_model(base, lora)
    collator = DataCollatorForSeq2Seq(tokenizer, model=base if seq2seq else None, label_pad_token_id=-100)
    trainer = Trainer(
        model=model, args=_training_args(TrainingArguments, cfg, work, seed, quantized, progress),
        train_dataset=train_ds, data_collator=collator, processing_class=tokenizer,
    )
    before = _eval_metrics(trainer, eval_ds)
    trainer.train()
    after = _eval_metrics(trainer, eval_ds)
    return trainer, len(rows), {"before": before, "after": after}


def _train_dpo(base, tokenizer, pairs, cfg: TrainConfig, seed: int, work: Path, quantized: bool, progress: bool):
    from datasets import Dataset
    from peft import LoraConfig, TaskType
    from transformers import set_seed
    from trl import DPOConfig, DPOTrainer

    rows = preference_rows(pairs, cfg.dpo_prompt)
    train_ds = Dataset.from_list(rows)
    eval_ds = Dataset.from_list(rows[: cfg.eval_examples]) if cfg.eval_examples else None
    set_seed(seed)
    lora = LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, bias="none",
        target_modules=list(cfg.target_modules), task_type=TaskType.CAUSAL_LM,
    )
    args = _training_args(DPOConfig, cfg, work, seed, quantized, progress, beta=cfg.dpo_beta, max_length=cfg.max_length)
    trainer = DPOTrainer(
        model=base, args=args, train_dataset=train_ds, eval_dataset=eval_ds, processing_class=tokenizer,
        peft_config=lora,
    )
    before = _eval_metrics(trainer, trainer.eval_dataset) if eval_ds is not None else None
    trainer.train()
    after = _eval_metrics(trainer, trainer.eval_dataset) if eval_ds is not None else None
    return trainer, len(rows), {"before": before, "after": after}


def _prepare(model: str, strategy: Strategy, cfg: TrainConfig, seed: int, data_dir, revision):
    """Everything the identity of the adapter depends on, computed without loading weights."""
    cfg.validate()
    model_config = _load_config(model, revision)
    seq2seq = bool(model_config.is_encoder_decoder)
    if strategy.kind == "dpo" and seq2seq:
        raise XdetError(
            f"strategy {strategy.name!r}: DPO needs a causal LM; TRL's DPOTrainer does not train "
            f"encoder-decoder models such as {model!r}"
        )
    if strategy.kind == "dpo" and cfg.format == "neutral-lm":
        raise XdetError("strategy 'dpo' trains on preference pairs; format neutral-lm does not apply")
    resolved = cfg.resolved(strategy.kind, seq2seq=seq2seq, model_type=model_config.model_type)
    quantized = _use_4bit(cfg.quantize)
    tset = training_set(strategy, seed=seed, data_dir=data_dir)
    pairs = _subset(tset, cfg.max_examples, seed)
    hyper = asdict(resolved)
    hyper["target_modules"] = list(resolved.target_modules) if resolved.target_modules else None
    hyper["quantization"] = "4bit-nf4" if quantized else "none"
    identity = {
        "base_model": normalize_model_id(model),
        "strategy": strategy.kind,
        "strategy_spec": strategy.name,
        "train_langs": list(strategy.langs),
        "pct": strategy.pct,
        "seed": seed,
        "format": resolved.format,
        "data_hash": content_hash(pairs),
        "hyperparameters": hyper,
    }
    return model_config, resolved, quantized, pairs, identity


def _existing(out: Path, identity: dict[str, Any]) -> bool:
    """True if ``out`` already holds this adapter; raise if it holds anything else."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise XdetError(f"output path {out} exists and is not a directory")
    if not any(out.iterdir()):
        return False
    if not (out / MANIFEST_NAME).is_file():
        raise XdetError(f"output directory {out} is not empty and holds no {MANIFEST_NAME}; refusing to overwrite it")
    found, identity = _identity(read_manifest(out)), _identity(identity)
    if found != identity:
        diff = sorted(k for k in IDENTITY_KEYS if found.get(k) != identity.get(k))
        raise XdetError(
            f"output directory {out} already holds a different adapter (differs in {', '.join(diff)}); "
            "choose another --out or remove it"
        )
    return True


def train_adapter(
    model: str,
    strategy: str,
    out_dir: str | Path,
    config: TrainConfig | None = None,
    *,
    data_dir: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
    langs: list[str] | tuple[str, ...] | None = None,
    revision: str | None = None,
) -> Path:
    """Train (or reuse) the LoRA adapter of ``strategy`` on ``model``; return the adapter directory."""
    config = config or TrainConfig()
    parsed = parse_strategy(strategy, langs)
    if not parsed.trains:
        raise XdetError(f"strategy 'zs' trains nothing: evaluate the base model {model!r} directly")
    out = Path(out_dir).expanduser().resolve()
    model_config, cfg, quantized, pairs, identity = _prepare(model, parsed, config, seed, data_dir, revision)
    if _existing(out, identity):
        log.info("reusing the identical adapter in %s", out)
        return out
    if not progress:
        import datasets

        datasets.disable_progress_bars()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        base, tokenizer = _load_model(model, revision, model_config, quantized)
        cfg = replace(cfg, target_modules=resolve_target_modules(base, cfg.target_modules, model))
        identity["hyperparameters"]["target_modules"] = list(cfg.target_modules)
        if _existing(out, identity):  # the per-architecture default was only now detected
            shutil.rmtree(tmp, ignore_errors=True)
            return out
        work = tmp / "_trainer"
        runner = _train_dpo if parsed.kind == "dpo" else _train_sft
        trainer, n_examples, evals = runner(base, tokenizer, pairs, cfg, seed, work, quantized, progress)
        trainer.model.save_pretrained(str(tmp))
        shutil.rmtree(work, ignore_errors=True)
        history = trainer.state.log_history
        manifest = {
            "schema": MANIFEST_SCHEMA,
            **identity,
            "base_model_revision": revision or getattr(model_config, "_commit_hash", None),
            "data_source": describe_source(data_dir),
            "n_train_examples": n_examples,
            "per_language": _count_langs(pairs),
            "train_rows": _rows(pairs),
            "loss_curve": [{"step": int(h["step"]), "loss": float(h["loss"])} for h in history if "loss" in h],
            "train_eval": evals,
            "train_runtime_s": next((h["train_runtime"] for h in history if "train_runtime" in h), None),
            "global_steps": trainer.state.global_step,
            "library_versions": library_versions(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        atomic_write_json(tmp / MANIFEST_NAME, manifest)
        del trainer, base  # free the base model before the next adapter of a sweep loads its own
        _free_memory()
        if out.exists():
            if _existing(out, identity):  # a concurrent identical run finished first
                shutil.rmtree(tmp, ignore_errors=True)
                return out
            out.rmdir()  # empty directory
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("adapter written to %s", out)
    return out


def _free_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _rows(pairs) -> dict[str, list[int]]:
    """Which train-split rows of each language the adapter saw (provenance; tests recompute losses)."""
    rows: dict[str, list[int]] = {}
    for p in pairs:
        rows.setdefault(p.lang, []).append(p.index)
    return rows


def _count_langs(pairs) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in pairs:
        counts[p.lang] = counts.get(p.lang, 0) + 1
    return counts


# --------------------------------------------------------------------------------------------- CLI


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train a LoRA detox adapter for one strategy",
        description=f"Train a LoRA adapter (PEFT format + {MANIFEST_NAME}). Strategies: {USAGE}.",
    )
    p.add_argument("--model", required=True, help="base model: hub id or local directory")
    p.add_argument("--strategy", required=True, help=USAGE)
    p.add_argument("--out", required=True, help="adapter directory to create (reused if identical)")
    p.add_argument("--langs", type=_csv, help="comma-separated language pool of p-ft/m-ft/dpo (default: all nine)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", help="released split files (default: XDET_DATA_DIR, else the hub)")
    p.add_argument("--revision", help="base model revision")
    p.add_argument("--format", choices=FORMATS)
    p.add_argument("--epochs", type=float)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--grad-accum", type=int)
    p.add_argument("--lr", type=float, dest="learning_rate")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=32)
    p.add_argument("--lora-dropout", type=float, default=0.05)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--target-modules", type=_csv, help="comma-separated LoRA target module names")
    p.add_argument("--quantize", choices=QUANTIZE, default="auto")
    p.add_argument("--max-examples", type=int, help="train on a seeded subset of this many examples")
    p.add_argument("--logging-steps", type=int, default=10)
    p.add_argument("--eval-examples", type=int, default=64, help="training examples evaluated before/after (0: skip)")
    p.add_argument("--dpo-beta", type=float, default=0.1)
    p.add_argument("--dpo-prompt", choices=DPO_PROMPTS, default="complete-prefix")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    names = {f.name for f in fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in vars(args).items() if k in names and v is not None})
    out = train_adapter(
        args.model, args.strategy, args.out, config, data_dir=args.data_dir, seed=args.seed,
        progress=not args.no_progress, langs=args.langs, revision=args.revision,
    )
    manifest = read_manifest(out)
    curve = manifest.get("loss_curve") or []
    loss = f", final logged loss {curve[-1]['loss']:.4f}" if curve else ""
    print(f"adapter: {out} ({manifest['strategy_spec']}, {manifest['n_train_examples']} examples{loss})")
    return 0
