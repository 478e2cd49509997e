"""Claims: one process at a time works on a run folder (``xdet eval``) or a sweep's configuration.

Two commands on one output folder (two terminals, a local sweep beside a SLURM array) would otherwise
train the same adapter and write the same run folder at once. Before it starts, a process claims the
folder: ``<parent>/.<name>.claim`` holds its owner (host, process id and start time, and its SLURM
job when it runs in one) and exists only while the owner works; it is removed on success, error and
Ctrl-C. A second process finds it and waits (``xdet eval``), or goes on with other configurations
and comes back at the end (``xdet sweep``).

A claim whose owner is gone is taken over, with one line saying so:

* its owner ran on this machine (same host name, boot and process namespace) and its process has
  ended (or its id now belongs to a process started later);
* its owner ran in a SLURM job that ``squeue`` no longer lists (a job in the queue, suspended
  included, holds its claim, also if its process ended while the allocation goes on);
* anything else (another machine, without SLURM, or ``squeue`` not answering): its owner refreshes
  the file's time every :data:`HEARTBEAT_S` seconds, so a claim not refreshed for :data:`STALE_AFTER_S`
  seconds is taken as abandoned (a process stopped that long elsewhere loses its claim).

Reading and changing a claim happens under ``flock`` on the claim file itself (held for milliseconds;
the kernel, or the file server's lock manager, drops it when a process dies). A claim file is removed
on release, so the lock is re-checked against the path after it is taken: a lock on a removed file
protects nothing. ``filelock`` leaves its lock files behind, which is why it is not used here. A
lock held for :data:`LOCK_STUCK_S` (a process stopped, or a node lost, in those milliseconds) is
broken by replacing the file; a process that resumes then finds its file replaced and claims again.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from xdet_tasks.errors import XdetError
from xdet_tasks.io import FILE_MODE

log = logging.getLogger(__name__)

SUFFIX = ".claim"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 600.0
#: How long one attempt waits for the lock on a claim file (held for milliseconds while a claim changes).
LOCK_WAIT_S = 2.0
#: A lock held this long belongs to a process stopped (or a node lost) in those milliseconds: the file is replaced.
LOCK_STUCK_S = 600.0
_HELD: dict[Path, int] = {}  # claims this process holds (nested claims of one folder are one claim)
_LOCKED_SINCE: dict[Path, float] = {}  # claim files whose lock this process has found taken, and since when
_HELD_LOCK = threading.Lock()


class ClaimError(XdetError):
    """A claim file cannot be written where the folder lives."""


@dataclass(frozen=True)
class Owner:
    """Who holds a claim, recorded in the claim file."""

    host: str
    pid: int
    started: int | None  # the process's start time (clock ticks after boot, /proc/<pid>/stat), against pid reuse
    machine: str  # boot id and process namespace: the same host name can be another boot or container
    since: str
    token: str
    slurm_job: str | None = None  # SLURM_JOB_ID
    slurm_task: str | None = None  # <array>_<task> for an array task

    def describe(self) -> str:
        job = f", SLURM job {self.slurm_task or self.slurm_job}" if self.slurm_job else ""
        return f"pid {self.pid} on {self.host}{job}, since {self.since}"


def _machine() -> str:
    parts = []
    for path, read in (("/proc/sys/kernel/random/boot_id", Path.read_text), ("/proc/self/ns/pid", None)):
        try:
            parts.append(read(Path(path)).strip() if read else os.readlink(path))
        except OSError:
            parts.append("?")
    return "/".join(parts)


def _stat(pid: int) -> tuple[str, int] | None:
    """``(state, start time)`` of a process from ``/proc/<pid>/stat``, or ``None`` where it cannot be read."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) ", which may hold spaces
    return fields[0], int(fields[19])


def current_owner() -> Owner:
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    stat = _stat(os.getpid())
    return Owner(
        host=socket.gethostname(), pid=os.getpid(), started=stat[1] if stat else None, machine=_machine(),
        since=datetime.now(timezone.utc).isoformat(timespec="seconds"), token=secrets.token_hex(8),
        slurm_job=os.environ.get("SLURM_JOB_ID") or None, slurm_task=f"{array}_{task}" if array and task else None,
    )


def _process_alive(owner: Owner) -> bool:
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    stat = _stat(owner.pid)
    if stat is None:
        return True
    state, started = stat
    return state not in ("Z", "X") and (owner.started is None or started == owner.started)


def slurm_job_listed(job: str) -> bool | None:
    """Whether the job is in the queue; ``None`` when ``squeue`` cannot be asked.

    ``squeue`` without ``--states`` lists exactly the jobs that have not ended (pending, running,
    suspended, completing, requeued, ...), and answers "Invalid job id" for one the controller has forgotten.
    """
    if shutil.which("squeue") is None:
        return None
    try:
        proc = subprocess.run(["squeue", "--noheader", f"--jobs={job}", "--format=%i"], capture_output=True,
                              text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return False if "Invalid job id" in proc.stderr else None
    return bool(proc.stdout.strip())


def stale_reason(owner: Owner, age_s: float) -> str | None:
    """Why a claim (``age_s`` seconds since its owner last refreshed it) is abandoned; ``None`` while it holds."""
    here = current_owner()
    if owner.host == here.host and owner.machine == here.machine:
        return None if _process_alive(owner) else f"its process {owner.pid} has ended"
    if owner.host == here.host and owner.machine.split("/")[0] != here.machine.split("/")[0]:
        return "this host has restarted since"
    if owner.slurm_job:
        listed = slurm_job_listed(owner.slurm_job)
        if listed is False:
            return f"SLURM job {owner.slurm_job} is no longer in the queue"
        if listed:
            return None
    if age_s > STALE_AFTER_S:
        return f"not refreshed for {age_s / 60:.0f} min (its process cannot be checked from {here.host})"
    return None


def claim_file(folder: Path) -> Path:
    return folder.parent / f".{folder.name}{SUFFIX}"


class Busy(Exception):
    """The folder is claimed by another process; ``holder`` says which (or that its claim is being changed)."""

    def __init__(self, holder: str):
        super().__init__(holder)
        self.holder = holder


class _Locked(Busy):
    def __init__(self, path: Path):
        super().__init__(f"another process is changing {path.name} right now")


@contextmanager
def _locked(path: Path) -> Iterator[int]:
    """The claim file open and ``flock``-ed, created if missing; the lock is on the file the path names now.

    :class:`_Locked` when another process holds the lock for :data:`LOCK_WAIT_S`.
    """
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except FileNotFoundError:  # the holder we waited for removed the folders it had made
            path.parent.mkdir(parents=True, exist_ok=True)
            continue
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise _Locked(path) from None
                    time.sleep(0.05)
            if _names(path, fd):
                yield fd
                return
        finally:
            os.close(fd)


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not removed or replaced meanwhile)."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _read(fd: int) -> tuple[Owner | None, float]:
    """The owner a claim file names (``None``: empty, or cut short by a crash while written) and its age."""
    age = time.time() - os.fstat(fd).st_mtime
    os.lseek(fd, 0, os.SEEK_SET)
    raw = b""
    while chunk := os.read(fd, 65536):
        raw += chunk
    try:
        return Owner(**json.loads(raw)), age
    except (ValueError, TypeError):
        return None, age


def _write(fd: int, owner: Owner) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(asdict(owner), indent=1).encode() + b"\n", 0)
    os.fsync(fd)


def _try_claim(path: Path, me: Owner, notify: Callable[[str], None]) -> None:
    """Claim ``path`` for ``me``, taking over an abandoned claim; :class:`Busy` when another process holds it."""
    try:
        with _locked(path) as fd:
            _LOCKED_SINCE.pop(path, None)
            owner, age = _read(fd)
            if owner is not None and owner.token != me.token:
                why = stale_reason(owner, age)
                if why is None:
                    raise Busy(owner.describe())
                notify(f"{path}: taking over the claim of {owner.describe()}: {why}")
            _write(fd, me)
            if not _names(path, fd):  # replaced as stuck while this process stood still: not ours
                raise _Locked(path)
    except _Locked:
        since = _LOCKED_SINCE.setdefault(path, time.monotonic())
        if time.monotonic() - since < LOCK_STUCK_S:
            raise
        notify(f"{path}: locked for {LOCK_STUCK_S / 60:.0f} min by a process stopped while changing it (or on a "
               "node that was lost); replacing the file")
        path.unlink(missing_ok=True)
        _LOCKED_SINCE.pop(path, None)
        raise


def _release(path: Path, me: Owner) -> None:
    """Remove ``me``'s claim; one taken over meanwhile stays its new owner's. If its lock stays taken, the
    claim is left to be taken over (its process will have ended)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with _locked(path) as fd:
                owner, _ = _read(fd)
                if owner is None or owner.token == me.token:
                    os.unlink(path)
            return
        except _Locked:
            if time.monotonic() > deadline:
                log.debug("%s: left behind (its lock stayed taken)", path)
                return


def _heartbeat(path: Path, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        try:
            os.utime(path)
        except OSError:
            return


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder``'s missing parents; the ones made, deepest first (removed again if left empty)."""
    made = [p for p in (folder.parent, *folder.parent.parents) if not p.exists()]
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ClaimError(f"{folder}: its folder {str(folder.parent)!r} is not writable: "
                         f"{err.strerror or err}") from None
    return made


@contextmanager
def claim(folder: str | Path, *, wait: bool = True, on_wait: Callable[[str], None] | None = None,
          notify: Callable[[str], None] = log.warning, poll_s: float = 1.0) -> Iterator[None]:
    """Hold the claim on ``folder`` for the block.

    Held by another process: ``wait`` polls until it is released or abandoned (``on_wait`` hears who
    holds it, once), else :class:`Busy` is raised. ``notify`` hears a takeover.
    """
    folder = Path(os.path.abspath(folder))
    with _HELD_LOCK:
        if folder in _HELD:  # this process holds it already (the sweep's claim, then its evaluation's)
            _HELD[folder] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _HELD_LOCK:
                _HELD[folder] -= 1
        return
    made = _make_parents(folder)
    path, me = claim_file(folder), current_owner()
    told = False
    try:
        while True:
            try:
                _try_claim(path, me, notify)
                break
            except Busy as busy:
                if not wait:
                    raise
                if on_wait is not None and not told:
                    on_wait(busy.holder)
                    told = True
                time.sleep(poll_s)
    except BaseException as err:
        _remove_empty(made)
        if isinstance(err, OSError) and err.errno in (errno.EACCES, errno.EROFS, errno.ENOTDIR, errno.EPERM):
            raise ClaimError(f"{folder}: its folder {str(folder.parent)!r} is not writable: {err.strerror}") from None
        raise
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(path, stop), daemon=True, name="xdet-claim-heartbeat")
    beat.start()
    with _HELD_LOCK:
        _HELD[folder] = 1
    try:
        yield
    finally:
        with _HELD_LOCK:
            del _HELD[folder]
        stop.set()
        _release(path, me)
        _remove_empty(made)


def _remove_empty(made: list[Path]) -> None:
    for parent in made:
        try:
            parent.rmdir()
        except OSError:  # holds something now: it stays
            break
