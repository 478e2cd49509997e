"""Two processes on one output folder: a configuration or run folder is claimed, never worked on twice.

The process tests run the installed ``xdet`` command through a wrapper that appends one line to a log
each time transformers' ``Trainer.train`` or lm-eval's ``simple_evaluate`` is entered (the libraries'
own entry points, counted, not replaced), so "trained once" is counted where the work happens. The
second process is started while the first holds its claim (the first is paused with SIGSTOP there), so
the contention happens on every run, not by luck of timing.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pytest

from xdet.claims import STALE_AFTER_S, Busy, ClaimError, claim, claim_file, current_owner

ROOT = Path(__file__).resolve().parents[1]
COUNTED = textwrap.dedent(
    """
    import os, sys
    import lm_eval, transformers

    def note(what, where):
        with open(os.environ["XDET_TEST_CALLS"], "a") as fh:
            fh.write(f"{what}\\t{os.getpid()}\\t{where}\\n")

    train = transformers.Trainer.train
    def counted_train(self, *args, **kwargs):
        note("train", self.args.output_dir)
        return train(self, *args, **kwargs)
    transformers.Trainer.train = counted_train

    evaluate = lm_eval.simple_evaluate
    def counted_evaluate(*args, **kwargs):
        note("evaluate", kwargs.get("model_args", ""))
        return evaluate(*args, **kwargs)
    lm_eval.simple_evaluate = counted_evaluate

    from xdet.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)
TRAIN = ["--max-steps", "4", "--train-batch-size", "2", "--grad-accum", "1", "--max-examples", "8",
         "--eval-examples", "0", "--max-length", "48"]


class Xdet:
    """``xdet argv`` (counted) in the background, its stdout and stderr in one log file."""

    def __init__(self, argv: list[str], calls: Path, log: Path):
        self.log = log
        env = os.environ | {"OMP_NUM_THREADS": "1", "XDET_TEST_CALLS": str(calls), "TOKENIZERS_PARALLELISM": "false"}
        with log.open("ab") as fh:
            self.proc = subprocess.Popen([sys.executable, "-c", COUNTED, *argv], cwd=ROOT, env=env, stdout=fh,
                                         stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{what}: not seen (exit {self.proc.poll()}); output:\n{self.text()[-3000:]}")
            time.sleep(0.02)

    def finish(self, timeout: float = 600) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()


def _calls(path: Path, what: str) -> list[tuple[int, str]]:
    if not path.exists():
        return []
    rows = [line.split("\t", 2) for line in path.read_text(encoding="utf-8").splitlines()]
    return [(int(pid), where) for kind, pid, where in rows if kind == what]


def _trained(path: Path) -> Counter:
    """Trainings per configuration: the trainer works in ``.<id>.<random>.partial/_trainer``."""
    return Counter(re.search(r"/\.([\w.-]+?__[\w-]+)\.[^/]+\.partial/", where).group(1)
                   for _, where in _calls(path, "train"))


def _evaluated(path: Path) -> Counter:
    """Evaluations per adapter (``zs``: none), from the model arguments lm-eval was given."""
    found: Counter = Counter()
    for _, where in _calls(path, "evaluate"):
        adapter = re.search(r"peft=[^,]*/([\w.-]+)", where)
        found[adapter.group(1) if adapter else "zs"] += 1
    return found


def _holder(folder: Path) -> int | None:
    """The process a claim file names, once it is written."""
    try:
        return json.loads(claim_file(folder).read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


def _sweep(model: Path, out: Path, *extra: str) -> list[str]:
    return ["sweep", "--model", str(model), "--out", str(out), "--eval-langs", "de", "--families", "ppl",
            "--limit", "2", "--n-boot", "20", "--no-progress", *TRAIN, *extra]


# --------------------------------------------------------------------------------------------- real processes


def _second_beside_a_paused_first(argv, calls, tmp_path, first_ready, second_sees) -> tuple[Xdet, Xdet]:
    """Start ``argv``; once ``first_ready(first)``, stop it (SIGSTOP) and start the same command again; once
    ``second_sees(first, second)``, let the first go on; both must finish with 0."""
    first = Xdet(argv, calls, tmp_path / "first.log")
    second = None
    try:
        first.wait_until(lambda: first_ready(first), "the first process")
        first.proc.send_signal(signal.SIGSTOP)
        second = Xdet(argv, calls, tmp_path / "second.log")
        second.wait_until(lambda: second_sees(first, second), "the second process")
        first.proc.send_signal(signal.SIGCONT)
        assert (first.finish(), second.finish()) == (0, 0), first.text()[-3000:] + second.text()[-3000:]
    finally:
        first.stop()
        if second is not None:
            second.stop()
    return first, second


def test_two_sweeps_on_one_folder_run_each_configuration_once(tiny_model, tmp_path):
    out, calls = tmp_path / "sweep", tmp_path / "calls.tsv"
    argv = _sweep(tiny_model("llama"), out, "--strategies", "zs,x-ft", "--train-langs", "de,es")
    # the first holds the claim on x-ft-de, mid-training, while the second starts
    first, second = _second_beside_a_paused_first(
        argv, calls, tmp_path, lambda first: any((out / "adapters").glob(".llama__x-ft-de.*.partial")),
        lambda first, second: f"llama__x-ft-de: claimed by pid {first.pid}" in second.text()
        or second.proc.poll() is not None)
    claimed = f"llama__x-ft-de: claimed by pid {first.pid}"
    assert _trained(calls) == {"llama__x-ft-de": 1, "llama__x-ft-es": 1}, _calls(calls, "train")
    assert _evaluated(calls) == {"zs": 1, "llama__x-ft-de": 1, "llama__x-ft-es": 1}, _calls(calls, "evaluate")
    assert claimed in second.text()
    assert [pid for pid, where in _calls(calls, "train") if "x-ft-de" in where] == [first.pid]
    assert "waiting for 1 configuration(s) claimed by other processes: llama__x-ft-de" in second.text()
    for run in (first, second):  # each one's tables hold every configuration, its own and the other's
        assert "(from 3 of 3 configuration(s))" in run.text() and re.search(r"\d done, \d skipped, 0 failed", run.text())
    assert not list(out.rglob("*.claim"))


def test_a_killed_sweeps_claim_is_taken_over_by_the_next_run(tiny_model, tmp_path):
    out, calls = tmp_path / "sweep", tmp_path / "calls.tsv"
    argv = _sweep(tiny_model("llama"), out, "--strategies", "x-ft", "--train-langs", "de")
    killed = Xdet(argv, calls, tmp_path / "killed.log")
    try:
        killed.wait_until(lambda: any((out / "adapters").glob(".llama__x-ft-de.*.partial")), "training")
        killed.proc.send_signal(signal.SIGKILL)
        killed.proc.wait()
    finally:
        killed.stop()
    left = claim_file(out / "runs" / "llama__x-ft-de")
    assert json.loads(left.read_text())["pid"] == killed.pid  # SIGKILL leaves the claim behind
    start = time.monotonic()
    rerun = Xdet(argv, calls, tmp_path / "rerun.log")
    assert rerun.finish(timeout=180) == 0, rerun.text()[-3000:]  # about 25 s: it does not wait for the dead
    assert f"taking over the claim of pid {killed.pid}" in rerun.text() and "has ended" in rerun.text()
    assert [pid for pid, _ in _calls(calls, "train") if pid != killed.pid] == [rerun.pid]
    assert _evaluated(calls) == {"llama__x-ft-de": 1}
    assert not left.exists() and time.monotonic() - start < 180


def test_a_second_eval_waits_for_the_first_then_skips(tiny_model, tmp_path):
    out, calls = tmp_path / "run", tmp_path / "calls.tsv"
    argv = ["eval", "--model", str(tiny_model("llama")), "--out", str(out), "--tasks", "xdet_ppl_toxic_test_de",
            "--limit", "3"]
    first, second = _second_beside_a_paused_first(
        argv, calls, tmp_path, lambda first: _holder(out) == first.pid,
        lambda first, second: "another process is evaluating into it" in second.text())
    assert "already complete, skipping" in second.text()
    assert [pid for pid, _ in _calls(calls, "evaluate")] == [first.pid]
    assert not claim_file(out).exists()

    # killed mid-evaluation: the rerun takes the claim over at once and redoes the run
    again, calls2 = tmp_path / "again", tmp_path / "calls2.tsv"
    argv = [*argv[:4], str(again), *argv[5:]]
    killed = Xdet(argv, calls2, tmp_path / "killed.log")
    try:
        killed.wait_until(lambda: _holder(again) == killed.pid, "the evaluation")
        killed.proc.send_signal(signal.SIGKILL)
        killed.proc.wait()
    finally:
        killed.stop()
    assert claim_file(again).exists()
    rerun = Xdet(argv, calls2, tmp_path / "rerun.log")
    assert rerun.finish(timeout=180) == 0, rerun.text()[-3000:]
    assert f"taking over the claim of pid {killed.pid}" in rerun.text()
    assert [pid for pid, _ in _calls(calls2, "evaluate") if pid != killed.pid] == [rerun.pid]
    assert (again / "xdet_run.json").is_file() and not claim_file(again).exists()


# --------------------------------------------------------------------------------------------- who holds a claim


def _write_claim(folder: Path, **fields) -> Path:
    path = claim_file(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(current_owner()) | fields))
    return path


def _taken(folder: Path) -> list[str]:
    """Claim ``folder`` without waiting; what was said about a takeover."""
    notes: list[str] = []
    with claim(folder, wait=False, notify=notes.append):
        assert json.loads(claim_file(folder).read_text())["pid"] == os.getpid()
    assert not claim_file(folder).exists()
    return notes


def test_an_owner_that_cannot_be_checked_holds_until_its_heartbeat_stops(tmp_path):
    folder = tmp_path / "run"
    path = _write_claim(folder, host="node-17", machine="another-boot/pid:[1]", pid=4242, slurm_job=None)
    with pytest.raises(Busy, match="pid 4242 on node-17"):
        with claim(folder, wait=False):
            pass
    old = time.time() - STALE_AFTER_S - 60
    os.utime(path, (old, old))
    (note,) = _taken(folder)
    assert "taking over the claim of pid 4242 on node-17" in note and "not refreshed for 11 min" in note


def test_an_ended_reused_or_zombie_process_on_this_machine_is_taken_over_at_once(tmp_path):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    _write_claim(tmp_path / "a", pid=ended.pid, started=None)
    assert f"its process {ended.pid} has ended" in _taken(tmp_path / "a")[0]

    me = current_owner()  # this process's id, started at another time: the id was reused
    _write_claim(tmp_path / "b", pid=me.pid, started=me.started - 1, token="other")
    assert "has ended" in _taken(tmp_path / "b")[0]

    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # ended, not yet reaped by its parent
    try:
        deadline = time.monotonic() + 30
        while Path(f"/proc/{zombie.pid}/stat").read_text().split(") ")[1][0] != "Z" and time.monotonic() < deadline:
            time.sleep(0.02)
        _write_claim(tmp_path / "c", pid=zombie.pid, started=None)
        assert "has ended" in _taken(tmp_path / "c")[0]
    finally:
        zombie.wait()

    _write_claim(tmp_path / "d", machine="an-earlier-boot/pid:[1]")
    assert "this host has restarted since" in _taken(tmp_path / "d")[0]
    claim_file(tmp_path / "e").write_text('{"host": "vm", "pi')  # cut short while written: nobody holds it
    assert _taken(tmp_path / "e") == []


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from xdet.claims import claim
    with claim(sys.argv[1]):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def test_a_live_holder_is_waited_for_and_nested_claims_are_one(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(folder), "1.5"], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline() == "held\n"
    waited: list[str] = []
    start = time.monotonic()
    with claim(folder, on_wait=waited.append, poll_s=0.1):
        assert time.monotonic() - start > 0.5 and holder.wait(timeout=30) == 0
        with claim(folder, wait=False):  # this process holds it already
            pass
        assert json.loads(claim_file(folder).read_text())["pid"] == os.getpid()
    assert len(waited) == 1 and f"pid {holder.pid} on " in waited[0]
    assert not claim_file(folder).exists()
    with claim(tmp_path / "new" / "deeper" / "run"):
        assert claim_file(tmp_path / "new" / "deeper" / "run").exists()
    assert not (tmp_path / "new").exists()  # the folders a claim made for its file go with it


_STOPS_WHILE_CHANGING = textwrap.dedent(
    """
    import fcntl, os, signal, sys
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a process changing its claim does, for milliseconds
    print("locked", flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)  # stopped right there (Ctrl-Z, a suspended SLURM job)
    """
)


def test_a_claim_locked_by_a_stopped_process_is_replaced_after_a_while(tmp_path, monkeypatch):
    import xdet.claims

    folder = tmp_path / "run"
    stopped = subprocess.Popen([sys.executable, "-c", _STOPS_WHILE_CHANGING, str(claim_file(folder))],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert stopped.stdout.readline() == "locked\n"
        with pytest.raises(Busy, match="changing .run.claim right now"):  # a sweep comes back to it later
            with claim(folder, wait=False):
                pass
        monkeypatch.setattr(xdet.claims, "LOCK_STUCK_S", 3.0)  # 10 min in use
        notes: list[str] = []
        start = time.monotonic()
        with claim(folder, notify=notes.append, poll_s=0.1):
            assert json.loads(claim_file(folder).read_text())["pid"] == os.getpid()
        assert 3.0 <= time.monotonic() - start < 30 and len(notes) == 1 and "replacing the file" in notes[0]
    finally:
        stopped.kill()
        stopped.wait()


def test_a_claim_where_no_folder_can_be_made_is_one_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ClaimError, match="is not writable"):
        with claim(tmp_path / "file" / "run"):
            pass


# --------------------------------------------------------------------------------------------- SLURM


def test_a_slurm_jobs_claim_holds_while_the_job_is_in_the_queue(tmp_path, tmp_path_factory, monkeypatch):
    from slurm_cluster import find_cluster

    cluster = find_cluster(False, tmp_path_factory)
    for name, value in cluster.env.items():
        monkeypatch.setenv(name, value)
    job_flags = ["--parsable", "--partition=debug", "--cpus-per-task=1", "--mem=1G", f"--chdir={ROOT}"]
    owner = tmp_path / "owner.json"
    code = "import json, dataclasses; from xdet.claims import current_owner; " \
           "print(json.dumps(dataclasses.asdict(current_owner())))"
    with cluster.exclusive():
        # inside an array task the claim names the task
        proc = cluster.run("sbatch", *job_flags, "--wait", "--array=0-0", f"--output={owner}",
                           "--wrap", f"{sys.executable} -c '{code}'", timeout=180)
        assert proc.returncode == 0, proc.stderr
        record = json.loads(owner.read_text())
        assert record["slurm_task"] == f"{proc.stdout.strip().split(';')[0]}_0" and record["slurm_job"].isdigit()

        # a claim from a node this process cannot look at, in a job still queued or running: it holds
        job = cluster.run("sbatch", *job_flags, "--output=/dev/null", "--wrap", "sleep 300").stdout.strip()
        folder = tmp_path / "run"
        try:
            _write_claim(folder, host="node-elsewhere", machine="its-boot/pid:[1]", pid=77, slurm_job=job)
            with pytest.raises(Busy, match=f"SLURM job {job}"):
                with claim(folder, wait=False):
                    pass
            while cluster.run("squeue", "--noheader", f"--jobs={job}", "--format=%T").stdout.strip() == "PENDING":
                time.sleep(0.2)
            assert cluster.run("scontrol", "suspend", job).returncode == 0  # as gang scheduling or preemption do
            with pytest.raises(Busy, match=f"SLURM job {job}"):
                with claim(folder, wait=False):
                    pass
        finally:
            cluster.run("scancel", job)
        deadline = time.monotonic() + 120
        while cluster.run("squeue", "--noheader", f"--jobs={job}").stdout.strip() and time.monotonic() < deadline:
            time.sleep(0.5)
        (note,) = _taken(folder)  # the job has left the queue: its claim is taken over at once
        assert f"SLURM job {job} is no longer in the queue" in note
