"""P12: ``xdet fluency`` throughput on CPU (completions/s; goal >= 200 at batch 32 on a tiny reference model).

Builds the tiny llama of ``xdet_train.tiny`` (the tests' reference model) and a run folder holding one
samples file of ``--prompts`` prompts x ``--k`` completions, made of the paper's sentences in all nine
languages ("Complete the sentence: <toxic sentence>" followed by a neutral sentence, as a completion
of about the paper protocol's 50 new tokens). Times the whole command path, reading the samples file,
tokenizing, the cache, the forward passes and writing the fluency file: cold (empty cache), then warm
(fluency file deleted, every completion in the cache). Not a test::

    XDET_DATA_DIR=../shared/data/paradetox-splits python benchmarks/bench_fluency.py [--prompts 400] [--k 5]
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


def write_samples(folder: Path, prompts: int, k: int) -> Path:
    from xdet_tasks.suites.paradetox import load_pairs
    from xdet_tasks.suites.records import LANGUAGES

    pairs = [p for lang in LANGUAGES for p in load_pairs(lang, "test")]
    path = folder / "lm_eval" / "tiny" / "samples_xdet_toxic_test_de_2026-01-01T00-00-00.000000.jsonl"
    path.parent.mkdir(parents=True)
    lines = []
    for i in range(prompts):
        context = f"Complete the sentence: {pairs[i % len(pairs)].toxic}"
        completions = [" " + " ".join(pairs[(i * k + j + n) % len(pairs)].neutral for n in range(2))[:240]
                       for j in range(k)]
        lines.append(json.dumps({"doc_id": i, "arguments": {"gen_args_0": {"arg_0": context}}, "resps": [completions],
                                 "filter": "toxicity"}, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=400)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", default="1,2", help="torch thread counts to time (default: 1,2)")
    args = parser.parse_args()

    import torch

    from xdet.fluency import plan_fluency, run_fluency
    from xdet.fluency.cache import FluencyCache

    with tempfile.TemporaryDirectory(prefix="bench-fluency-") as tmp:
        root = Path(tmp)
        reference = tiny_llama(root / "reference")
        samples = write_samples(root / "run", args.prompts, args.k)
        rows = []
        for threads in map(int, args.threads.split(",")):
            torch.set_num_threads(threads)
            cache = FluencyCache(root / f"fluency-{threads}.sqlite3")  # cold: a new cache for each thread count
            for label in ("cold (empty cache)", "warm (all cached)"):
                for old in samples.parent.glob("fluency_*.jsonl"):
                    old.unlink()
                load = os.getloadavg()[0]
                start = time.perf_counter()
                plan = plan_fluency([root / "run"], str(reference), device="cpu")
                summary = run_fluency(plan, batch_size=args.batch, cache=cache)
                secs = time.perf_counter() - start
                rows.append([threads, label, summary.completions, summary.computed, summary.from_cache, f"{secs:.2f}",
                             f"{summary.completions / secs:,.0f}", f"{load:.1f}"])
        tokens = sum(json.loads(x)["tokens"][0] for x in next(samples.parent.glob("fluency_*")).read_text().splitlines()[1:])
    print(f"xdet fluency, tiny llama reference, batch {args.batch}, {args.prompts} prompts x {args.k} completions "
          f"(~{tokens / args.prompts:.0f} completion tokens each); {os.cpu_count()} CPU core(s)")
    print(tabulate(rows, headers=["threads", "run", "completions", "scored by model", "from cache", "seconds",
                                  "completions/s", "load average"], tablefmt="github"))


if __name__ == "__main__":
    main()
