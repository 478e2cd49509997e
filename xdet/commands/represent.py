"""``xdet represent``: language distance matrices and silhouettes of sentence representations."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from xdet.commands.flags import positive_int
from xdet.represent.compute import METRICS
from xdet.represent.embed import DTYPES, POOLINGS, SPLIT_CHOICES
from xdet.represent.report import represent
from xdet_tasks.suites.records import LANGUAGES


def _parse_langs(values: Sequence[str]) -> list[str]:
    langs = [code.strip() for value in values for code in value.split(",") if code.strip()]
    return langs or list(LANGUAGES)


def _run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from xdet.console import quiet_model_loading

    quiet_model_loading()
    summary = represent(
        args.model, peft=args.peft, langs=_parse_langs(args.langs), split=args.split, out_dir=args.out,
        layer=args.layer, pooling=args.pooling, metric=args.metric, batch_size=args.batch_size,
        data_dir=args.data_dir, limit=args.limit, max_length=args.max_length, device=args.device,
        dtype=args.dtype,
    )
    from tabulate import tabulate

    for name, run in summary["runs"].items():
        langs = run["langs"]
        print(f"[{name}] {summary['metric']} distance between language centroids (toxic + neutral):")
        print(tabulate([[lang, *row] for lang, row in zip(langs, run["distances"]["all"], strict=True)],
                       headers=["", *langs], floatfmt=".3f"))
        sil = run["silhouette"]
        print(f"[{name}] language silhouette: toxic {sil['toxic']:+.3f}  neutral {sil['neutral']:+.3f}  "
              f"all {sil['all']:+.3f}; toxic vs neutral (pooled) {run['toxic_vs_neutral']['overall']:+.3f}")
    print(f"wrote {len(summary['files']) + 1} files to {summary['out_dir']} (summary.json)")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "represent",
        help="language distance matrices and silhouette scores of sentence representations (paper §A.4)",
        description=(
            "Embed each language's toxic and neutral sentences with a model (and optionally an adapter), "
            "then write language x language centroid distance matrices, silhouette scores and plots "
            "(paper Figs. 7-9). With --peft: the base run, the adapter run and their difference."
        ),
    )
    p.add_argument("--model", required=True, help="hub id or local path of the base model")
    p.add_argument("--peft", default=None, help="PEFT adapter directory or hub id, adding the after/diff outputs (default: none)")
    p.add_argument("--langs", nargs="+", default=[], metavar="LANG",
                   help=f"languages (space or comma separated; default all nine: {' '.join(LANGUAGES)})")
    p.add_argument("--split", default="train", choices=SPLIT_CHOICES,
                   help="which pairs to read: train (default; the paper's toxic-/neutral-train), test, or all; "
                        "a paper set name picks its pairs (toxic-train = train). Both halves are analysed.")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--layer", type=int, default=-1,
                   help="hidden-state index (0 = embeddings, -1 = last layer; default -1)")
    p.add_argument("--pooling", default="mean", choices=POOLINGS, help="token pooling (default mean)")
    p.add_argument("--metric", default="cosine", choices=METRICS, help="distance metric (default cosine)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="sentences per forward pass (default: 16)")
    p.add_argument("--max-length", type=int, default=128, help="truncate sentences to this many tokens (default: 128)")
    p.add_argument("--limit", type=int, default=None, help="first N pairs per language, for speed (default: all)")
    p.add_argument("--data-dir", default=None, help="released split files (default: XDET_DATA_DIR, else the hub)")
    p.add_argument("--device", default=None, help="torch device (default cuda if available, else cpu)")
    p.add_argument("--dtype", default="auto", choices=DTYPES,
                   help="model dtype; auto is bfloat16 on cuda, float32 on cpu (default: auto)")
    p.set_defaults(func=_run)
