"""``xdet sweep --executor slurm`` on a real SLURM cluster (``.ci/slurm-up``; skip rule in ``slurm_cluster``).

The README's cluster commands, run as written with CPU settings and a tiny model: submit and return,
what the scheduler sees, the state of a detached sweep, then wait. Three configurations, two jobs at
once, all scoring into one cache; the tables equal those of ``--executor local`` cell for cell; at
default verbosity the output is the lines a user needs and nothing else. Impossible requests are
refused before anything is submitted.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from datetime import datetime
from itertools import combinations
from pathlib import Path

import pytest
from slurm_cluster import CPU_JOBS, ROOT, Driver, find_cluster

README = (ROOT / "README.md").read_text(encoding="utf-8")
IDS = ["llama__zs", "llama__x-ft-de", "llama__x-ft-es"]
TINY = ["--train-langs", "de,es", "--eval-langs", "de,es,en", "--families", "gen,ppl", "--limit", "2",
        "--n-boot", "50", "--no-progress", "--max-steps", "2", "--train-batch-size", "4", "--grad-accum", "1",
        "--max-examples", "8", "--eval-examples", "0", "--max-length", "48"]
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING"}


def readme_commands(model: Path, out: Path) -> list[list[str]]:
    """The README's cluster block: ``$SWEEP`` lines with every value set for the test cluster, and ``squeue``."""
    block = README.split("<!-- cluster commands: begin")[1].split("<!-- cluster commands: end -->")[0]
    code = block.split("```bash\n")[1].split("```")[0].replace("\\\n", " ")
    sweep = shlex.split(re.search(r'^SWEEP="(.*?)"$', code, flags=re.M | re.S).group(1))
    values = {"--model": str(model), "--out": str(out), "--strategies": "zs,x-ft", "--scorer": "local",
              "--executor": "slurm", "--slurm-time": "10", "--slurm-parallel": "2",
              **dict(zip(CPU_JOBS[::2], CPU_JOBS[1::2], strict=True))}
    flags = sweep[2::2]
    assert sweep[:2] == [".venv/bin/xdet", "sweep"] and sorted(flags) == sorted(values), f"README flags changed: {flags}"
    base = ["sweep", *(x for flag in flags for x in (flag, values[flag])), *TINY]
    commands = []
    for line in code.splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["$SWEEP"]:
            commands.append(base + words[1:])
        elif words[:1] == ["squeue"]:
            commands.append(words)
    assert [c[0] for c in commands] == ["sweep", "squeue", "sweep", "sweep"], commands
    return commands


def _jobs(out: Path) -> dict[str, str]:
    return {cid: e["job"] for cid, e in json.loads((out / "slurm-jobs.json").read_text())["jobs"].items()}


def _tables(out: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted((out / "tables").glob("*.csv"))}


def _completions(out: Path) -> set[tuple[str, str]]:
    """(language, text) of every non-empty scored completion in the sweep's samples files."""
    found = set()
    for path in (out / "runs").glob("*/lm_eval/*/samples_xdet_*.jsonl"):
        generation = re.match(r"samples_xdet_(?:toxic_train|toxic_test|neutral_test)_([a-z]{2})_", path.name)
        if generation is None:  # perplexity and preference tasks score nothing
            continue
        lang = generation.group(1)
        for line in path.read_text(encoding="utf-8").splitlines():
            for record in (r for rs in json.loads(line)["filtered_resps"] for r in rs):  # per prompt, per sample
                text = json.loads(record)["text"]
                if text:
                    found.add((lang, text))
    return found


def _quiet(output: str) -> list[str]:
    """Lines of a waiting driver's output that are none of: header, submission, a job's end, summary, tables."""
    allowed = (
        r"xdet sweep: \d+ configuration\(s\) .*",
        r"\d+ job\(s\) of an earlier run still in flight \(job array \d+: .*\)",
        r"\[\d\d:\d\d:\d\d\] llama__\S+ \(job \d+_\d\): (done in \d+ s|failed: .+)",
        r"\|.*\|",
        r"\d+ done, \d+ skipped, \d+ failed",
        r"tables: \S+ \(from 3 of 3 configuration\(s\)\)",
    )
    return [line for line in output.splitlines() if not any(re.fullmatch(p, line) for p in allowed)]


def test_readme_cluster_commands_give_the_local_tables(tiny_model, tmp_path, tmp_path_factory, monkeypatch):
    cluster = find_cluster(False, tmp_path_factory)
    monkeypatch.setenv("XDET_CACHE_DIR", str(tmp_path / "cache"))  # a fresh cache: only the jobs score into it
    model, out = tiny_model("llama"), tmp_path / "slurm"
    detach, squeue, status, wait = readme_commands(model, out)
    driver = None
    lock = cluster.exclusive()
    lock.acquire()  # two jobs at once need the node's two CPUs: no other test's jobs on this cluster meanwhile
    try:
        proc = cluster.xdet(*detach, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        jobs = _jobs(out)
        in_flight = cluster.jobs(list(jobs.values()))
        assert sorted(jobs) == sorted(IDS) and "submitted 3 configuration(s) as SLURM job array" in proc.stdout
        assert any(j["state"] in ACTIVE for j in in_flight.values()), in_flight  # it returned before they ended
        array = next(iter(jobs.values())).split("_")[0]

        # The waiting command must find the jobs in flight however slow this machine is today, and read the
        # jobs file before the status command below collects ended jobs into it: the jobs wait, suspended or
        # held, until it says it is watching them.
        paused = cluster.pause(list(jobs.values()))
        assert paused, f"no job could be suspended or held: {cluster.jobs(list(jobs.values()))}"
        driver = Driver(cluster, wait)  # waits in the foreground while the other commands look in
        _, watching = driver.wait_for(r"^\d job\(s\) of an earlier run still in flight", timeout=300)
        assert re.search(r"\d (suspended|pending)", watching), watching
        cluster.unpause(paused)
        seen = cluster.run(*squeue)
        assert seen.returncode == 0 and f"{array}_" in seen.stdout and "xdet-swe" in seen.stdout, seen

        before = {p for p in (out / "runs").glob("*/xdet_run.json")}
        proc = cluster.xdet(*status, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert _jobs(out) == jobs and "submitted" not in proc.stdout.split("\n| configuration")[0]
        for cid in IDS:
            (row,) = [line for line in proc.stdout.splitlines() if line.startswith(f"| {cid} ")]
            assert row.split("|")[2].strip() in ("pending", "running", "completing", "done", "skipped"), row
        if before:  # something was complete when it looked: the tables are written from it
            assert re.search(r"tables: \S+ \(from [123] of 3 configuration\(s\)\)", proc.stdout), proc.stdout

        verbose = cluster.xdet("-v", *status, timeout=300)  # -v shows the scheduler queries
        assert verbose.returncode == 0 and "running sinfo --noheader" in verbose.stderr, verbose.stderr[-2000:]

        assert driver.finish(timeout=600) == 0, driver.output()[-3000:] + driver.err[-3000:]
    finally:  # nothing of this test keeps running, whatever failed
        if driver is not None and driver.proc.poll() is None:
            driver.proc.kill()
        if (out / "slurm-jobs.json").is_file():
            cluster.run("scancel", *{j.split("_")[0] for j in _jobs(out).values()})
        lock.release()
    printed = driver.output()
    assert not _quiet(printed), f"unexpected lines at default verbosity: {_quiet(printed)}\n{printed}"
    assert driver.err == "", driver.err
    assert re.search(r"^\d done, \d skipped, 0 failed$", printed, flags=re.M), printed
    assert re.search(r"^\[\d\d:\d\d:\d\d\] llama__\S+ \(job \S+\): done in", printed, flags=re.M), printed  # it waited
    assert all(re.search(rf"\| {cid} +\| (done|skipped) ", printed) for cid in IDS), printed

    # two jobs ran at once, and every job scored into the one cache
    ended = cluster.jobs(list(jobs.values()))
    spans = [(datetime.fromisoformat(j["start"]), datetime.fromisoformat(j["end"])) for j in ended.values()]
    assert any(min(a[1], b[1]) > max(a[0], b[0]) for a, b in combinations(spans, 2)), ended
    from xdet_tasks.scoring.cache import ScoreCache

    scored = _completions(out)
    assert scored and ScoreCache(tmp_path / "cache" / "scores.sqlite3").count("local") == len(scored)

    local = tmp_path / "local"
    argv = ["sweep", "--model", str(model), "--out", str(local), "--strategies", "zs,x-ft", "--scorer", "local", *TINY]
    proc = cluster.xdet(*argv, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ours, theirs = _tables(out), _tables(local)
    assert len(ours) == 2 * 3 + 1 and ours == theirs  # toxicity + perplexity x three sets, index.csv


def _impossible(tmp: Path, model: Path, *flags: str) -> list[str]:
    return ["sweep", "--model", str(model), "--out", str(tmp / "sw"), "--strategies", "zs", "--eval-langs", "de",
            "--executor", "slurm", *flags]


BAD = {
    "partition that does not exist": (["--slurm-partition", "gpu", "--slurm-gpus", "0"],
                                      "--slurm-partition 'gpu': no such partition; the cluster has: debug (default)"),
    "more GPUs than any node has": (["--slurm-gpus", "1"],
                                    "--slurm-gpus 1: no node of partition 'debug' has that many; the most one has is 0"),
    "more memory than any node has": (["--slurm-gpus", "0", "--slurm-cpus", "1", "--slurm-mem-gb", "4096"],
                                      "--slurm-mem-gb 4096: no node of partition 'debug' has that many"),
    "more CPUs than any node has": (["--slurm-gpus", "0", "--slurm-cpus", "4096"],
                                    "--slurm-cpus 4096: no node of partition 'debug' has that many"),
    "a controller that does not answer": (["--slurm-gpus", "0"], "--executor slurm: the SLURM controller"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_impossible_requests_are_refused_before_anything_is_submitted(case, tiny_model, tmp_path, tmp_path_factory):
    cluster = find_cluster(False, tmp_path_factory)
    flags, message = BAD[case]
    if case == "a controller that does not answer":  # the real configuration, its controller port unused
        conf = Path(cluster.env["SLURM_CONF"]).read_text(encoding="utf-8")
        dead = tmp_path / "slurm.conf"
        dead.write_text(re.sub(r"(?m)^SlurmctldPort=.*$", "SlurmctldPort=1", conf), encoding="utf-8")
        cluster.env = {"SLURM_CONF": str(dead)}
        message += f" vm:1 ({dead}) does not answer".replace("vm", re.search(r"(?m)^SlurmctldHost=(\S+)", conf)[1])
    started = time.monotonic()
    proc = cluster.xdet(*_impossible(tmp_path, tiny_model("llama"), *flags), timeout=300)
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("xdet sweep: error: ") and message in err, err
    # nothing was submitted: submitit writes its job files under <out>/submitit before it calls sbatch
    assert not (tmp_path / "sw").exists() and time.monotonic() - started < 120


def test_shards_submitted_into_one_sweep_folder_keep_each_others_jobs(tiny_model, tmp_path, tmp_path_factory):
    """Each shard's driver records its own jobs in the shared slurm-jobs.json and keeps the others'."""
    cluster = find_cluster(False, tmp_path_factory)
    out = tmp_path / "sharded"
    argv = ["sweep", "--model", str(tiny_model("llama")), "--out", str(out), "--strategies", "zs,x-ft",
            "--train-langs", "de", "--eval-langs", "de", "--families", "ppl", "--limit", "1", "--scorer", "local",
            "--executor", "slurm", *CPU_JOBS, "--slurm-time", "5", "--detach"]
    try:
        for shard in ("0/2", "1/2"):
            proc = cluster.xdet(*argv, "--shard", shard, timeout=300)
            assert proc.returncode == 0 and "submitted 1 configuration(s)" in proc.stdout, proc.stdout + proc.stderr
        jobs = _jobs(out)
        assert sorted(jobs) == ["llama__x-ft-de", "llama__zs"] and len(set(jobs.values())) == 2, jobs
    finally:
        if (out / "slurm-jobs.json").is_file():
            cluster.run("scancel", *{j.split("_")[0] for j in _jobs(out).values()})
