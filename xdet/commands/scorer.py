"""``xdet scorer ...``: inspect and compare toxicity scorers."""

from __future__ import annotations

import argparse
import json

from tabulate import tabulate


def _evaluate(args: argparse.Namespace) -> int:
    from xdet_tasks.scoring.local import evaluate_local, load_or_train

    if args.backend != "local":
        raise SystemExit("xdet scorer evaluate: only the 'local' scorer is trained here; use 'agree' for others")
    scorer = load_or_train()
    rows = evaluate_local(scorer)
    mean_auc = sum(r["roc_auc"] for r in rows) / len(rows)
    mean_acc = sum(r["accuracy"] for r in rows) / len(rows)
    table = [[r["lang"], r["n"], f"{r['roc_auc']:.3f}", f"{r['accuracy']:.3f}"] for r in rows]
    table.append(["mean", sum(r["n"] for r in rows), f"{mean_auc:.3f}", f"{mean_acc:.3f}"])
    print(f"scorer {scorer.ident} — held-out test pairs (toxic vs neutral), threshold 0.5")
    print(tabulate(table, headers=["lang", "texts", "ROC-AUC", "accuracy"], tablefmt="github"))
    if args.json:
        print(json.dumps({"scorer": scorer.provenance(), "per_language": rows, "mean_roc_auc": mean_auc}))
    return 0


def _agree(args: argparse.Namespace) -> int:
    import os

    from xdet.agree import TABLE_HEADERS, compare, read_texts, table_rows
    from xdet_tasks.errors import UnscoredError
    from xdet_tasks.io import atomic_write_json
    from xdet_tasks.scoring import get_scorer

    texts = read_texts(args.samples)
    if args.langs:
        wanted = {lang.strip() for lang in args.langs.split(",") if lang.strip()}
        texts = [t for t in texts if t.lang in wanted]
    scorer_a, scorer_b = get_scorer(args.a), get_scorer(args.b)
    report = compare(scorer_a, scorer_b, texts)
    print(f"A = {scorer_a.ident}   B = {scorer_b.ident}   ({len(texts)} texts)")
    print(tabulate(table_rows(report), headers=TABLE_HEADERS, tablefmt="github"))
    print(json.dumps(report, ensure_ascii=False))
    if args.json:
        atomic_write_json(args.json, report)
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
    ev = sub.add_parser("evaluate", help="held-out ROC-AUC/accuracy per language of the local scorer")
    ev.add_argument("backend", choices=["local"], help="scorer to evaluate")
    ev.add_argument("--json", action="store_true", help="also print the numbers as JSON")
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
    ag.add_argument("--langs", help="comma-separated languages to keep (default: all found)")
    ag.add_argument("--json", metavar="OUT", help="also write the report as JSON to OUT (default: none)")
    ag.add_argument("--allow-unscored", action="store_true",
                    help="exit 0 even if a scorer left texts unscored (they are excluded either way)")
    ag.set_defaults(func=_agree)
