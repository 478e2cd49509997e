"""``xdet train``: one LoRA detox adapter for one strategy (flags generated from ``TrainConfig``)."""

from __future__ import annotations

import argparse

from xdet.commands.flags import add_dataclass_flags, csv_list, dataclass_from_flags
from xdet.console import quiet_model_loading
from xdet_tasks.errors import XdetError
from xdet_train.config import TrainConfig
from xdet_train.manifest import MANIFEST_NAME, read_manifest
from xdet_train.model import TARGET_SOURCES
from xdet_train.strategies import parse_strategy, usage
from xdet_train.train import train_adapter


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train a LoRA detox adapter for one strategy",
        description=f"Train a LoRA adapter (PEFT format + {MANIFEST_NAME}). Strategies: {usage()}.",
    )
    p.add_argument("--model", required=True, help="base model: hub id or local directory")
    p.add_argument("--strategy", required=True, help=usage())
    p.add_argument("--out", required=True, help="adapter directory to create (reused if identical)")
    p.add_argument("--langs", type=csv_list, help="comma-separated language pool of p-ft/m-ft/dpo (default: all)")
    p.add_argument("--seed", type=int, default=0, help="training and sampling seed (default: 0)")
    p.add_argument("--data-dir", help="released split files (default: $XDET_DATA_DIR, else the hub)")
    p.add_argument("--revision", help="base model revision (default: the hub's main)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    group = p.add_argument_group("hyper-parameters (default: the released code's)")
    p.set_defaults(func=_cmd, config_flags=add_dataclass_flags(group, TrainConfig))


def _cmd(args: argparse.Namespace) -> int:
    config = dataclass_from_flags(TrainConfig, args, args.config_flags)
    if args.langs:  # the pool of strategies without a language; anywhere else it would be ignored
        parsed = parse_strategy(args.strategy)
        if parsed.record.trainer is None or parsed.single_language:
            raise XdetError(f"--langs: strategy {args.strategy!r} has no language pool; --langs sets the pool "
                            "of strategies without a language (p-ft, m-ft, dpo)")
    quiet_model_loading()
    out = train_adapter(
        args.model, args.strategy, args.out, config, data_dir=args.data_dir, seed=args.seed,
        progress=not args.no_progress, langs=args.langs, revision=args.revision,
    )
    manifest = read_manifest(out)
    curve = manifest.get("loss_curve") or []
    loss = f", final logged loss {curve[-1]['loss']:.4f}" if curve else ""
    targets = ", ".join(manifest["hyperparameters"].get("target_modules") or [])
    how = TARGET_SOURCES.get(manifest.get("lora_targets_from") or "", "")
    print(f"adapter: {out} ({manifest['strategy_spec']}, {manifest['n_train_examples']} examples, LoRA on "
          f"{targets}{f' ({how})' if how else ''}{loss})")
    return 0
