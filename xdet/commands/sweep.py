"""``xdet sweep``: train + evaluate the configuration matrix, then write the tables (resumable)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xdet.commands.flags import (
    add_dataclass_flags,
    add_run_flags,
    csv_list,
    dataclass_from_flags,
    natural_sources,
    option_strings,
)
from xdet.sweep.configuration import SweepSettings
from xdet.sweep.run import EXECUTORS, sweep
from xdet.sweep.scheduler import SlurmOptions
from xdet.sweep.slurm import JobsKeepRunning
from xdet_tasks.errors import XdetError
from xdet_tasks.languages import PAPER_EVAL_LANGUAGES, PAPER_TRAIN_LANGUAGES
from xdet_tasks.suites.records import LANGUAGES, PARADETOX, SUITES, check_suite
from xdet_train.config import TrainConfig
from xdet_train.strategies import PAPER_PCTS, STRATEGIES


def _ints(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in csv_list(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {value!r}") from None


def _natural(value: str, least: int = 0) -> int:
    if not value.strip().isdigit() or int(value) < least:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {least}, got {value!r}")
    return int(value)


def _positive(value: str) -> int:
    return _natural(value, 1)


def _joined(values: tuple) -> str:
    return ",".join(map(str, values))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sweep", help="train + evaluate the configuration matrix, then write the tables (resumable)",
        description="Train (or reuse) each configuration's adapter, evaluate it on every xdet task of the "
        "evaluation languages, then write the tables. Rerun the same command to resume; see --dry-run.",
    )
    p.add_argument("--model", action="append", required=True, help="base model (hub id or directory); repeatable")
    p.add_argument("--strategies", type=csv_list, default=("zs", "x-ft", "p-ft", "m-ft"),
                   help=f"comma-separated: {', '.join(STRATEGIES)} or explicit specs like x-ft:de "
                        "(default: zs,x-ft,p-ft,m-ft)")
    p.add_argument("--train-langs", type=csv_list, default=PAPER_TRAIN_LANGUAGES,
                   help=f"x-ft source languages (default: the paper's {_joined(PAPER_TRAIN_LANGUAGES)})")
    p.add_argument("--eval-langs", type=csv_list,
                   help=f"evaluation languages (default: the paper's {_joined(PAPER_EVAL_LANGUAGES)}, plus every "
                   "language of each natural-prompt suite in --suites)")
    p.add_argument("--suites", type=csv_list, default=(PARADETOX,),
                   help=f"data suites to evaluate each configuration on: {', '.join(SUITES)} (default: {PARADETOX})")
    p.add_argument("--pool-langs", type=csv_list, default=LANGUAGES,
                   help=f"languages pooled by p-ft/m-ft/dpo (default: {_joined(LANGUAGES)})")
    p.add_argument("--pcts", type=_ints, default=PAPER_PCTS, help=f"p-ft percentages (default: {_joined(PAPER_PCTS)})")
    p.add_argument("--out", required=True, help="sweep folder (adapters/, runs/, tables/)")
    add_run_flags(p)
    p.add_argument("--train-seed", type=int, default=0, help="training (and p-ft sampling) seed (default: 0)")
    x = p.add_argument_group("execution")
    x.add_argument("--shard", help="run only shard i of N, written i/N, 0-based (default: the whole matrix)")
    x.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: sequential here; slurm: one SLURM job per configuration, submitted as one job "
                        "array (default: local)")
    s = p.add_argument_group("SLURM (--executor slurm; rerun the same command to resume or collect)")
    s.add_argument("--slurm-partition", help="SLURM partition (default: the cluster's default partition)")
    s.add_argument("--slurm-time", type=_positive, default=24 * 60, help="minutes per job (default: 1440)")
    s.add_argument("--slurm-gpus", type=_natural, default=1, help="GPUs per job, 0 for none (default: 1)")
    s.add_argument("--slurm-cpus", type=_positive, default=8, help="CPUs per job (default: 8)")
    s.add_argument("--slurm-mem-gb", type=_positive, default=64, help="memory per job in GB (default: 64)")
    s.add_argument("--slurm-parallel", type=_positive, help="at most this many jobs at once (default: no limit)")
    s.add_argument("--detach", action="store_true",
                   help="submit and return at once; the same command later reports each configuration's state "
                        "and writes the tables from what is complete (default: wait for the jobs)")
    x.add_argument("--dry-run", action="store_true", help="print the matrix (this shard) and exit")
    x.add_argument("--fail-fast", action="store_true", help="stop at the first failed configuration")
    x.add_argument("--no-tables", action="store_true", help="do not write the tables at the end")
    x.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the tables (default: 1000)")
    x.add_argument("--no-progress", action="store_true", help="no progress bars")
    g = p.add_argument_group("training hyper-parameters (default: the released code's; as in `xdet train`)")
    p.set_defaults(func=_cmd, config_flags=add_dataclass_flags(g, TrainConfig, prefix="train-", taken=option_strings(p)))


def _eval_langs(args: argparse.Namespace) -> tuple[str, ...]:
    if args.eval_langs:
        return tuple(args.eval_langs)
    langs = list(PAPER_EVAL_LANGUAGES) if PARADETOX in args.suites else []
    for suite in (check_suite(s) for s in args.suites):
        langs += [lang for lang in suite.languages if suite.natural and lang not in langs]
    return tuple(langs)


def _cmd(args: argparse.Namespace) -> int:
    settings = SweepSettings(
        out=str(Path(args.out).resolve()), eval_langs=_eval_langs(args), pool_langs=tuple(args.pool_langs),
        families=tuple(args.families), limit=args.limit, batch_size=args.batch_size, device=args.device,
        scorer=args.scorer, data_dir=str(Path(args.data_dir).expanduser().absolute()) if args.data_dir else None,
        seed=args.seed, train_seed=args.train_seed,
        repeats=args.repeats, model_args=args.model_args, backend=args.backend,
        train=dataclass_from_flags(TrainConfig, args, args.config_flags), suites=tuple(args.suites),
        protocol=args.protocol, sources=tuple((k, v) for k, v in natural_sources(args).items() if v is not None),
    )
    if args.detach and args.executor != "slurm":
        raise XdetError(f"--detach: only with --executor slurm (got --executor {args.executor})")
    slurm = SlurmOptions(partition=args.slurm_partition, minutes=args.slurm_time, gpus=args.slurm_gpus,
                         cpus=args.slurm_cpus, mem_gb=args.slurm_mem_gb, parallel=args.slurm_parallel,
                         detach=args.detach)
    try:
        outcomes = sweep(
            list(args.model), list(args.strategies), settings, train_langs=tuple(args.train_langs), pcts=args.pcts,
            shard_spec=args.shard, executor=args.executor, slurm=slurm, progress=not args.no_progress,
            fail_fast=args.fail_fast, tables=not args.no_tables, n_boot=args.n_boot, dry_run=args.dry_run,
        )
    except JobsKeepRunning as interrupted:  # the jobs are the cluster's now: say how to pick them up
        print(f"\nxdet sweep: {interrupted}", file=sys.stderr)
        return 130
    return 1 if any(o.status == "failed" for o in outcomes) else 0
