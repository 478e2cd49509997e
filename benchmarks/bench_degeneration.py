"""P13: what repetition, distinct-n and toxicity at k add to an evaluation at the Li et al. protocol.

An ``xdet eval`` of one generation task under ``--protocol li2024`` (25 samples per prompt, 20 new
tokens, temperature 0.9, top-p 0.8), then the per-prompt functions this round added
(:func:`xdet_tasks.metrics.diversity.diversity_sample_metrics` and
:func:`xdet_tasks.metrics.at_k.at_k_sample_metrics`) timed alone on that run's own completions and
scores, as ``process_toxicity`` calls them (the fastest of ``--timing-repeats`` passes). Their share
of the evaluation's time is what they add to it, given in wall and in this process's CPU time (the
machine is shared: wall times swing with the load, CPU times much less). The model is a random-weight Llama of
xdet_train.tiny's ``toy`` size (2 M parameters), so the evaluation is as short as one can be and the
share an upper bound: a real model spends far longer generating the same completions. A second
line times the same functions on longer completions (each prompt's 25 joined into one, ten of them per
prompt, as PTP's K = 10 with its 512-token budget would give).

Not a test; prints one table::

    python benchmarks/bench_degeneration.py [--prompts 100] [--lang de]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from tabulate import tabulate
from tiny import tiny_llama

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("XDET_SCORER", "local")


def _prompts(run: Path) -> list[tuple[list[str], list[float]]]:
    from xdet_tasks.scoring.completions import parse_record

    (path,) = run.glob("lm_eval/**/samples_*.jsonl")
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        records = [parse_record(r) for r in json.loads(line)["filtered_resps"][0]]
        out.append(([r["text"] for r in records], [r["toxicity"] for r in records]))
    return out


def _time_metrics(prompts: list[tuple[list[str], list[float]]], repeats: int) -> tuple[float, float]:
    """Fastest wall and CPU seconds of one pass over every prompt."""
    from xdet_tasks.metrics.at_k import at_k_sample_metrics
    from xdet_tasks.metrics.diversity import diversity_sample_metrics

    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        for texts, scores in prompts:
            diversity_sample_metrics(texts)
            at_k_sample_metrics(scores)
        best, best_cpu = min(best, time.perf_counter() - start), min(best_cpu, time.process_time() - cpu_start)
    return best, best_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=100, help="documents evaluated (lm-eval --limit)")
    parser.add_argument("--lang", default="de", help="language of the xdet_toxic_test task")
    parser.add_argument("--size", default="toy", choices=("tiny", "toy"))
    parser.add_argument("--timing-repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from xdet.evaluate import run_eval
    from xdet_tasks.metrics.units import text_units

    model = str(tiny_llama(size=args.size))
    task = f"xdet_toxic_test_{args.lang}"
    with tempfile.TemporaryDirectory(prefix="xdet-bench-degen-") as tmp:
        run_eval(model, Path(tmp) / "warm", tasks=[task], limit=2, protocol="li2024", device="cpu")  # scorer ready
        start, cpu_start = time.perf_counter(), time.process_time()
        run = run_eval(model, Path(tmp) / "run", tasks=[task], limit=args.prompts, protocol="li2024", device="cpu")
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        prompts = _prompts(run)
    completions = sum(len(texts) for texts, _ in prompts)
    units = sum(len(text_units(t)) for texts, _ in prompts for t in texts) / completions
    added, added_cpu = _time_metrics(prompts, args.timing_repeats)
    # PTP-sized completions: each prompt's 25 completions joined into one text, 10 such per prompt
    long = [([" ".join(texts)] * 10, scores[:10]) for texts, scores in prompts]
    long_units = sum(len(text_units(t)) for texts, _ in long for t in texts) / (10 * len(long))
    long_added, long_cpu = _time_metrics(long, args.timing_repeats)
    rows = [
        ["li2024: 25 × 20 tokens", len(prompts), completions, f"{units:.1f}", f"{wall:.1f} ({cpu:.1f})",
         f"{added:.3f} ({added_cpu:.3f})", f"{added / completions * 1e6:.0f}",
         f"{100 * added / wall:.2f} % ({100 * added_cpu / cpu:.2f} %)"],
        ["PTP-length: 10 per prompt", len(long), 10 * len(long), f"{long_units:.0f}", "—",
         f"{long_added:.3f} ({long_cpu:.3f})", f"{long_added / (10 * len(long)) * 1e6:.0f}", "—"],
    ]
    print(tabulate(rows, headers=["completions", "prompts", "n", "units each", "xdet eval s (CPU s)",
                                  "metrics s (CPU s)", "µs/completion", "share of eval (CPU)"], tablefmt="github"))
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
