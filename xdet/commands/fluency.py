"""``xdet fluency``: each completion's conditional perplexity under a reference LM, beside its samples file."""

from __future__ import annotations

import argparse
import os

from xdet.commands.flags import positive_int
from xdet_tasks.io import idle_cores
from xdet_tasks.scoring.hf import DTYPES


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fluency", help="score every completion's perplexity given its prompt under a reference LM",
        description=(
            "For every completion in the generation tasks' samples files under RUN_FOLDER (xdet eval run folders "
            "or plain lm_eval output; nothing is regenerated), compute its conditional perplexity given its prompt "
            "under a causal reference model, and write fluency_<task>_<ts>__<reference>.jsonl beside each samples "
            "file. Cached by (reference files hash, prompt, completion): a rerun scores only what is missing. "
            "Then: xdet tables RESULTS --metric fluency."
        ),
    )
    p.add_argument("folders", nargs="+", metavar="RUN_FOLDER", help="run folders or lm_eval output folders (any depth)")
    p.add_argument("--model", required=True,
                   help="the reference: a causal LM's hub id or local folder (e.g. ai-forever/mGPT, gpt2-xl)")
    p.add_argument("--revision", default=None, help="hub revision of --model (default: the cached or latest one)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="completions per forward pass (default: 32)")
    p.add_argument("--max-length", type=positive_int, default=None,
                   help="the reference's window in tokens; longer pairs keep the completion and the prompt's end "
                   "(default: the model config's max_position_embeddings or equivalent)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch threads on CPU (default: the idle cores; busy cores slow small models ~10x)")
    p.add_argument("--dtype", default="auto", choices=sorted(DTYPES),
                   help="weights' precision; auto is bfloat16 on a GPU that has it, float32 on CPU (default: auto)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from xdet.console import quiet_model_loading
    from xdet.fluency import plan_fluency, run_fluency

    quiet_model_loading()
    import torch

    torch.set_num_threads(args.threads or idle_cores())
    plan = plan_fluency(args.folders, args.model, revision=args.revision, device=args.device,
                        dtype=None if args.dtype == "auto" else args.dtype, max_length=args.max_length)
    ref = plan.reference
    threads = f", {torch.get_num_threads()} thread(s)" if ref.device == "cpu" else ""
    print(f"reference: {ref.name} ({ref.architecture}, {ref.dtype} on {ref.device}{threads}, window {ref.max_length}, "
          f"identity {ref.ident}); {len(plan.todo)} samples file(s) to score, {len(plan.up_to_date)} up to date")

    def progress(index: int, total: int, path) -> None:
        print(f"  [{index}/{total}] {path}", flush=True)

    summary = run_fluency(plan, batch_size=args.batch_size, on_file=progress)
    print(f"xdet fluency: {summary.completions} completion(s): {summary.computed} scored by the model, "
          f"{summary.from_cache} from the cache, {summary.empty} empty (no tokens, no perplexity), "
          f"{summary.truncated} truncated to the window; {len(summary.written)} fluency file(s) written, "
          f"{len(plan.up_to_date)} up to date")
    print("next: xdet tables <results> --out <tables> --metric fluency")
    return 0
