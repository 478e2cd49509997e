"""``xdet tables``: the paper's tables regenerated from our run folders (CSV, Markdown, LaTeX, PNG)."""

from __future__ import annotations

import argparse
import logging

from xdet.commands.flags import add_metric_flag, lang_list
from xdet.runs import read_results
from xdet.tables.build import build_tables, missing_summary, parse_metric_options
from xdet.tables.output import write_tables
from xdet.tables.render import screen_table
from xdet_tasks.errors import XdetError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tables",
        help="regenerate the paper's tables from evaluation results",
        description=(
            "Read every run folder (xdet_run.json + lm-eval results/samples) under RESULTS and write, per "
            "model x evaluation set x measure, the paper's table: actual ZS row, one Δ = ZS − FT row per training "
            "configuration, row/column AVG, with bootstrap 95% intervals (CSV columns). Missing cells stay "
            "missing, never 0."
        ),
    )
    p.add_argument("results", help="results folder (run folders at any depth)")
    p.add_argument("--out", required=True, help="output folder for the tables")
    add_metric_flag(p)
    p.add_argument("--ci", action="store_true", help="show bootstrap intervals in Markdown/LaTeX too (CSV always has them)")
    p.add_argument("--paper-layout", action="store_true",
                   help="the paper's layout: its seven columns (am..ru) and its seven X-FT rows, filled or missing "
                   "(default: the languages and configurations present in the runs)")
    p.add_argument("--langs", type=lang_list,
                   help="comma-separated columns, overriding the layout's (default: the layout's)")
    p.add_argument("--from-samples", action="store_true",
                   help="rebuild every number from the samples files alone (no results file, no scorer call)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples, 0 for no intervals (default: 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.add_argument("--no-png", action="store_true", help="skip the heatmaps and bar charts")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.n_boot < 0:
        raise XdetError(f"--n-boot must be >= 0, got {args.n_boot}")
    metrics = parse_metric_options(args.metric)
    runs = read_results(args.results, from_samples=args.from_samples)
    tables = build_tables(runs, metrics=metrics, layout="paper" if args.paper_layout else "present",
                          columns=args.langs, n_boot=args.n_boot, seed=args.seed)
    if not tables:
        raise XdetError(
            f"{args.results}: {len(runs)} run(s) but no xdet toxicity/perplexity task results to tabulate"
        )
    written = write_tables(tables, args.out, ci=args.ci, png=not args.no_png)
    for model in dict.fromkeys(t.model for t in tables):  # the headline table of each model on screen
        toxicity = [t for t in tables if t.model == model and t.measure == "toxicity"]
        if toxicity:
            head = next((t for t in toxicity if t.split == "toxic-test"), toxicity[0])
            print(f"{head.title} (Δ = ZS − FT, positive = less toxic; 95% CI)")
            print(screen_table([head], "toxicity", head.split, digits=1) + "\n")
    print(f"xdet tables: {len(tables)} table(s) from {len(runs)} run(s) -> {args.out} ({len(written)} files)")
    print(missing_summary(tables))
    return 0
