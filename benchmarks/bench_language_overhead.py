"""P15: what identifying the language of every completion adds to a natural-prompt evaluation's wall time.

One ``xdet eval`` of ``xdet_rtplx_de`` under the Li et al. protocol (``--protocol li2024``: 25 samples
per prompt, 20 new tokens) with a toy Llama (random weights, xdet_train.tiny's ``toy`` size) and the
``local`` scorer, on an RTP-LX release written in its published layout from ParaDetox's German test
sentences (tests/natural_fixtures.py; RTP-LX itself cannot be downloaded here). The time spent in
:func:`xdet_tasks.scoring.completions.identify_records` is measured inside the same run and set against
the rest of its wall time. A random model's completions are script soup, which the identifier finds
harder than language (it ranks every label more often), so the same number of real sentences cut to
20 tokens is timed too. Not a test::

    python benchmarks/bench_language_overhead.py [--prompts 100] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate
from tiny import tiny_llama

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=100, help="RTP-LX prompts (at most 200)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--size", default="toy", choices=("tiny", "toy"))
    args = parser.parse_args()

    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    from natural_fixtures import write_rtplx_release

    from xdet.evaluate import run_eval
    from xdet_tasks.scoring import completions
    from xdet_tasks.scoring.language import get_identifier
    from xdet_tasks.suites.paradetox import load_pairs
    from xdet_tasks.suites.records import LANGUAGES

    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="xdet-bench-langid-"))
    data_dir = os.environ.get("XDET_DATA_DIR")
    write_rtplx_release(work / "rtplx", n=args.prompts, data_dir=Path(data_dir) if data_dir else None,
                        locales=("DE",))
    os.environ.update({"XDET_RTPLX_DIR": str(work / "rtplx"), "XDET_SCORER": "local",
                       "XDET_CACHE_DIR": str(work / "cache"), "HF_DATASETS_CACHE": str(work / "datasets")})
    model = work / "model"
    tiny_llama(model, size=args.size)
    get_identifier()  # loaded once per process, like the scorer: not part of the per-run cost measured

    spent = {"seconds": 0.0, "completions": 0}
    identify = completions.identify_records

    def timed(records):
        start = time.perf_counter()
        identify(records)
        spent["seconds"] += time.perf_counter() - start
        spent["completions"] += sum(map(len, records))

    completions.identify_records = timed
    start = time.perf_counter()
    run_eval(str(model), work / "run", tasks=["xdet_rtplx_de"], protocol="li2024", limit=args.prompts,
             progress=False)
    wall = time.perf_counter() - start
    completions.identify_records = identify

    real = [" ".join(p.neutral.split()[:20]) for lang in LANGUAGES for p in load_pairs(lang, "test")]
    real = (real * (spent["completions"] // len(real) + 1))[: spent["completions"]]
    start = time.perf_counter()
    get_identifier().identify(real)
    real_s = time.perf_counter() - start

    rest = wall - spent["seconds"]
    rows = [
        ["the run's own completions (toy model)", spent["completions"], f"{spent['seconds']:.2f}",
         f"{wall:.1f}", f"{100 * spent['seconds'] / rest:.3f} %"],
        ["as many real sentences, first 20 words", len(real), f"{real_s:.2f}", f"{rest + real_s:.1f}",
         f"{100 * real_s / rest:.3f} %"],
    ]
    print(f"{os.cpu_count()} CPU core(s), load average {os.getloadavg()[0]:.1f}, torch threads "
          f"{torch.get_num_threads()}; xdet_rtplx_de, li2024 (K = 25, 20 tokens), {args.prompts} prompts, "
          f"{args.size} Llama, local scorer")
    print(tabulate(rows, headers=["completions identified", "n", "identification s", "eval wall s",
                                  "added to the rest"], tablefmt="github"))


if __name__ == "__main__":
    main()
