"""P5: ``xdet demo`` wall time and peak memory, end to end (toy model build included).

Runs ``python -m xdet demo`` in a child process with an empty ``XDET_CACHE_DIR`` (so the
local scorer and the toy LM are built too) and reports its wall time and peak resident memory
(``ru_maxrss`` of the child). Budget: 5 minutes on the 2-core machine. Not a test::

    XDET_DATA_DIR=../shared/data/paradetox-splits python benchmarks/bench_demo.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", help="folder for the demo output and cache (default: a temp dir)")
    parser.add_argument("extra", nargs="*", help="extra `xdet demo` arguments")
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="xdet-bench-demo-"))
    env = {**os.environ, "XDET_CACHE_DIR": str(work / "cache"), "HF_HUB_OFFLINE": "1"}
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "xdet", "demo", "--out", str(work / "xdet-demo"),
                           "--no-progress", *args.extra], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    tail = "\n".join(line for line in proc.stdout.splitlines() if not line.startswith(("INFO", "WARNING")))
    print(tail[-2500:])
    print(f"\nexit {proc.returncode}; wall {wall:.0f} s (budget 300 s); peak RSS {peak_mb:.0f} MiB; "
          f"{os.cpu_count()} core(s), load average at start {load:.1f}; output {work}")
    if proc.returncode:
        print(proc.stderr[-3000:], file=sys.stderr)
        sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
