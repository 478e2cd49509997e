"""P3: re-running a finished configuration -- scorer calls and wall time (goal: zero calls).

Runs one small sweep configuration (X-FT on de of a tiny model, generation + perplexity tasks of
three languages) to completion, then runs the identical sweep again, counting calls of the local
scorer's ``score`` in this process. Not a test::

    python benchmarks/bench_rerun.py [--limit 8] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from tabulate import tabulate
from tiny import tiny_llama

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--workdir", help="where to build the tiny model and the sweep (default: a temp dir)")
    args = parser.parse_args()

    from xdet.sweep.configuration import SweepSettings
    from xdet.sweep.run import sweep
    from xdet_tasks.scoring.local import LocalScorer
    from xdet_train.config import TrainConfig

    work = Path(args.workdir or tempfile.mkdtemp(prefix="xdet-bench-rerun-"))
    model = work / "tiny-llama"
    tiny_llama(model)
    calls = {"n": 0, "texts": 0}
    original = LocalScorer.score

    def counting(self, texts, lang):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        calls["texts"] += len(texts)
        return original(self, texts, lang)

    LocalScorer.score = counting  # type: ignore[method-assign]
    settings = SweepSettings(
        out=str(work / "sweep"), eval_langs=("de", "es", "en"), families=("gen", "ppl"), limit=args.limit,
        scorer="local", train=TrainConfig(max_steps=4, batch_size=4, grad_accum=1, max_examples=16, eval_examples=0),
    )
    rows = []
    for label in ("first run", "re-run (finished)"):
        calls.update(n=0, texts=0)
        start = time.perf_counter()
        outcomes = sweep([str(model)], ["x-ft:de"], settings, progress=False, n_boot=200)
        secs = time.perf_counter() - start
        rows.append([label, outcomes[0].status, outcomes[0].adapter, calls["n"], calls["texts"], f"{secs:.1f}"])
    print(f"{os.cpu_count()} core(s), load average {os.getloadavg()[0]:.1f}; sweep folder {work / 'sweep'}")
    print(tabulate(rows, headers=["run", "status", "adapter", "scorer calls", "texts scored", "seconds"],
                   tablefmt="github"))


if __name__ == "__main__":
    main()
