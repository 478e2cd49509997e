"""A sweep on a SLURM cluster: one job array per submission, the scheduler watched, results collected.

submitit writes the job files and submits the array (``<out>/submitit/``: batch script, pickles, one
``<array>_<task>_0_log.{out,err}`` pair per configuration). What became of each job is asked from the
scheduler itself (:mod:`xdet.sweep.scheduler`), never from submitit's accounting-based state, so a job
that was cancelled, killed, timed out or raised is reported ``failed`` with its reason within a poll
or two of its end, with or without ``sacct``; a job the scheduler no longer knows is never waited on.

``<out>/slurm-jobs.json`` maps each configuration to its latest job. Rerunning the sweep command
attaches to the jobs still in flight instead of submitting them again, collects the ones that ended
meanwhile, and submits only the configurations that are neither complete nor in flight (the failed
ones among them). ``--detach`` submits and returns at once; the same command later reports each
configuration's state, and the tables are written from what is complete. Ctrl-C while waiting leaves
the jobs running and says how to pick them up.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from xdet.runs.record import read_run_record, run_identity
from xdet.sweep import scheduler
from xdet.sweep.configuration import Outcome, SweepSettings, run_config
from xdet.sweep.matrix import SweepConfig
from xdet.sweep.scheduler import SlurmOptions
from xdet_tasks.errors import XdetError
from xdet_tasks.io import ENV_CACHE_DIR, atomic_write_json

log = logging.getLogger(__name__)

JOBS_FILE = "slurm-jobs.json"
JOB_NAME = "xdet-sweep"
#: Seconds between two looks at the queue: quick at first, then a pace a shared controller tolerates.
POLL_FIRST_S, POLL_MAX_S = 1.0, 10.0
#: How long a job that exited 0 may take to show its result file (a shared file system's delay).
RESULT_GRACE_S = 30.0
#: Environment a job needs as absolute paths: it may start in another directory or on another node.
_PATH_ENV = ("XDET_DATA_DIR", ENV_CACHE_DIR)


class ConfigurationFailed(Exception):
    """Raised in a job whose configuration failed, so the scheduler records the job as FAILED."""


class JobTerminated(Exception):
    """SLURM sent the job SIGTERM (scancel, its time limit, preemption): stop, cleaning up as on any error."""


class JobsKeepRunning(KeyboardInterrupt):
    """Ctrl-C while waiting: the jobs go on; ``str()`` says how to pick them up."""


# --------------------------------------------------------------------------------------------- in the job


def run_job(cfg: SweepConfig, settings: SweepSettings, env: dict[str, str]) -> Outcome:
    """What each SLURM job runs: one configuration, in the driver's data and cache folders.

    submitit ignores SIGTERM, so a cancelled job would hold its node until SLURM's ``KillWait`` (30 s by
    default) ends in SIGKILL; here SIGTERM stops the configuration at once, half-written folders are
    removed as on any error, and the scheduler's state (CANCELLED, TIMEOUT) says why.
    """

    def terminated(signum: int, frame: Any) -> None:
        raise JobTerminated("SLURM ended the job (SIGTERM)")

    signal.signal(signal.SIGTERM, terminated)
    os.environ.update(env)
    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus and "OMP_NUM_THREADS" not in os.environ:  # the CPUs the job was given, not the whole node's
        import torch

        torch.set_num_threads(int(cpus))
    outcome = run_config(cfg, settings)
    if outcome.status == "failed":
        raise ConfigurationFailed(outcome.error)
    return outcome


def _job_env() -> dict[str, str]:
    return {k: str(Path(os.environ[k]).expanduser().absolute()) for k in _PATH_ENV if os.environ.get(k)}


# --------------------------------------------------------------------------------------------- bookkeeping


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _read_jobs(out: Path) -> dict[str, dict[str, Any]]:
    path = out / JOBS_FILE
    if not path.is_file():
        return {}
    try:
        return dict(json.loads(path.read_text(encoding="utf-8"))["jobs"])
    except (ValueError, KeyError, TypeError) as err:
        raise XdetError(f"{path}: corrupt job record ({err}); delete it to forget the jobs it lists") from None


def _write_jobs(out: Path, jobs: dict[str, dict[str, Any]], *ids: str, submitted: bool = False) -> None:
    """Record the entries of configurations ``ids``, keeping every other entry as the file has it now:
    drivers of other shards, or another look at this sweep, write the same file. The end of a job is
    recorded only while the entry still names that job (another driver may have submitted a new one)."""
    from filelock import FileLock

    with FileLock(str(out / f".{JOBS_FILE}.lock")):
        current = _read_jobs(out)
        current.update({i: jobs[i] for i in ids if submitted or current.get(i, jobs[i])["job"] == jobs[i]["job"]})
        atomic_write_json(out / JOBS_FILE, {"schema": "xdet-slurm-jobs/1", "jobs": current})


@contextmanager
def _no_interrupt() -> Iterator[None]:
    """Hold Ctrl-C until the block ends: a submitted array is always recorded, never lost."""
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt


def _paths(settings: SweepSettings, job_id: str):
    from submitit.core.utils import JobPaths

    return JobPaths(Path(settings.out) / "submitit", job_id=job_id, task_id=0)


def _seconds(elapsed: str) -> float:
    """squeue's ``[days-][hours:]minutes:seconds`` in seconds."""
    days, _, rest = elapsed.rpartition("-")
    total = 0
    for part in rest.split(":"):
        total = total * 60 + int(part) if part.isdigit() else total
    return float(total + int(days or 0) * 86400)


def _error_line(trace: str) -> str:
    """The exception of a job's traceback, without our own wrapper's name."""
    last = next((line for line in reversed(trace.strip().splitlines()) if line.strip()), "the job raised")
    return re.sub(r"^(?:\w+\.)*ConfigurationFailed: ", "", last.strip())


# --------------------------------------------------------------------------------------------- one job's end


@dataclass
class _Watched:
    cfg: SweepConfig
    job_id: str
    since: float  # monotonic time the driver started watching it
    ended_without_result: float | None = None  # monotonic time it was first seen ended without a result


def _result(settings: SweepSettings, job_id: str) -> tuple[str, Any] | None:
    from submitit.core.utils import pickle_load

    path = _paths(settings, job_id).result_pickle
    if not path.is_file():
        return None
    try:
        return pickle_load(path)
    except Exception as err:  # a half-copied file on a slow file system: look again next time
        log.debug("%s: not readable yet (%s)", path, err)
        return None


def _ended(w: _Watched, settings: SweepSettings, states: dict[str, scheduler.JobState] | None) -> Outcome | None:
    """The outcome of a job that has ended, or ``None`` while it may still run or its result may still appear.

    ``states`` is the scheduler's answer (``None``: it did not answer, so only a result file decides). A
    result file counts once the scheduler no longer runs the job: a job requeued (preemption, a node
    failure) runs again under the same id and writes its result anew.
    """
    cfg, state = w.cfg, (states or {}).get(w.job_id)
    if state is not None and state.active and state.state != "COMPLETING":
        return None
    seconds = _seconds(state.elapsed) if state else 0.0
    result = _result(settings, w.job_id)
    if result is not None and result[0] == "success":
        result[1].job = w.job_id
        return result[1]
    stderr = _paths(settings, w.job_id).stderr
    if result is not None and JobTerminated.__name__ not in str(result[1]):  # it raised: the exception says why
        reason = _error_line(str(result[1]))
        final = state.state if state is not None and state.state in scheduler.ENDED else ""
        why = final if final not in ("", "FAILED", "COMPLETED") else scheduler.log_reason(stderr)[0]
        if why and why != "FAILED":  # e.g. it raised because it ran out of memory or time
            reason = f"{why}: {scheduler.ENDED[why]} ({reason})"
        return Outcome(cfg.id, cfg.strategy, "failed", seconds=seconds, error=reason, job=w.job_id)
    if states is None:
        return None
    now = time.monotonic()
    if state is None and now - w.since < RESULT_GRACE_S / 3:  # just submitted: not listed yet on a busy controller
        return None
    if state is not None and state.state == "COMPLETED" and result is None:  # its result file may be on its way
        w.ended_without_result = w.ended_without_result or now
        if now - w.ended_without_result < RESULT_GRACE_S:
            return None
    settled = scheduler.settle(state, stderr)
    if settled is None:  # COMPLETING with no sign of failure yet
        return None
    reason = scheduler.describe_end(*settled)
    return Outcome(cfg.id, cfg.strategy, "failed", seconds=seconds, error=reason, job=w.job_id)


def _announce(o: Outcome) -> None:
    stamp = datetime.now().strftime("%H:%M:%S")
    detail = f"failed: {o.error}" if o.status == "failed" else f"{o.status} in {o.seconds:.0f} s"
    print(f"[{stamp}] {o.config} (job {o.job}): {detail}", flush=True)


# --------------------------------------------------------------------------------------------- the driver


def _identity(settings: SweepSettings):
    """``cfg -> run identity`` a complete run folder must have to answer this sweep's request (as ``xdet eval``
    records it), so a configuration already done is neither submitted nor waited for."""
    from xdet_tasks.io import environment
    from xdet_tasks.names import is_generation, task_languages, task_names
    from xdet_tasks.scoring import get_scorer
    from xdet_tasks.scoring.routing import run_provenance
    from xdet_tasks.suites.paradetox import data_fingerprint

    tasks = task_names(settings.eval_langs, settings.families)
    generation = [t for t in tasks if is_generation(t)]
    scored = sorted({lang for t in generation for lang in task_languages(t)})
    active = get_scorer(settings.scorer) if generation else None
    for lang in scored:  # a routing list routes each language as xdet eval will
        active.check_language(lang)
    scorer = run_provenance(active, scored) if active is not None else None
    with environment(XDET_DATA_DIR=settings.data_dir):
        fingerprint = data_fingerprint(sorted({lang for t in tasks for lang in task_languages(t)}))
    batch = int(settings.batch_size) if settings.batch_size.isdigit() else settings.batch_size
    request = {"tasks": tasks, "limit": settings.limit, "seed": settings.seed, "batch_size": batch,
               "repeats": settings.repeats, "backend": settings.backend, "scorer": scorer,
               "data": {"fingerprint": fingerprint}}

    def identity(cfg: SweepConfig) -> dict[str, Any]:
        peft = str(settings.adapter_dir(cfg).resolve()) if cfg.trains else None
        return run_identity(request | {"model": cfg.model, "peft": peft})

    return identity


def _complete(cfg: SweepConfig, settings: SweepSettings, identity) -> bool:
    try:
        record = read_run_record(settings.run_dir(cfg))
    except XdetError:  # corrupt: the job redoes it
        return False
    return record is not None and run_identity(record) == identity(cfg)


def _submit(configs: list[SweepConfig], settings: SweepSettings, opts: SlurmOptions, partition: str) -> list[str]:
    """Submit ``configs`` as one array; its job ids are recorded before Ctrl-C can stop the driver."""
    import submitit

    folder = Path(settings.out) / "submitit"
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=0)
    params: dict[str, Any] = {"job_name": JOB_NAME, "partition": partition, "time": opts.minutes,
                              "cpus_per_task": opts.cpus, "mem": f"{opts.mem_gb}GB"}
    if opts.gpus:
        params["gpus_per_node"] = opts.gpus
    if opts.parallel:
        params["array_parallelism"] = opts.parallel
    # submitit asks for SIGUSR2 90 s (SLURM: up to a minute more) before the time limit and ends a job
    # that cannot checkpoint there, or, arriving while Python starts, the signal kills it outright. A
    # job here uses its whole time instead, and past it the scheduler ends it and records TIMEOUT:
    # the warning becomes SIGURG, which a process ignores unless it asks for it.
    params["additional_parameters"] = {"signal": "URG@90"}
    executor.update_parameters(**params)
    env = _job_env()
    said = io.StringIO()  # submitit prints a refusing sbatch's stderr itself; it belongs in the one error line
    try:
        with redirect_stderr(said):
            jobs = executor.map_array(run_job, configs, [settings] * len(configs), [env] * len(configs))
    except Exception as err:  # sbatch refused (a QOS or account limit the checks cannot see)
        text = said.getvalue() + str(err)
        message = next((line for line in text.splitlines() if "error" in line.lower()), text.strip())
        raise XdetError(f"--executor slurm: sbatch refused the jobs: {message.strip()}") from None
    return [job.job_id for job in jobs]


def _status(state: scheduler.JobState | None) -> str:
    return "submitted" if state is None else state.state.lower()


def run_slurm(configs: list[SweepConfig], settings: SweepSettings, opts: SlurmOptions, partition: str,
              *, quiet: bool = True) -> list[Outcome]:
    """Attach to this sweep's jobs in flight, collect ended ones, submit what is missing, then wait (or not)."""
    if quiet:  # e.g. submitit's "Bypassing sacct error"; -v shows them
        logging.getLogger("submitit").setLevel(logging.ERROR)
    out = Path(settings.out)
    jobs = _read_jobs(out)  # kept current as jobs are submitted and end
    try:
        return _drive(configs, settings, opts, partition, out, jobs)
    except KeyboardInterrupt:
        flying = sorted({j["job"].split("_")[0] for j in jobs.values() if not j.get("ended")})
        if not flying:
            raise
        count = sum(not j.get("ended") for j in jobs.values())
        raise JobsKeepRunning(
            f"interrupted; {count} SLURM job(s) keep running (job array {', '.join(flying)}); rerun the same "
            "command to resume: it waits for them and writes the tables (add --detach to only check on them)"
        ) from None


def _drive(configs: list[SweepConfig], settings: SweepSettings, opts: SlurmOptions, partition: str, out: Path,
           jobs: dict[str, dict[str, Any]]) -> list[Outcome]:
    identity = _identity(settings)
    outcomes: dict[str, Outcome] = {}
    watched: dict[str, _Watched] = {}
    redo: dict[str, str] = {}  # configuration -> why its last job failed
    missing: list[SweepConfig] = []
    earlier = {c.id: jobs[c.id]["job"] for c in configs if c.id in jobs and not jobs[c.id].get("ended")}
    states = scheduler.job_states(list(earlier.values())) if earlier else {}
    for cfg in configs:
        if cfg.id in earlier:  # submitted by an earlier run of this command
            w = _Watched(cfg, earlier[cfg.id], since=float("-inf"))
            outcome = _ended(w, settings, states)
            if outcome is None:
                watched[cfg.id] = w
                continue
            _finish(out, jobs, outcome)
            if outcome.status != "failed":
                outcomes[cfg.id] = outcome
                continue
            redo[cfg.id] = f"job {outcome.job} failed: {outcome.error}"
        if _complete(cfg, settings, identity):
            outcomes[cfg.id] = Outcome(cfg.id, cfg.strategy, "skipped", "reused" if cfg.trains else "-")
        else:
            missing.append(cfg)
    if watched:
        seen = [_status((states or {}).get(w.job_id)) for w in watched.values()]
        counts = ", ".join(f"{seen.count(s)} {s}" for s in dict.fromkeys(seen))
        arrays = ", ".join(sorted({w.job_id.split("_")[0] for w in watched.values()}))
        print(f"{len(watched)} job(s) of an earlier run still in flight (job array {arrays}: {counts})", flush=True)
    if missing:
        with _no_interrupt():
            began = time.perf_counter()
            ids = _submit(missing, settings, opts, partition)
            log.debug("submission of %d job(s) (pickling + sbatch) took %.2f s", len(ids), time.perf_counter() - began)
            for cfg, job_id in zip(missing, ids, strict=True):
                jobs[cfg.id] = {"job": job_id, "submitted": _now()}
                watched[cfg.id] = _Watched(cfg, job_id, since=time.monotonic())
            _write_jobs(out, jobs, *(cfg.id for cfg in missing), submitted=True)
        limit = f", at most {opts.parallel} at once" if opts.parallel else ""
        what = f"job array {ids[0].split('_')[0]}" if "_" in ids[0] else f"job {ids[0]}"
        print(f"submitted {len(missing)} configuration(s) as SLURM {what} "
              f"(partition {partition}{limit}); logs: {out / 'submitit'}", flush=True)
    if watched and not opts.detach:
        _wait(watched, settings, out, jobs, outcomes)
    for cid, w in watched.items():  # --detach: what each job is doing now
        state = (states or {}).get(w.job_id)
        outcomes[cid] = Outcome(cid, w.cfg.strategy, _status(state), seconds=_seconds(state.elapsed) if state else 0.0,
                                job=w.job_id, error=redo.get(cid, ""))
    return [outcomes[c.id] for c in configs]


def _finish(out: Path, jobs: dict[str, dict[str, Any]], outcome: Outcome) -> None:
    _announce(outcome)
    jobs[outcome.config] |= {"ended": _now(), "status": outcome.status, "error": outcome.error}
    _write_jobs(out, jobs, outcome.config)


def _wait(watched: dict[str, _Watched], settings: SweepSettings, out: Path, jobs: dict[str, dict[str, Any]],
          outcomes: dict[str, Outcome]) -> None:
    """Poll the scheduler until every watched job has ended; one line per job as it ends."""
    start = time.monotonic()
    silent_since: float | None = None
    while watched:
        states = scheduler.job_states([w.job_id for w in watched.values()])
        if states is None:
            silent_since = silent_since or time.monotonic()
            if time.monotonic() - silent_since > 60:
                log.warning("the SLURM controller has not answered for %.0f s; still waiting",
                            time.monotonic() - silent_since)
                silent_since = time.monotonic()
        else:
            silent_since = None
        for cid, w in list(watched.items()):
            outcome = _ended(w, settings, states)
            if outcome is not None:
                del watched[cid]
                outcomes[cid] = outcome
                _finish(out, jobs, outcome)
        if watched:
            time.sleep(min(POLL_MAX_S, POLL_FIRST_S + (time.monotonic() - start) / 30))
