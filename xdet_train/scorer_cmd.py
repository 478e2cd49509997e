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


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("scorer", help="evaluate and compare toxicity scorers")
    sub = parser.add_subparsers(dest="scorer_command", metavar="SUBCOMMAND", required=True)
    ev = sub.add_parser("evaluate", help="held-out ROC-AUC/accuracy per language of the local scorer")
    ev.add_argument("backend", choices=["local"], help="scorer to evaluate")
    ev.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    ev.set_defaults(func=_evaluate)
