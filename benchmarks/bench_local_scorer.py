"""P4: throughput of the offline ``local`` scorer (texts/s; goal >= 5,000 on two cores).

Scores the test sentences of all nine languages (toxic and neutral, repeated to ``--texts``) in
batches of ``--batch`` through ``Scorer.score``, the call the lm-eval filter makes. The scorer is
loaded from its cache (trained first if absent; that time is reported separately). Not a test::

    python benchmarks/bench_local_scorer.py [--texts 20000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import os
import time

from tabulate import tabulate

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()

    from xdet_tasks.scoring.local import load_or_train
    from xdet_tasks.suites.paradetox import load_pairs
    from xdet_tasks.suites.records import LANGUAGES

    t0 = time.perf_counter()
    scorer = load_or_train()
    load_s = time.perf_counter() - t0
    pool = [t for lang in LANGUAGES for p in load_pairs(lang, "test") for t in (p.toxic, p.neutral)]
    texts = (pool * (args.texts // len(pool) + 1))[: args.texts]
    rows = []
    for batch in sorted({1, 100, args.batch}):
        n = min(len(texts), 2000) if batch == 1 else len(texts)
        start = time.perf_counter()
        scored = 0
        for i in range(0, n, batch):
            scored += sum(s is not None for s in scorer.score(texts[i: i + batch], "en"))
        secs = time.perf_counter() - start
        rows.append([batch, n, scored, f"{secs:.2f}", f"{n / secs:,.0f}"])
    print(f"local scorer {scorer.version}: loaded/trained in {load_s:.1f} s; {os.cpu_count()} CPU core(s), "
          f"load average {os.getloadavg()[0]:.1f}")
    print(tabulate(rows, headers=["batch", "texts", "scored", "seconds", "texts/s"], tablefmt="github"))


if __name__ == "__main__":
    main()
