"""``xdet tables``: the paper's tables regenerated from our run folders (CSV, Markdown, LaTeX, PNG)."""

from __future__ import annotations

import argparse
import logging

from xdet.commands.flags import (
    add_fluency_model_flag,
    add_metric_flag,
    add_results_flags,
    lang_list,
    positive_int,
    print_notices,
    results_options,
    validity_cards_env,
)
from xdet.runs import read_results
from xdet.tables.build import build_tables, missing_summary
from xdet.tables.check import compare_tables
from xdet.tables.guards import annotate
from xdet.tables.metric_options import apply_at_k, named_measures, on_language_only, parse_metric_options
from xdet.tables.output import write_tables
from xdet.tables.render import caption_lines, delta_direction, screen_table
from xdet_tasks.errors import XdetError
from xdet_tasks.io import environment
from xdet_tasks.metrics.at_k import REPORTED_K
from xdet_tasks.metrics.fluency import MEASURE as FLUENCY

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tables",
        help="regenerate the paper's tables from evaluation results",
        description=(
            "Read every run under RESULTS (xdet eval run folders, and plain `lm_eval --log_samples "
            "--output_path` output) and write, per model x evaluation set x measure, the paper's table: actual "
            "ZS row, one Δ = ZS − FT row per training configuration, row/column AVG, with bootstrap 95% "
            "intervals (CSV columns). Missing cells stay missing, never 0. With --check, write nothing and "
            "compare the tables in --out with what RESULTS produce (exit 1 when they differ)."
        ),
    )
    p.add_argument("results", help="results folder (run folders or lm_eval output folders at any depth)")
    p.add_argument("--out", required=True, help="output folder for the tables (with --check: the committed tables)")
    p.add_argument("--check", action="store_true",
                   help="regenerate into a temporary folder and compare with --out: exit 0 when they match, 1 "
                   "naming every differing file and cell (figures are not compared)")
    add_results_flags(p)
    add_metric_flag(p)
    add_fluency_model_flag(p)
    p.add_argument("--at-k", type=positive_int, metavar="k",
                   help=f"the toxicity table at k samples per prompt ({', '.join(map(str, REPORTED_K))}): the unbiased "
                   "estimate of --metric toxicity_probability or exp_max_toxicity from each run's own samples per "
                   "prompt, so runs made with different numbers compare (a run with fewer than k is refused; "
                   "default: the metric itself, at each run's own K)")
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
    with environment(**validity_cards_env(args)):  # the captions show the scorers' validity cards
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    if args.n_boot < 0:
        raise XdetError(f"--n-boot must be >= 0, got {args.n_boot}")
    metrics = parse_metric_options(args.metric)
    if args.on_language_only:
        metrics = on_language_only(metrics)
    metrics = apply_at_k(metrics, args.at_k)
    options = results_options(args)
    notices: list[str] = []
    runs = read_results(args.results, from_samples=args.from_samples, strategies=options["strategies"],
                        newest=options["newest"], notices=notices)
    print_notices("tables", notices)
    tables = build_tables(runs, metrics=metrics, layout="paper" if args.paper_layout else "present",
                          columns=args.langs, n_boot=args.n_boot, seed=args.seed,
                          allow_different=options["allow_different"], fluency_model=args.fluency_model)
    if FLUENCY in metrics and not any(t.measure == FLUENCY for t in tables):
        raise XdetError(f"{args.results}: --metric fluency, but no run has a fluency file"
                        f"{f' under {args.fluency_model}' if args.fluency_model else ''} beside its samples: "
                        f"run `xdet fluency {args.results} --model <reference LM>` first")
    annotate(tables, runs, layout="paper" if args.paper_layout else "present", columns=args.langs,
             n_boot=args.n_boot, seed=args.seed, allow_different=options["allow_different"])
    if not tables:
        raise XdetError(
            f"{args.results}: {len(runs)} run(s) but no xdet toxicity/perplexity task results to tabulate"
        )
    if args.check:
        return _check(tables, args)
    written = write_tables(tables, args.out, ci=args.ci, png=not args.no_png)
    shown = named_measures(args.metric) or ["toxicity"]  # on screen: the measures asked for
    for model in dict.fromkeys(t.model for t in tables):  # the headline table of each model and measure
        for measure in shown:
            mine = [t for t in tables if t.model == model and t.measure == measure]
            if mine:
                head = next((t for t in mine if t.split == "toxic-test"), mine[0])
                print(f"{head.title} (Δ = ZS − FT, positive: the fine-tuned model {delta_direction(head)}; 95% CI)")
                print(screen_table([head], measure, head.split, digits=1 if measure == "toxicity" else 2))
                print("\n".join(caption_lines(head)) + "\n")
    print(f"xdet tables: {len(tables)} table(s) from {len(runs)} run(s) -> {args.out} ({len(written)} files)")
    print(missing_summary(tables))
    return 0


def _check(tables: list, args: argparse.Namespace) -> int:
    """Regenerate into a temporary folder, compare with ``--out``, write nothing there."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="xdet-tables-check-") as tmp:
        write_tables(tables, tmp, ci=args.ci, png=False)
        problems = compare_tables(Path(tmp), Path(args.out))
    if problems:
        print(f"xdet tables --check: {args.out} is not what {args.results} produces ({len(problems)} difference(s)):")
        print("\n".join(f"  {p}" for p in problems))
        print(f"regenerate with the same command without --check to update {args.out}")
        return 1
    print(f"xdet tables --check: the {len(tables)} table(s) in {args.out} match {args.results}")
    return 0
