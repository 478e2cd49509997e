"""``xdet scorer ...``: inspect and compare toxicity scorers."""

from __future__ import annotations

import argparse

from tabulate import tabulate

from xdet.commands.flags import csv_list, lang_list, natural_sources, positive_int
from xdet.validity.kappa import KAPPA_FLOOR, STATISTIC
from xdet_tasks.errors import XdetError
from xdet_tasks.io import environment
from xdet_tasks.suites.records import LANGUAGES, PARADETOX, RTPLX, check_language, suite_languages

AGAINST = (PARADETOX, RTPLX)


def _evaluate(args: argparse.Namespace) -> int:
    from xdet_tasks.io import atomic_write_json
    from xdet_tasks.scoring.registry import build_scorer

    if args.save and args.against != RTPLX:
        raise XdetError("--save writes a validity card, which is measured against native speakers: use it with "
                        "--against rtplx")
    langs = list(args.langs or (LANGUAGES if args.against == PARADETOX else suite_languages(RTPLX)))
    for lang in langs:
        check_language(lang, args.against)
    with environment(**natural_sources(args)):
        if args.against == RTPLX:
            from xdet.validity import raters

            data = raters.load_annotated(langs)  # every file read and checked before the scorer is built
            scorer = build_scorer(args.spec)
            report = raters.evaluate_against_rtplx(scorer, langs, n_boot=args.n_boot, seed=args.seed, data=data)
            print(f"scorer {scorer.ident}: RTP-LX prompts against their native-speaker Toxicity ratings "
                  f"({raters.RULE}); 95% bootstrap intervals over prompts ({args.n_boot} replicates)")
            print(raters.report_table(report))
            print(f"κ: {STATISTIC}; weak below {KAPPA_FLOOR:g}; raters' κ: RTP-LX's raters among themselves")
            if args.save:
                from xdet.validity.cards import save_cards

                for path in save_cards(report, n_boot=args.n_boot, seed=args.seed):
                    print(f"validity card: {path}")
        else:
            from xdet.validity.heldout import evaluate_scorer, report_table

            scorer = build_scorer(args.spec)
            report = evaluate_scorer(scorer, langs, data_dir=args.data_dir, n_boot=args.n_boot, seed=args.seed)
            print(f"scorer {scorer.ident}: held-out test pairs (toxic = 1, neutral paraphrase = 0), 95% "
                  f"bias-corrected bootstrap intervals over pairs ({args.n_boot} replicates)")
            print(report_table(report))
    if args.json:
        atomic_write_json(args.json, report)
        print(f"report: {args.json}")
    return 0


def _agree(args: argparse.Namespace) -> int:
    import os

    from xdet.validity.agree import TABLE_HEADERS, compare, read_texts, table_rows
    from xdet_tasks.errors import UnscoredError
    from xdet_tasks.io import atomic_write_json
    from xdet_tasks.scoring import get_scorer

    texts = read_texts(args.samples)
    if args.langs:
        texts = [t for t in texts if t.lang in args.langs]
    scorer_a, scorer_b = get_scorer(args.a), get_scorer(args.b)
    report = compare(scorer_a, scorer_b, texts)
    print(f"A = {scorer_a.ident}   B = {scorer_b.ident}   ({len(texts)} texts)")
    for label, prov in (("A", report["a"]), ("B", report["b"])):
        named = ", ".join(f"{k}={prov[k]}" for k in ("backend", "preset", "model", "revision", "files_sha256",
                                                     "version", "api_version") if prov.get(k))
        print(f"{label}: {named}")
    print(tabulate(table_rows(report), headers=TABLE_HEADERS, tablefmt="github"))
    if args.json:
        atomic_write_json(args.json, report)
        print(f"report: {args.json}")
    missing = report["overall"]["unscored"]
    if missing and not (args.allow_unscored or os.environ.get("XDET_ALLOW_UNSCORED") == "1"):
        raise UnscoredError(
            f"{missing} text(s) were left unscored by a scorer (A: {report['unscored']['a']}, "
            f"B: {report['unscored']['b']}); they are excluded above. Re-run (the cache keeps what was scored) "
            "or pass --allow-unscored / XDET_ALLOW_UNSCORED=1",
            missing,
        )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("scorer", help="evaluate and compare toxicity scorers")
    sub = parser.add_subparsers(dest="scorer_command", metavar="SUBCOMMAND", required=True)
    ev = sub.add_parser(
        "evaluate", help="how well a scorer separates toxic from neutral text, or agrees with RTP-LX's raters",
        description="Score the held-out test pairs of each language (--against paradetox) or the RTP-LX prompts of "
        "each locale against their native speakers' Toxicity ratings (--against rtplx: also linear-weighted "
        "Cohen's kappa on their 1-5 scale, RTP-LX's statistic), and report ROC-AUC, "
        "accuracy at 0.5, the threshold maximising balanced accuracy, the balanced accuracy of thresholds fitted "
        "on other folds (cross-fitted), expected calibration error and Brier score with 95% bias-corrected "
        "bootstrap intervals. Languages the scorer refuses are listed as refused.",
    )
    ev.add_argument("spec", help="scorer spec as in XDET_SCORER: textdetox, textdetox-v1, local, hf:<model>, perspective, "
                    "or 'a|b' (each language by the first that covers it)")
    ev.add_argument("--against", choices=AGAINST, default=PARADETOX,
                    help="paradetox: toxic sentences vs their neutral paraphrases; rtplx: RTP-LX prompts vs native "
                    "speakers' ratings, per locale (default: paradetox)")
    ev.add_argument("--langs", type=csv_list, help=f"languages (default: every language of --against; paradetox: "
                    f"{','.join(LANGUAGES)})")
    ev.add_argument("--rtplx-dir", help="folder of RTP-LX release files for --against rtplx (default: $XDET_RTPLX_DIR, "
                    "else the hub copy)")
    ev.add_argument("--n-boot", type=positive_int, default=1000, help="bootstrap replicates (default: 1000)")
    ev.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    ev.add_argument("--data-dir", help="released split files (default: $XDET_DATA_DIR, else the hub)")
    ev.add_argument("--json", metavar="OUT", help="also write the full report as JSON to OUT (default: none)")
    ev.add_argument("--save", action="store_true",
                    help="with --against rtplx: keep the result as the scorer's validity card (per locale κ and "
                    "ROC-AUC, in $XDET_CACHE_DIR/validity-cards/), shown wherever its toxicity numbers are "
                    "(default: do not save)")
    ev.set_defaults(func=_evaluate)
    ag = sub.add_parser(
        "agree",
        help="per-language agreement of two scorers (Spearman, Pearson, ROC-AUC, mean difference)",
        description="Score the same texts with scorers A and B (specs as in XDET_SCORER, e.g. perspective, "
        "local, hf:<model>) and report how far B agrees with A per language.",
    )
    ag.add_argument("a", help="reference scorer spec (e.g. perspective)")
    ag.add_argument("b", help="scorer to compare (e.g. hf:textdetox/xlmr-large-toxicity-classifier-v2)")
    ag.add_argument("--samples", nargs="+", required=True, metavar="FILE",
                    help="lm-eval samples_*.jsonl files, or CSV files with columns text,lang")
    ag.add_argument("--langs", type=lang_list, help="comma-separated languages to keep (default: all found)")
    ag.add_argument("--json", metavar="OUT", help="also write the report as JSON to OUT (default: none)")
    ag.add_argument("--allow-unscored", action="store_true",
                    help="exit 0 even if a scorer left texts unscored (they are excluded either way)")
    ag.set_defaults(func=_agree)
