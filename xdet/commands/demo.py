"""``xdet demo``: the whole method at toy scale on the CPU, offline, in minutes."""

from __future__ import annotations

import argparse

from xdet.commands.flags import batch_size_arg, csv_list
from xdet.demo import DEFAULT_LIMIT, DEFAULT_OUT, DEFAULT_SOURCES, run_demo
from xdet_tasks.errors import XdetError
from xdet_tasks.suites.records import LANGUAGES


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="CPU demo: toy LM, ZS + X-FT (en, es), 9-language evaluation, Δ tables (offline, minutes)",
        description="Build a toy multilingual LM, fine-tune it with LoRA on the neutral sentences of the source "
        "languages, evaluate every language with the offline local scorer and print the Δ tables.",
    )
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default: ./{DEFAULT_OUT})")
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                   help=f"documents per task, i.e. per language and split (default: {DEFAULT_LIMIT})")
    p.add_argument("--sources", type=csv_list, default=DEFAULT_SOURCES,
                   help=f"X-FT source languages (default: {','.join(DEFAULT_SOURCES)})")
    p.add_argument("--data-dir", help="released split files (default: $XDET_DATA_DIR, else the hub)")
    p.add_argument("--batch-size", type=batch_size_arg, default="64", help="lm-eval batch size (default: 64)")
    p.add_argument("--threads", type=int, help="torch threads (default: the idle cores)")
    p.add_argument("--rebuild", action="store_true", help="re-train the cached toy model")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    for lang in args.sources:
        if lang not in LANGUAGES:
            raise XdetError(f"--sources: unknown language {lang!r}; expected some of {', '.join(LANGUAGES)}")
    if args.limit < 2:
        raise XdetError(f"--limit must be at least 2 (bootstrap intervals need two documents), got {args.limit}")
    return run_demo(args.out, limit=args.limit, sources=tuple(args.sources), data_dir=args.data_dir,
                    batch_size=args.batch_size, rebuild=args.rebuild, progress=not args.no_progress,
                    threads=args.threads)
