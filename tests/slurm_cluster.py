"""The single-node SLURM clusters the cluster tests run on, found or (as root) brought up, and ways to use them.

``.ci/slurm-up`` starts two clusters on this machine: ``xdet`` (no accounting, the default
configuration) and ``xdet-acct`` (accounting through slurmdbd, ``SLURM_CONF=/etc/slurm-acct/slurm.conf``).
Skip rule: where SLURM is not installed, or its controller does not answer and cannot be started, a
cluster test is skipped with the reason; with ``XDET_REQUIRE_SLURM=1`` (what ``.ci/run`` sets) that
skip is a failure instead, so CI never passes without having run them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]
SLURM_UP = ROOT / ".ci" / "slurm-up"
CONFS = {False: "/etc/slurm/slurm.conf", True: "/etc/slurm-acct/slurm.conf"}
NAMES = {False: "xdet", True: "xdet-acct"}
XDET = str(Path(sys.executable).with_name("xdet"))
#: The CPU cluster's job settings: one CPU and 2 GB per job, so both CPUs of the node run a job each.
CPU_JOBS = ["--slurm-partition", "debug", "--slurm-gpus", "0", "--slurm-cpus", "1", "--slurm-mem-gb", "2"]


def _unavailable(reason: str) -> None:
    if os.environ.get("XDET_REQUIRE_SLURM", "").strip().lower() in ("1", "true", "yes", "on"):
        pytest.fail(f"{reason} (XDET_REQUIRE_SLURM is set: CI must run the cluster tests)", pytrace=False)
    pytest.skip(reason)


def shared_dir(tmp_path_factory) -> Path:
    """A folder every xdist worker of this session sees (for the locks below)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@dataclass
class Cluster:
    """One of the test clusters: its name and the environment that points SLURM's commands at it."""

    name: str
    accounting: bool
    env: dict[str, str] = field(default_factory=dict)
    lock_dir: Path = Path(".")

    def exclusive(self) -> FileLock:
        """Held by a test whose jobs must have the node's CPUs to themselves (two of them running at once)."""
        return FileLock(str(self.lock_dir / f"slurm-{self.name}.lock"))

    def environ(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"}
        return base | {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"} | self.env | extra

    def run(self, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=self.environ(**env))

    def xdet(self, *args: str, timeout: float = 900, **env: str) -> subprocess.CompletedProcess:
        """``xdet`` against this cluster; ``env`` adds variables (``SBATCH_HOLD="1"`` submits the jobs held)."""
        return self.run(XDET, *args, timeout=timeout, **env)

    def jobs(self, job_ids: list[str]) -> dict[str, dict[str, str]]:
        """squeue's view of ``job_ids`` (state, start and end time), ended jobs included while it holds them."""
        arrays = ",".join(sorted({j.split("_")[0] for j in job_ids}))
        proc = self.run("squeue", "--noheader", "--array", "--states=all", f"--jobs={arrays}", "--format=%i|%T|%S|%e")
        rows = [line.split("|") for line in proc.stdout.split()]
        return {r[0]: {"state": r[1], "start": r[2], "end": r[3]} for r in rows if len(r) == 4}

    def pause(self, job_ids: list[str]) -> dict[str, str]:
        """Stop ``job_ids`` from ending: running ones suspended, pending ones held; what :meth:`unpause` undoes.

        A job that ends meanwhile is left alone; one that starts between the look and the hold is suspended.
        """
        paused: dict[str, str] = {}
        for job, info in self.jobs(job_ids).items():
            for action in (("hold", "suspend") if info["state"] == "PENDING" else ("suspend", "hold")):
                if self.run("scontrol", action, job).returncode == 0:
                    paused[job] = action
                    break
        return paused

    def unpause(self, paused: dict[str, str]) -> None:
        undo = {"suspend": "resume", "hold": "release"}
        for job, action in paused.items():
            proc = self.run("scontrol", undo[action], job)
            assert proc.returncode == 0, f"scontrol {undo[action]} {job}: {proc.stderr.strip()}"

    def pids(self, job_id: str) -> list[int]:
        """The process ids of a running job's step 0 (the job's Python), as its node daemon lists them."""
        raw = self.run("squeue", "--noheader", "--array", f"--jobs={job_id}", "--format=%A").stdout.split()
        if not raw:
            return []
        listed = self.run("scontrol", "listpids", raw[0]).stdout.splitlines()[1:]
        return [int(f[0]) for f in (line.split() for line in listed) if len(f) >= 3 and f[2] == "0"]


def _answers(conf: str) -> str | None:
    """The cluster name its controller reports, or ``None`` when it does not answer."""
    env = os.environ | {"SLURM_CONF": conf}
    try:
        proc = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"^ClusterName\s*=\s*(\S+)", proc.stdout, flags=re.M)
    return match.group(1) if proc.returncode == 0 and match else None


def find_cluster(accounting: bool, tmp_path_factory) -> Cluster:
    """The test cluster, brought up with ``.ci/slurm-up`` first if this is root and it is not running."""
    if shutil.which("sbatch") is None or shutil.which("slurmctld") is None:
        _unavailable("SLURM is not installed here (no sbatch/slurmctld on PATH); as root, .ci/slurm-up installs "
                     "Debian's slurm-wlm and munge and starts a single-node cluster")
    if accounting and (shutil.which("slurmdbd") is None or shutil.which("mariadbd") is None):
        _unavailable("SLURM accounting is not installed here (no slurmdbd/mariadbd); as root, .ci/slurm-up "
                     "installs slurmdbd and mariadb-server and starts the xdet-acct cluster")
    conf, lock_dir = CONFS[accounting], shared_dir(tmp_path_factory)
    name = _answers(conf) if Path(conf).is_file() else None
    if name is None and os.geteuid() == 0:
        with FileLock(str(lock_dir / "slurm-up.lock")):
            if _answers(conf) is None:
                args = [] if accounting else ["--no-accounting"]
                proc = subprocess.run(["bash", str(SLURM_UP), *args], capture_output=True, text=True, timeout=600)
                if proc.returncode != 0:
                    _unavailable(f".ci/slurm-up failed: {proc.stderr.strip()[-500:]}")
        name = _answers(conf)
    if name is None:
        _unavailable(f"no SLURM controller answers for {conf} (not root here, so .ci/slurm-up cannot start it)")
    if name != NAMES[accounting]:
        _unavailable(f"{conf} belongs to cluster {name!r}, not the test cluster {NAMES[accounting]!r} that "
                     ".ci/slurm-up brings up; the cluster tests submit only there")
    return Cluster(name, accounting, {"SLURM_CONF": conf}, lock_dir)


class Driver:
    """``xdet sweep`` in the background, its stdout read line by line with the time each line arrived."""

    def __init__(self, cluster: Cluster, argv: list[str]):
        self.proc = subprocess.Popen([XDET, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=cluster.environ(), bufsize=1)
        self.lines: list[tuple[float, str]] = []  # (time.time(), line)
        self.errors: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, out: bool) -> None:
        for line in stream:
            if out:
                self.lines.append((time.time(), line.rstrip("\n")))
            else:
                self.errors.append(line)

    def wait_for(self, pattern: str, timeout: float = 300) -> tuple[float, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for stamp, line in list(self.lines):
                if re.search(pattern, line):
                    return stamp, line
            if self.proc.poll() is not None and not self._readers[0].is_alive():
                break
            time.sleep(0.2)
        raise AssertionError(f"no line matching {pattern!r}; output so far:\n" + self.output())

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.finish(timeout=60)

    def finish(self, timeout: float = 600) -> int:
        self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=10)
        return self.proc.returncode

    @property
    def err(self) -> str:
        return "".join(self.errors)

    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)
