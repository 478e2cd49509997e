"""``xdet eval``: evaluate a model (+ adapter) on xdet tasks through lm-eval into one run folder."""

from __future__ import annotations

import argparse

from xdet.commands.flags import (
    add_run_flags,
    add_validity_cards_flag,
    csv_list,
    natural_sources,
    validity_cards_env,
)
from xdet.evaluate import run_eval
from xdet.runs.folder import read_run
from xdet.tables.summary import run_summary
from xdet_tasks.errors import XdetError
from xdet_tasks.io import environment
from xdet_tasks.names import FAMILY_KEYS, task_names
from xdet_tasks.suites.records import PARADETOX, SUITES


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="evaluate a model (+ adapter) on xdet tasks via lm-eval",
        description="Check everything (model, tasks, data, scorer, output folder), run lm-eval on the xdet tasks, "
        "write one run folder (lm-eval's results and samples, then xdet_run.json last) and print a summary per "
        "language and set. Rerunning a complete run is a no-op.",
    )
    p.add_argument("--model", required=True, help="hub id or local path of the base model")
    p.add_argument("--peft", help="LoRA adapter directory made by `xdet train` (default: none, zero-shot)")
    p.add_argument("--out", required=True, help="run folder to write")
    p.add_argument("--tasks", type=csv_list,
                   help="comma-separated lm-eval tasks, tags or groups (default: every task of --langs and --families)")
    p.add_argument("--langs", type=csv_list,
                   help="evaluation languages (default: every language of each suite)")
    p.add_argument("--suites", type=csv_list, default=(PARADETOX,),
                   help=f"data suites without --tasks: {', '.join(SUITES)} (default: {PARADETOX}, the paper's data; "
                   "rtplx and ptp are natural-prompt continuation tasks)")
    add_run_flags(p)
    add_validity_cards_flag(p)
    p.add_argument("--force", action="store_true", help="redo a complete run folder")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    if args.tasks and (args.langs or tuple(args.families) != FAMILY_KEYS or tuple(args.suites) != (PARADETOX,)):
        raise XdetError("--tasks names the tasks itself; --langs, --families and --suites select tasks only without "
                        "it (a group such as xdet-avg-toxic-test covers every language)")
    sources = natural_sources(args)
    cards = validity_cards_env(args)
    tasks = list(args.tasks) if args.tasks else task_names(args.langs, args.families, args.suites)
    if not tasks:
        raise XdetError(f"--families {','.join(args.families)} has no task in --suites {','.join(args.suites)} "
                        "(natural-prompt suites have generation tasks only: --families gen)")
    out = run_eval(
        args.model, args.out, tasks=tasks, peft=args.peft, limit=args.limit, batch_size=args.batch_size,
        device=args.device, scorer=args.scorer, data_dir=args.data_dir, seed=args.seed,
        model_args=args.model_args, force=args.force, repeats=args.repeats, backend=args.backend,
        protocol=args.protocol, sources=sources,
    )
    with environment(**cards):
        print(run_summary(read_run(out)))
    print(f"\nrun folder: {out}")
    return 0
