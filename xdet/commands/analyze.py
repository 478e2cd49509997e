"""``xdet analyze``: the paper's findings as hypothesis tests, on the paper's own tables or on any runs."""

from __future__ import annotations

import argparse

from xdet.commands.flags import (
    add_fluency_model_flag,
    add_metric_flag,
    add_results_flags,
    print_notices,
    results_options,
    validity_cards_env,
)
from xdet_tasks.errors import XdetError
from xdet_tasks.names import DEFAULT_METRICS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "analyze", help="test the paper's findings (script, family, in-language, distance, data amount)",
        description="Per table: H1 same-script transfer, H2 Indo-European source advantage, H3 in-language vs "
        "cross-lingual, H4 representation distance (with --distances), H5 data amount (P-FT/M-FT rows), each "
        "with effect, 95% interval, permutation p and Holm-adjusted p over every test run.",
    )
    src = p.add_argument_group("input (at least one)")
    src.add_argument("--paper", action="store_true", help="the paper's 24 transcribed tables")
    src.add_argument("--tables", action="append", default=[], metavar="DIR",
                     help="a folder written by `xdet tables` (cell values only); repeatable (default: none)")
    src.add_argument("--sweep", action="append", default=[], metavar="DIR",
                     help="a sweep folder or any folder of runs (xdet eval run folders or lm_eval output; "
                     "per-prompt intervals); repeatable (default: none)")
    add_metric_flag(p, default="for --sweep: the metrics of its own tables/ when it has them, else "
                    + ", ".join(f"{f}={m}" for f, m in DEFAULT_METRICS.items()))
    add_fluency_model_flag(p)
    add_results_flags(p)
    p.add_argument("--out", required=True, help="folder for analysis.json, analysis.md and analysis.png")
    p.add_argument("--distances", metavar="FILE",
                   help="language distance CSV from `xdet represent` (distance_all.csv) for H4 (default: none)")
    p.add_argument("--languages", metavar="FILE",
                   help="YAML or CSV (code, script, family) overriding the language metadata (default: built in)")
    p.add_argument("--n-perm", type=int, default=10_000,
                   help="random permutations when exact enumeration exceeds --max-exact (default: 10000)")
    p.add_argument("--max-exact", type=int, default=10_000,
                   help="enumerate every distinct permutation up to this many (default: 10000)")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples for intervals (default: 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of permutations and bootstraps (default: 0)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level after Holm (default: 0.05)")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    from xdet_tasks.io import environment

    with environment(**validity_cards_env(args)):  # the report shows the toxicity scorers' validity cards
        return _analyze(args)


def _analyze(args: argparse.Namespace) -> int:
    from xdet.analyze import console_summary, load_language_map, read_distances, run_analysis, write_outputs
    from xdet.analyze.report import scorer_validity, validity_lines
    from xdet.analyze.sources import collect
    from xdet.tables.metric_options import parse_metric_options

    if not (args.paper or args.tables or args.sweep):
        raise XdetError("give the input: --paper, --tables DIR or --sweep DIR")
    if args.metric and not args.sweep:
        raise XdetError("--metric chooses what --sweep input is tabulated on; --paper and --tables DIR "
                        "carry their tables' own metrics")
    if args.on_language_only and not args.sweep:
        raise XdetError("--on-language-only chooses what --sweep input is tabulated on; --paper and --tables DIR "
                        "carry their tables' own metrics")
    metrics = parse_metric_options(args.metric) if args.metric else None
    if (args.strategy_of or args.newest or args.allow_different or args.fluency_model) and not args.sweep:
        raise XdetError("--strategy-of, --newest, --allow-different and --fluency-model are about runs given with "
                        "--sweep DIR")
    options = results_options(args)
    notices: list[str] = []
    guards: list = []  # each toxicity Δ of --sweep runs, checked by the guards (xdet.tables.guards)
    try:
        languages = load_language_map(args.languages)
        distances = read_distances(args.distances) if args.distances else None
        matrices = collect(paper=args.paper, tables=args.tables, runs=args.sweep, metrics=metrics,
                           n_boot=min(args.n_boot, 1000), seed=args.seed, notices=notices,
                           fluency_model=args.fluency_model, guards=guards, on_language_only=args.on_language_only,
                           **options)
        print_notices("analyze", notices)
        results = run_analysis(matrices, languages, distances, n_perm=args.n_perm, max_exact=args.max_exact,
                               seed=args.seed, n_boot=args.n_boot, alpha=args.alpha)
        results.guards = guards
    except ValueError as err:  # bad mapping or distance file, bad settings: named in the message
        raise XdetError(str(err)) from None
    validity = scorer_validity(matrices)
    written = write_outputs(results, args.out, validity=validity)
    print(console_summary(results))
    if guards:
        from xdet.analyze.guards import one_line

        print(one_line(guards, args.alpha))
    for line in validity_lines(validity):
        print(line)
    analysed: dict[str, set[str]] = {}
    for m in matrices:
        analysed.setdefault(m.measure, set()).add(m.metric)
    print("metrics: " + "; ".join(f"{measure} = {', '.join(sorted(names))}" for measure, names in analysed.items()))
    print(f"\n{len(matrices)} table(s), {sum(r.tested for r in results)} tests; report: {written[1]} "
          f"(JSON {written[0].name}, figure {written[2].name})")
    return 0
