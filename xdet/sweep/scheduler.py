"""What the SLURM scheduler knows, asked through its own commands (``sinfo``, ``squeue``, ``scontrol``).

The sweep's driver never trusts a job library's idea of a job's state: without the scheduler's
accounting (``sacct``), submitit cannot tell a cancelled or killed job from a running one and waits
for ever. ``squeue --states=all`` answers with or without accounting: every job the controller still
holds, running or ended (ended ones for ``MinJobAge``, 300 s by default); a job it no longer holds has
ended. What a job left behind (its result file, the tail of its log) says the rest.

Before anything is submitted, :func:`check_request` compares what a sweep asks for (partition, GPUs,
CPUs, memory, time) with what the cluster's nodes offer, so an impossible request is one line, not a
job pending for ever.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from xdet_tasks.errors import XdetError

log = logging.getLogger(__name__)

#: States of a job that has not ended (the controller may still run, resume or requeue it).
ACTIVE = frozenset({
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
    "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD", "SPECIAL_EXIT", "POWER_UP_NODE",
})
#: Ended states, and what each means for the user.
ENDED = {
    "COMPLETED": "exited with status 0, yet left no result",
    "CANCELLED": "cancelled (scancel, or an administrator)",
    "FAILED": "exited with an error",
    "TIMEOUT": "reached its time limit",
    "OUT_OF_MEMORY": "ran out of memory",
    "NODE_FAIL": "its node failed",
    "PREEMPTED": "was preempted",
    "BOOT_FAIL": "its node failed to boot",
    "DEADLINE": "reached its deadline",
}
_TIMEOUT_S = 60


@dataclass(frozen=True)
class JobState:
    """One job as ``squeue`` shows it: its id (``<array>_<task>``), state, the scheduler's reason, time used."""

    job_id: str
    state: str
    reason: str = ""
    elapsed: str = ""

    @property
    def active(self) -> bool:
        return self.state not in ENDED


def _slurm(*args: str) -> subprocess.CompletedProcess:
    log.debug("running %s", " ".join(args))
    return subprocess.run(list(args), capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def require_scheduler() -> None:
    """Refuse at once where no SLURM scheduler is installed or its controller does not answer."""
    missing = [cmd for cmd in ("sbatch", "squeue", "sinfo", "scontrol") if shutil.which(cmd) is None]
    if missing:
        raise XdetError(f"--executor slurm: no SLURM scheduler here ({', '.join(missing)} not on PATH); "
                        "run on the cluster's login node, or use --executor local")
    try:
        proc = _slurm("sinfo", "--noheader", "--format=%P")
    except subprocess.TimeoutExpired:
        raise XdetError(f"--executor slurm: the SLURM controller did not answer sinfo in {_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        raise XdetError(f"--executor slurm: the SLURM controller{_controller()} does not answer "
                        f"(sinfo: {_first_line(proc.stderr) or f'exit status {proc.returncode}'})")


def _controller() -> str:
    """`` <host>:<port> (<slurm.conf>)`` as the configuration file names the controller, or ``""``."""
    conf = Path(os.environ.get("SLURM_CONF") or "/etc/slurm/slurm.conf")
    try:
        text = conf.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    host = re.search(r"^\s*(?:SlurmctldHost|ControlMachine)\s*=\s*([^\s(#]+)", text, flags=re.M | re.I)
    port = re.search(r"^\s*SlurmctldPort\s*=\s*(\S+)", text, flags=re.M | re.I)
    return f" {host.group(1) if host else '?'}:{port.group(1) if port else 6817} ({conf})"


# --------------------------------------------------------------------------------------------- the cluster


@dataclass(frozen=True)
class Node:
    name: str
    cpus: int
    mem_mb: int
    gpus: int

    def describe(self) -> str:
        gpus = f"{self.gpus} GPU(s)" if self.gpus else "no GPU"
        return f"{self.name}: {self.cpus} CPUs, {self.mem_mb // 1024} GB, {gpus}"


@dataclass(frozen=True)
class Partition:
    name: str
    default: bool
    max_minutes: int | None  # None: no limit
    nodes: tuple[Node, ...]

    def describe(self) -> str:
        return self.name + (" (default)" if self.default else "")


def _gpus(gres: str) -> int:
    """GPUs in a node's ``Gres`` field (``gpu:4``, ``gpu:a100:8(S:0-1)``, ``gpu:2,shard:8``, ``(null)``)."""
    total = 0
    for item in gres.split(","):
        parts = re.sub(r"\(.*?\)", "", item).split(":")
        if parts[0] == "gpu" and len(parts) >= 2 and parts[-1].isdigit():
            total += int(parts[-1])
    return total


def _minutes(limit: str) -> int | None:
    """A SLURM time limit (``infinite``, ``30``, ``1:00:00``, ``2-00:00:00``, ``2-12``) in minutes."""
    if limit in ("infinite", "UNLIMITED", "n/a", ""):
        return None
    days, _, rest = limit.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    if days:  # days-hours[:minutes[:seconds]]
        parts += [0] * (3 - len(parts))
        hours, minutes, seconds = parts[:3]
        return int(days) * 1440 + hours * 60 + minutes + (seconds > 0)
    if len(parts) == 1:  # minutes
        return parts[0]
    if len(parts) == 2:  # minutes:seconds
        return parts[0] + (parts[1] > 0)
    return parts[0] * 60 + parts[1] + (parts[2] > 0)


def partitions() -> dict[str, Partition]:
    """Every partition with its nodes, as ``sinfo`` reports them."""
    proc = _slurm("sinfo", "--noheader", "--Node", "--format=%P|%N|%c|%m|%G|%l")
    if proc.returncode != 0:
        raise XdetError(f"--executor slurm: sinfo failed: {_first_line(proc.stderr)}")
    found: dict[str, tuple[bool, int | None, dict[str, Node]]] = {}
    for line in proc.stdout.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 6:
            continue
        name, node, cpus, mem, gres, limit = fields
        default = name.endswith("*")
        name = name.rstrip("*")
        entry = found.setdefault(name, (default, _minutes(limit), {}))
        entry[2][node] = Node(node, int(cpus), int(mem.rstrip("+")), _gpus(gres))
    return {name: Partition(name, d, m, tuple(nodes.values())) for name, (d, m, nodes) in found.items()}


def check_request(partition: str | None, *, gpus: int, cpus: int, mem_gb: int, minutes: int) -> Partition:
    """The partition a job would run in, after checking that one of its nodes can hold the request."""
    require_scheduler()
    parts = partitions()
    offered = ", ".join(p.describe() for p in parts.values()) or "none"
    if partition is None:
        chosen = next((p for p in parts.values() if p.default), None)
        if chosen is None:
            raise XdetError(f"--slurm-partition: the cluster has no default partition; name one of: {offered}")
    elif partition not in parts:
        raise XdetError(f"--slurm-partition {partition!r}: no such partition; the cluster has: {offered}")
    else:
        chosen = parts[partition]
    nodes = "; ".join(n.describe() for n in chosen.nodes)
    for flag, asked, offer, unit in (
        ("--slurm-gpus", gpus, max(n.gpus for n in chosen.nodes), "GPU(s)"),
        ("--slurm-cpus", cpus, max(n.cpus for n in chosen.nodes), "CPU(s)"),
        ("--slurm-mem-gb", mem_gb, max(n.mem_mb for n in chosen.nodes) // 1024, "GB"),
    ):
        if asked > offer:
            raise XdetError(f"{flag} {asked}: no node of partition {chosen.name!r} has that many; the most one "
                            f"has is {offer} {unit} ({nodes})")
    if chosen.max_minutes is not None and minutes > chosen.max_minutes:
        raise XdetError(f"--slurm-time {minutes}: partition {chosen.name!r} allows at most {chosen.max_minutes} "
                        "minutes per job")
    return chosen


@dataclass(frozen=True)
class SlurmOptions:
    """What each job asks the scheduler for, and whether the driver waits."""

    partition: str | None = None
    minutes: int = 24 * 60
    gpus: int = 1
    cpus: int = 8
    mem_gb: int = 64
    parallel: int | None = None
    detach: bool = False

    def check(self) -> str:
        """The partition the jobs go to; an impossible request is refused before anything exists."""
        return check_request(self.partition, gpus=self.gpus, cpus=self.cpus, mem_gb=self.mem_gb,
                                       minutes=self.minutes).name



# --------------------------------------------------------------------------------------------- jobs


def job_states(job_ids: list[str]) -> dict[str, JobState] | None:
    """The jobs the controller still holds, by id; ``None`` when it cannot be asked right now.

    A job missing from the answer has ended and been forgotten (or never existed).
    """
    arrays = sorted({j.split("_")[0] for j in job_ids})
    if not arrays:
        return {}
    try:
        proc = _slurm("squeue", "--noheader", "--array", "--states=all", f"--jobs={','.join(arrays)}",
                      "--format=%i|%T|%r|%M")
    except subprocess.TimeoutExpired:
        log.warning("squeue did not answer in %d s; asking again later", _TIMEOUT_S)
        return None
    if proc.returncode != 0:
        if "Invalid job id" in proc.stderr:  # every one of them is forgotten
            return {}
        log.warning("squeue failed (%s); asking again later", _first_line(proc.stderr))
        return None
    states = {}
    for line in proc.stdout.splitlines():
        fields = line.strip().split("|")
        if len(fields) == 4:
            states[fields[0]] = JobState(fields[0], fields[1].split()[0].rstrip("+"), fields[2], fields[3])
    return states


def exit_code(job_id: str) -> str:
    """``scontrol``'s ``ExitCode`` (``status:signal``) of an ended job it still holds, else ``""``."""
    proc = _slurm("scontrol", "--oneliner", "show", "job", job_id)
    match = re.search(r"\bExitCode=(\d+:\d+)", proc.stdout) if proc.returncode == 0 else None
    return match.group(1) if match else ""


_CANCELLED = re.compile(r"\*\*\* (?:JOB|STEP) \S+ ON \S+ CANCELLED AT (\S+)(?: DUE TO ([A-Z ]+?))? \*\*\*")
_DUE_TO = {"TIME LIMIT": "TIMEOUT", "PREEMPTION": "PREEMPTED", "NODE FAILURE": "NODE_FAIL"}


def log_reason(stderr_log: Path) -> tuple[str, str]:
    """``(state, phrase)`` for what the job's log says ended it, ``("", "")`` if nothing.

    The step daemon writes a cancellation (by scancel, the time limit, preemption) into the log the
    moment it happens, while the scheduler still shows the job as COMPLETING until its processes are
    gone (up to ``KillWait``, 30 s by default, for a process that outlives SIGTERM as submitit's does).
    """
    try:
        with stderr_log.open("rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 16384))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        return "", ""
    found = _CANCELLED.findall(tail)
    if found:
        when, why = found[-1]
        return _DUE_TO.get(why, "CANCELLED"), f"cancelled at {when}" + (f" due to {why.lower()}" if why else "")
    if "oom-kill" in tail or "Out Of Memory" in tail:
        return "OUT_OF_MEMORY", "killed for exceeding its memory"
    if re.search(r"task \d+: Killed", tail):
        return "FAILED", "its process was killed"
    return "", ""


def settle(state: JobState | None, stderr_log: Path) -> tuple[JobState | None, str, str] | None:
    """``(state, exit code, log phrase)`` of a job that ended without a result; ``None`` while it may not have.

    A COMPLETING job's final state is not shown yet: its log (a cancellation) or a non-zero exit code
    says it failed; with neither, it may still be finishing normally and is asked about again later.
    """
    code = exit_code(state.job_id) if state is not None else ""
    logged, phrase = log_reason(stderr_log)
    if state is not None and state.state == "COMPLETING":
        if logged:
            state = JobState(state.job_id, logged, state.reason, state.elapsed)
        elif code and code != "0:0":
            state = JobState(state.job_id, "FAILED", state.reason, state.elapsed)
        else:
            return None
    return state, code, phrase


def describe_end(state: JobState | None, code: str, from_log: str) -> str:
    """One phrase for why a job ended without a result: the scheduler's state, else what its log says."""
    if state is None:
        return "the scheduler no longer knows the job, and it left no result" + (f" ({from_log})" if from_log else "")
    what = f"{state.state}: {ENDED.get(state.state, 'ended')}"
    status, _, signal = code.partition(":")
    if state.state == "FAILED" and code:
        sig = int(signal) or (int(status) - 128 if int(status) > 128 else 0)
        what += f" (killed by signal {sig})" if sig else f" (exit status {status})"
    if state.elapsed:
        what += f" after {state.elapsed}"
    return what + (f" ({from_log})" if " due to " in from_log else "")
