"""Throughput of the Perspective client against a local fake server with a quota and latency.

Compares xdet's client (requests paced ``1/qps`` apart, several in flight) with the paper scorer's
pattern (one request, then ``sleep(1)``), both through google-api-python-client and the shipped
discovery document, against ``tests/fake_perspective.py`` answering with a fixed latency and
returning HTTP 429 for every request over its quota. Not a test: run it and read the table::

    python benchmarks/bench_perspective.py [--qps 10] [--latency 0.2] [--requests 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fake_perspective import FakePerspective  # noqa: E402

KEY = "bench-key"


def _texts(n: int, tag: str) -> list[str]:
    return [f"Benchmark sentence {tag} number {i}." for i in range(n)]


def run_ours(fake: FakePerspective, qps: float, n: int) -> dict:
    from xdet_tasks.scoring.perspective import PerspectiveScorer
    from xdet_tasks.scoring.perspective_options import PerspectiveOptions

    scorer = PerspectiveScorer(PerspectiveOptions.parse(f"qps={qps},url={fake.url}", env={}))
    start = time.monotonic()
    scores = scorer.score(_texts(n, "ours"), "en")
    return {"elapsed": time.monotonic() - start, "scored": sum(s is not None for s in scores),
            "retries": scorer.counts["retries"]}


def run_sleep_one_second(fake: FakePerspective, n: int) -> dict:
    """The paper scorer's loop: request, wait for the answer, sleep one second, repeat."""
    import httplib2
    from googleapiclient.discovery import build_from_document

    from xdet_tasks.scoring.perspective import DISCOVERY_DOCUMENT

    service = build_from_document(DISCOVERY_DOCUMENT.read_text(), developerKey=KEY,
                                  client_options={"api_endpoint": fake.url}, http=httplib2.Http())
    scored = 0
    start = time.monotonic()
    for text in _texts(n, "sleep"):
        body = {"comment": {"text": text}, "requestedAttributes": {"TOXICITY": {}}, "languages": ["en"]}
        response = service.comments().analyze(body=body).execute()
        scored += "attributeScores" in response
        time.sleep(1.0)
    return {"elapsed": time.monotonic() - start, "scored": scored, "retries": 0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qps", type=float, default=10.0, help="the fake server's quota (requests/s)")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per response")
    parser.add_argument("--requests", type=int, default=200, help="texts for xdet's client")
    parser.add_argument("--baseline-requests", type=int, default=15, help="texts for the sleep-1s client")
    args = parser.parse_args(argv)
    os.environ["PERSPECTIVE_API_KEY"] = KEY

    rows = []
    for name, runner, n in (
        ("xdet client (paced, concurrent)", lambda f: run_ours(f, args.qps, args.requests), args.requests),
        ("one request, then sleep 1 s", lambda f: run_sleep_one_second(f, args.baseline_requests),
         args.baseline_requests),
    ):
        with FakePerspective(key=KEY, latency=args.latency) as fake:
            fake.set_quota(args.qps)
            result = runner(fake)
            throughput = result["scored"] / result["elapsed"]
            rows.append([name, n, result["scored"], f"{result['elapsed']:.2f}", f"{throughput:.2f}",
                         f"{100 * throughput / args.qps:.1f}%", fake.quota_429s, result["retries"]])
    print(f"fake Perspective: quota {args.qps:g} QPS, latency {args.latency * 1000:.0f} ms")
    print(tabulate(rows, headers=["client", "texts", "scored", "seconds", "texts/s", "of quota", "429s (quota)",
                                  "retries"], tablefmt="github"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
