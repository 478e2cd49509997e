"""P8: the SLURM driver's own overhead per configuration (submission, polling, collection) vs the jobs' run time.

Needs a running SLURM cluster (``.ci/slurm-up`` as root brings up the single-node test cluster; pass
its ``SLURM_CONF`` for the other one). Two measurements, both through the installed ``xdet`` script as
a user runs it:

1. a waiting sweep of ``--configs`` small configurations (a tiny Llama: ZS and X-FT, generation +
   perplexity tasks of de/es/en), two jobs at once: the driver's wall time before its ``submitted``
   line (start-up, checks, pickling, ``sbatch``), each job's end (the scheduler's ``EndTime``) to the
   driver's line for it (polling), the last job line to the driver's exit (summary and tables), and
   the driver's CPU time, against the jobs' own run time (``squeue``'s elapsed);
2. ``--detach`` submission of the paper-sized matrix (4 models x 12 strategies = 48 configurations),
   timed and then cancelled: what submission costs per configuration at scale.

Not a test::

    python benchmarks/bench_slurm.py [--configs 4] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from tabulate import tabulate
from tiny import tiny_llama

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")
XDET = str(Path(sys.executable).with_name("xdet"))
CPU_JOBS = ["--executor", "slurm", "--slurm-gpus", "0", "--slurm-cpus", "1", "--slurm-mem-gb", "2", "--slurm-time", "30"]
SMALL = ["--eval-langs", "de,es,en", "--families", "gen,ppl", "--limit", "2", "--n-boot", "50", "--no-progress",
         "--scorer", "local", "--max-steps", "2", "--train-batch-size", "4", "--grad-accum", "1",
         "--max-examples", "8", "--eval-examples", "0", "--max-length", "48"]


def _timed_run(argv: list[str]) -> tuple[list[tuple[float, str]], float, float, float]:
    """Run ``xdet -v argv``: (seconds since start, line) of its stdout, its wall and CPU time (user +
    system), and the seconds its submission took (pickling + sbatch, from its -v log)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.time()
    proc = subprocess.Popen([XDET, "-v", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    lines: list[tuple[float, str]] = []
    errors: list[str] = []
    readers = [threading.Thread(target=lambda: lines.extend((time.time(), ln.rstrip()) for ln in proc.stdout)),
               threading.Thread(target=lambda: errors.extend(proc.stderr))]
    for reader in readers:
        reader.start()
    if proc.wait() != 0:
        raise SystemExit(f"xdet {' '.join(argv)} failed:\n" + "\n".join(ln for _, ln in lines) + "".join(errors))
    for reader in readers:
        reader.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    match = next(m for m in (re.search(r"\(pickling \+ sbatch\) took ([\d.]+) s", e) for e in errors) if m)
    return [(t - start, ln) for t, ln in lines], time.time() - start, cpu, float(match.group(1))


def _squeue(job_ids: list[str]) -> dict[str, list[str]]:
    arrays = ",".join(sorted({j.split("_")[0] for j in job_ids}))
    out = subprocess.run(["squeue", "--noheader", "--array", "--states=all", f"--jobs={arrays}",
                          "--format=%i|%S|%e|%M"], capture_output=True, text=True, check=True).stdout
    return {f[0]: f[1:] for f in (line.split("|") for line in out.split()) if len(f) == 4}


def _elapsed(text: str) -> float:
    days, _, rest = text.rpartition("-")
    total = 0
    for part in rest.split(":"):
        total = total * 60 + int(part)
    return total + int(days or 0) * 86400


def waiting_sweep(model: Path, work: Path, configs: int) -> list[list]:
    langs = ["de", "es", "en", "ru", "uk", "am", "ar", "hi", "zh"][: configs - 1]
    out = work / "sweep"
    shutil.rmtree(out, ignore_errors=True)
    argv = ["sweep", "--model", str(model), "--out", str(out), "--strategies", "zs,x-ft", "--train-langs",
            ",".join(langs), *SMALL, *CPU_JOBS, "--slurm-parallel", "2"]
    start = time.time()
    lines, wall, cpu, submission = _timed_run(argv)
    submitted = next(t for t, ln in lines if ln.startswith("submitted "))
    jobs = {cid: e["job"] for cid, e in json.loads((out / "slurm-jobs.json").read_text())["jobs"].items()}
    seen = _squeue(list(jobs.values()))
    latency, runtime, span = [], [], []
    for cid, job in jobs.items():
        begin, end, elapsed = seen[job]
        (stamp,) = [t for t, ln in lines if f"] {cid} (job {job}):" in ln]
        latency.append(start + stamp - datetime.fromisoformat(end).timestamp())
        runtime.append(_elapsed(elapsed))
        span += [datetime.fromisoformat(begin).timestamp() - start, datetime.fromisoformat(end).timestamp() - start]
    last_line = max(t for t, ln in lines if "(job " in ln)
    collect = wall - last_line
    n = len(jobs)
    fixed = submitted - submission + collect  # start-up and checks, summary and tables: once per command
    per_config = submission / n + sum(latency) / n
    return [
        ["configurations (jobs)", n],
        ["start-up and checks before submitting (s, once)", f"{submitted - submission:.1f}"],
        ["submission: pickling + sbatch (s per configuration)", f"{submission / n:.2f}"],
        ["polling: job end -> driver's line (s per job, mean / max)", f"{sum(latency) / n:.1f} / {max(latency):.1f}"],
        ["collection: last job line -> exit, summary + tables (s, once)", f"{collect:.1f}"],
        ["**SLURM driver overhead per configuration: submission + polling (s)**", f"**{per_config:.1f}**"],
        [f"all driver overhead per configuration, this sweep of {n} (s)", f"{(fixed + per_config * n) / n:.1f}"],
        ["all driver overhead per configuration, 48 configurations (s, projected)",
         f"{(fixed + per_config * 48) / 48:.1f}"],
        ["driver CPU time, whole command (s)", f"{cpu:.1f}"],
        ["job run time (s per job, mean)", f"{sum(runtime) / n:.1f}"],
        ["wall time of the sweep / first job start -> last job end (s)", f"{wall:.0f} / {max(span) - min(span):.0f}"],
    ]


def paper_sized_submission(model: Path, work: Path) -> list[list]:
    models = []
    for i in range(4):  # four distinct model folders, as the paper's four models
        copy = work / f"model-{i}"
        if not copy.exists():
            shutil.copytree(model, copy)
        models += ["--model", str(copy)]
    out = work / "paper"
    shutil.rmtree(out, ignore_errors=True)
    argv = ["sweep", *models, "--out", str(out), "--strategies", "zs,x-ft,p-ft,m-ft", *SMALL, *CPU_JOBS, "--detach"]
    try:
        lines, wall, cpu, submission = _timed_run(argv)
    finally:
        record = out / "slurm-jobs.json"
        if record.is_file():
            arrays = {e["job"].split("_")[0] for e in json.loads(record.read_text())["jobs"].values()}
            subprocess.run(["scancel", *arrays], check=False)
    n = len(json.loads((out / "slurm-jobs.json").read_text())["jobs"])
    return [["configurations (one array)", n], ["submission: pickling + sbatch (s)", f"{submission:.2f}"],
            ["**submission per configuration (s)**", f"**{submission / n:.3f}**"],
            ["whole --detach command, start-up and checks included (s)", f"{wall:.1f}"],
            ["whole command per configuration (s)", f"{wall / n:.2f}"], ["driver CPU time (s)", f"{cpu:.1f}"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", type=int, default=4, help="configurations in the waiting sweep (2-10)")
    parser.add_argument("--workdir", help="where to build the tiny model and the sweeps (default: a temp dir)")
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="xdet-bench-slurm-")).resolve()
    model = work / "tiny-llama"
    tiny_llama(model)
    print(tabulate(waiting_sweep(model, work, args.configs), headers=["waiting sweep", "value"], tablefmt="github"))
    print()
    print(tabulate(paper_sized_submission(model, work), headers=["--detach, paper-sized matrix", "value"],
                   tablefmt="github"))


if __name__ == "__main__":
    main()
