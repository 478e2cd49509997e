"""LoRA detox adapters: one trainer for every strategy and model family (``xdet train``).

Replaces the authors' per-model scripts with one recipe: the strategy's record names its trainer
(:mod:`xdet_train.sft` on ``transformers.Trainer``, or :mod:`xdet_train.dpo` on TRL's
``DPOTrainer``), :mod:`xdet_train.model` loads the base (4-bit on CUDA with bitsandbytes), and the
result is a standard PEFT adapter directory plus ``xdet_adapter.json`` (:mod:`xdet_train.manifest`)
that loads unchanged with ``lm_eval --model hf --model_args pretrained=<base>,peft=<dir>``. The
directory is built under a temporary name beside ``out_dir`` and renamed into place when complete,
so an interrupted run leaves nothing that looks like an adapter; rerunning an identical request
reuses the finished adapter.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

from xdet_tasks.errors import XdetError
from xdet_tasks.io import atomic_write_json, staged_dir
from xdet_tasks.suites.paradetox import content_hash, describe_source
from xdet_train.config import TrainConfig
from xdet_train.dpo import train_dpo
from xdet_train.manifest import (
    MANIFEST_NAME,
    MANIFEST_SCHEMA,
    holds_adapter,
    library_versions,
    normalize_model_id,
)
from xdet_train.model import load_model, load_model_config, load_tokenizer, resolve_target_modules, use_4bit
from xdet_train.sft import train_sft
from xdet_train.strategies import Strategy, TrainingSet, parse_strategy, training_set

log = logging.getLogger(__name__)


def _subset(tset: TrainingSet, n: int | None, seed: int) -> TrainingSet:
    """The first ``n`` pairs of a seeded shuffle (all pairs, in order, when ``n`` is None)."""
    if n is None or n >= len(tset.pairs):
        return tset
    import random

    order = list(range(len(tset.pairs)))
    random.Random(seed).shuffle(order)
    pairs = tuple(tset.pairs[i] for i in sorted(order[:n]))
    return replace(tset, pairs=pairs, data_hash=content_hash(pairs))


def _prepare(model: str, strategy: Strategy, cfg: TrainConfig, seed: int, data_dir, revision):
    """Everything the identity of the adapter depends on, resolved without loading weights: the config,
    the tokenizer, the LoRA targets (on the model's skeleton) and the training data."""
    cfg.validate()
    model_config = load_model_config(model, revision)
    seq2seq = bool(model_config.is_encoder_decoder)
    if strategy.record.trainer == "dpo" and seq2seq:
        raise XdetError(
            f"strategy {strategy.name!r}: DPO needs a causal LM; TRL's DPOTrainer does not train "
            f"encoder-decoder models such as {model!r}"
        )
    if strategy.record.trainer == "dpo" and cfg.format == "neutral-lm":
        raise XdetError("strategy 'dpo' trains on preference pairs; format neutral-lm does not apply")
    resolved = cfg.resolved(strategy.kind, seq2seq=seq2seq)
    targets, targets_from = resolve_target_modules(model_config, resolved, model)
    resolved = replace(resolved, target_modules=targets)
    tokenizer = load_tokenizer(model, revision)
    quantized = use_4bit(cfg.quantize)
    tset = _subset(training_set(strategy, seed=seed, data_dir=data_dir), cfg.max_examples, seed)
    hyper = asdict(resolved)
    hyper["target_modules"] = list(targets)
    hyper["quantization"] = "4bit-nf4" if quantized else "none"
    identity = {
        "base_model": normalize_model_id(model),
        "strategy": strategy.kind,
        "strategy_spec": strategy.name,
        "train_langs": list(strategy.langs),
        "pct": strategy.pct,
        "seed": seed,
        "format": resolved.format,
        "data_hash": tset.data_hash,
        "hyperparameters": hyper,
    }
    return model_config, tokenizer, resolved, quantized, tset, identity, targets_from


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
    model_config, tokenizer, cfg, quantized, tset, identity, targets_from = _prepare(
        model, parsed, config, seed, data_dir, revision)
    if holds_adapter(out, identity):  # decided on resolved values alone: no weight is read
        log.debug("reusing the identical adapter in %s", out)
        return out
    if not progress:
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()  # "Loading weights"
    base, tokenizer = load_model(model, revision, model_config, quantized, tokenizer)
    try:
        with staged_dir(out) as tmp:  # a killed run leaves a `.partial` folder, never a half adapter
            work = tmp / "_trainer"
            runner = train_dpo if parsed.record.trainer == "dpo" else train_sft
            trainer, n_examples, evals = runner(base, tokenizer, tset.pairs, cfg, seed, work, quantized, progress)
            trainer.model.save_pretrained(str(tmp))
            shutil.rmtree(work, ignore_errors=True)
            history = trainer.state.log_history
            manifest = {
                "schema": MANIFEST_SCHEMA,
                **identity,
                "base_model_revision": revision or getattr(model_config, "_commit_hash", None),
                "model_type": model_config.model_type,
                "lora_targets_from": targets_from,
                "data_source": describe_source(data_dir),
                "n_train_examples": n_examples,
                "per_language": tset.per_language(),
                "train_rows": _rows(tset.pairs),
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
    except OSError:
        if not holds_adapter(out, identity):  # else a concurrent identical run finished first: use it
            raise
    log.debug("adapter written to %s", out)
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
