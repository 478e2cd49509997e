"""A sweep on a real SLURM cluster, with the scheduler's accounting disabled and enabled: a job cancelled
with scancel, a job whose process is killed (SIGKILL), a job past its time limit and a job that raises
are each reported ``failed`` with the reason within 60 s of the job's end; Ctrl-C of the waiting driver
leaves the jobs running; nothing partial looks complete; a job the scheduler no longer knows is not
waited on; the rerun submits exactly the failed configurations.

One sweep holds every case (its training never ends by itself: ``--max-steps`` 10⁶, one-minute jobs;
two run at a time): ``x-ft-en`` runs into the time limit, ``x-ft-de`` is cancelled, ``x-ft-es``'s
process is killed, ``zs`` evaluates and completes, and ``m-ft`` raises (its adapter folder is a file).
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime
from pathlib import Path

import pytest
from slurm_cluster import CPU_JOBS, Driver, find_cluster

IDS = ["llama__x-ft-en", "llama__x-ft-de", "llama__x-ft-es", "llama__zs", "llama__m-ft"]
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING"}


def _argv(model: Path, out: Path, *extra: str) -> list[str]:
    return [
        "sweep", "--model", str(model), "--out", str(out), "--strategies", "x-ft,zs,m-ft",
        "--train-langs", "en,de,es", "--eval-langs", "de", "--families", "ppl", "--limit", "1", "--n-boot", "20",
        "--no-progress", "--max-steps", "1000000", "--train-batch-size", "2", "--grad-accum", "1",
        "--max-examples", "4", "--eval-examples", "0", "--max-length", "32",
        "--executor", "slurm", *CPU_JOBS, "--slurm-time", "1", *extra,
    ]


def _jobs(out: Path) -> dict[str, dict]:
    return json.loads((out / "slurm-jobs.json").read_text())["jobs"]


def _until(condition, cluster, jobs: dict[str, str], timeout: float = 300):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, cluster.jobs(list(jobs.values()))
        time.sleep(0.3)
    return value


def _line(driver: Driver, cid: str) -> tuple[float, str]:
    return driver.wait_for(rf"^\[\d\d:\d\d:\d\d\] {cid} \(job \S+\): ", timeout=5)


@pytest.mark.parametrize("accounting", [False, True], ids=["accounting-disabled", "accounting-enabled"])
def test_failed_jobs_are_reported_with_their_reason_and_only_they_rerun(accounting, tiny_model, tmp_path, tmp_path_factory):
    cluster = find_cluster(accounting, tmp_path_factory)
    model, out = tiny_model("llama"), tmp_path / "sweep"
    (out / "adapters").mkdir(parents=True)
    (out / "adapters" / "llama__m-ft").write_text("a file where the m-ft adapter folder goes\n")
    submitted: list[str] = []
    drivers: list[Driver] = []
    lock = cluster.exclusive()
    lock.acquire()  # its cases are timed by the job's order on the node's two CPUs: no other test's jobs there
    try:
        # submitted held (sbatch reads SBATCH_HOLD), so that however slow this machine is today no job can end
        # before both drivers below have attached to all five; released before the failures are made
        proc = cluster.xdet(*_argv(model, out, "--detach"), timeout=300, SBATCH_HOLD="1")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        first = {cid: entry["job"] for cid, entry in _jobs(out).items()}
        submitted += first.values()
        assert sorted(first) == sorted(IDS)
        assert "submitted 5 configuration(s) as SLURM job array" in proc.stdout

        # Ctrl-C of a waiting driver: one line, exit 130, the jobs go on
        waiting = Driver(cluster, _argv(model, out))
        drivers.append(waiting)
        _, attached = waiting.wait_for(r"still in flight|^submitted ")
        assert "5 job(s) of an earlier run still in flight" in attached, attached  # not submitted again
        time.sleep(0.5)
        assert waiting.interrupt() == 130
        last = waiting.err.strip().splitlines()[-1]
        assert last.startswith("xdet sweep: interrupted;") and "keep running" in last, waiting.err
        assert "rerun the same command to resume" in last and "Traceback" not in waiting.err
        after = cluster.jobs(list(first.values()))
        assert not any(after[j]["state"] == "CANCELLED" for j in first.values()), after
        assert any(after[j]["state"] in ACTIVE for j in first.values()), after

        # the rerun waits for the same jobs; meanwhile one is cancelled and one's process is killed
        driver = Driver(cluster, _argv(model, out))
        drivers.append(driver)
        _, attached = driver.wait_for(r"still in flight|^submitted ")
        assert "5 job(s) of an earlier run still in flight" in attached, attached
        for job in first.values():
            assert cluster.run("scontrol", "release", job).returncode == 0
        cancel, kill = first["llama__x-ft-de"], first["llama__x-ft-es"]
        _until(lambda: cluster.jobs([cancel]).get(cancel, {}).get("state") == "RUNNING", cluster, first)
        assert cluster.run("scancel", cancel).returncode == 0
        pids = _until(lambda: cluster.pids(kill), cluster, first)  # its Python, once srun has started it
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        assert driver.finish(timeout=300) == 1, driver.output()[-3000:] + driver.err[-3000:]
        printed = driver.output()
        assert "Bypassing" not in printed + driver.err and "Traceback" not in printed + driver.err

        ended = cluster.jobs(list(first.values()))
        expected = {
            "llama__x-ft-de": "failed: CANCELLED: cancelled",
            "llama__x-ft-es": "failed: FAILED: exited with an error (killed by signal 9)",
            "llama__x-ft-en": "failed: TIMEOUT: reached its time limit",
            "llama__m-ft": "failed: ",
        }
        latency = {}
        for cid, reason in expected.items():
            stamp, line = _line(driver, cid)
            assert reason in line, line
            end = datetime.fromisoformat(ended[first[cid]]["end"]).timestamp()
            latency[cid] = stamp - end
            assert latency[cid] <= 60, f"{cid}: reported {latency[cid]:.0f} s after the job ended: {line}"
        assert "llama__m-ft" in _line(driver, "llama__m-ft")[1] and "m-ft" in _line(driver, "llama__m-ft")[1]
        assert "done in" in _line(driver, "llama__zs")[1]
        print(f"failure-detection latency ({cluster.name}): " + ", ".join(f"{c} {s:.1f} s" for c, s in latency.items()))

        # nothing partial looks complete; the tables hold what is complete
        assert (out / "runs" / "llama__zs" / "xdet_run.json").is_file()
        for cid in expected:
            assert not (out / "runs" / cid / "xdet_run.json").exists(), cid
            assert not (out / "adapters" / cid / "xdet_adapter.json").exists(), cid
        assert "tables: " in printed and "(from 1 of 5 configuration(s))" in printed

        # a job the scheduler no longer knows (purged after MinJobAge, or lost with its controller's state)
        # is reported at once, and the rerun submits exactly the failed configurations
        (out / "adapters" / "llama__m-ft").unlink()
        record = json.loads((out / "slurm-jobs.json").read_text())
        record["jobs"]["llama__m-ft"] = {"job": "999999_0", "submitted": "2026-01-01T00:00:00+00:00"}
        (out / "slurm-jobs.json").write_text(json.dumps(record))
        rerun = cluster.xdet(*_argv(model, out, "--detach"), timeout=300)
        assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
        again = _jobs(out)
        submitted += [e["job"] for e in again.values()]
        assert "llama__m-ft (job 999999_0): failed: the scheduler no longer knows the job" in rerun.stdout
        assert "submitted 4 configuration(s)" in rerun.stdout
        assert again["llama__zs"]["job"] == first["llama__zs"]
        assert all(again[c]["job"] not in (first[c], "999999_0") for c in expected)
        assert "| llama__zs " in rerun.stdout and " skipped " in rerun.stdout.split("| llama__zs ")[1].split("\n")[0]
    finally:  # nothing of this test keeps running, whatever failed
        for running in drivers:
            if running.proc.poll() is None:
                running.proc.kill()
        if (out / "slurm-jobs.json").is_file():
            submitted += [e["job"] for e in _jobs(out).values()]
        arrays = sorted({j.split("_")[0] for j in submitted if not j.startswith("999999")})
        if arrays:
            cluster.run("scancel", *arrays)
        lock.release()
