"""Ctrl-C: one line saying what was interrupted, exit status 130, nothing left that a rerun would take
for a result, and the rerun completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

XDET = str(Path(sys.executable).with_name("xdet"))
TRAIN = ["--max-steps", "400", "--batch-size", "2", "--grad-accum", "1", "--eval-examples", "0", "--max-length", "48"]


def _interrupt(argv: list[str], started) -> subprocess.CompletedProcess:
    """Run ``xdet argv``, send SIGINT once ``started()`` holds, return the finished process."""
    env = os.environ | {"OMP_NUM_THREADS": "1", "XDET_SCORER": "local"}
    proc = subprocess.Popen([XDET, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 240
    while proc.poll() is None and not started() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the command ended before it could be interrupted"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _check_message(proc: subprocess.CompletedProcess, command: str) -> None:
    assert proc.returncode == 130, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"xdet {command}: interrupted;") and "rerun the same command to resume" in last, last
    assert "Traceback" not in proc.stderr and "KeyboardInterrupt" not in proc.stderr


def test_eval_interrupted_leaves_no_folder(tiny_model, tmp_path):
    out = tmp_path / "new" / "run"  # a parent the run had to make goes too
    argv = ["eval", "--model", str(tiny_model("llama")), "--out", str(out), "--langs", "de,es,en", "--limit", "40"]
    proc = _interrupt(argv, lambda: out.exists())
    _check_message(proc, "eval")
    assert not out.parent.exists(), "an interrupted evaluation must not leave its folder (or its claim) behind"


def test_train_interrupted_leaves_no_adapter(tiny_model, tmp_path):
    out = tmp_path / "adapter"
    argv = ["train", "--model", str(tiny_model("llama")), "--strategy", "x-ft:de", "--out", str(out), *TRAIN]
    proc = _interrupt(argv, lambda: any(tmp_path.glob(".adapter.*.partial")))
    _check_message(proc, "train")
    assert not out.exists() and not list(tmp_path.glob(".adapter.*.partial"))


def test_sweep_interrupted_then_resumed(tiny_model, tmp_path):
    out = tmp_path / "sweep"
    argv = ["sweep", "--model", str(tiny_model("llama")), "--out", str(out), "--strategies", "zs,x-ft",
            "--train-langs", "de", "--eval-langs", "de", "--families", "ppl,pref", "--limit", "2", "--n-boot", "20",
            "--no-progress", "--max-steps", "300", "--train-batch-size", "2", "--grad-accum", "1",
            "--eval-examples", "0", "--max-length", "48"]
    adapters = out / "adapters"
    proc = _interrupt(argv, lambda: adapters.is_dir() and any(adapters.glob(".*partial*")))
    _check_message(proc, "sweep")
    assert not list(adapters.glob(".*partial*")), "an interrupted training must not leave its temp folder"
    assert not list(out.rglob("*.claim")), "an interrupted sweep must not leave its claim (a rerun would wait on it)"
    assert not (out / "runs" / "llama__x-ft-de" / "xdet_run.json").exists()
    finish = argv[:argv.index("--max-steps")] + ["--max-steps", "2", *argv[argv.index("--train-batch-size"):]]
    done = subprocess.run([XDET, *finish], capture_output=True, text=True, timeout=600,
                          env=os.environ | {"OMP_NUM_THREADS": "1", "XDET_SCORER": "local"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "runs" / "llama__x-ft-de" / "xdet_run.json").exists() and (out / "tables" / "index.csv").exists()


@pytest.mark.slow
def test_demo_interrupted_names_the_demo(tmp_path):
    out = tmp_path / "demo"
    proc = _interrupt(["demo", "--out", str(out), "--limit", "2", "--threads", "1"], lambda: (out / "runs").exists())
    _check_message(proc, "demo")
    from xdet.runs.folder import read_run

    for record in (out / "runs").glob("*/xdet_run.json"):  # whatever looks complete must read as complete
        assert read_run(record.parent).aggregates


def _many_completions(folder: Path, prompts: int, k: int) -> Path:
    """A samples file of ``prompts`` x ``k`` distinct completions (the paper's sentences), as lm-eval writes one."""
    import json

    from xdet_tasks.suites.paradetox import load_pairs

    pairs = load_pairs("en", "train") + load_pairs("de", "train")
    path = folder / "lm_eval" / "m" / "samples_xdet_toxic_test_de_2026-01-01T00-00-00.000000.jsonl"
    path.parent.mkdir(parents=True)
    lines = [json.dumps({"doc_id": i, "arguments": {"gen_args_0": {"arg_0": f"Complete the sentence: {pairs[i % 600].toxic}"}},
                         "resps": [[f" {i}.{j}: {pairs[(i + j + 1) % 600].neutral}" for j in range(k)]], "filter": "toxicity"})
             for i in range(prompts)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fluency_interrupted_then_resumed(tiny_model, tmp_path, monkeypatch):
    import re
    import sqlite3

    monkeypatch.setenv("XDET_CACHE_DIR", str(tmp_path / "cache"))
    samples = _many_completions(tmp_path / "run", 1000, 5)
    db = tmp_path / "cache" / "fluency.sqlite3"

    def cached() -> int:
        if not db.exists():
            return 0
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
                return conn.execute("SELECT COUNT(*) FROM fluency").fetchone()[0]
        except sqlite3.OperationalError:  # the table is being created
            return 0

    argv = ["fluency", str(tmp_path / "run"), "--model", str(tiny_model("llama")), "--batch-size", "8", "--threads", "1"]
    proc = _interrupt(argv, lambda: cached() > 0)
    _check_message(proc, "fluency")
    assert not list(samples.parent.glob("fluency_*")) and not list(samples.parent.glob(".fluency_*"))
    done_before = cached()
    assert 0 < done_before < 5000
    rerun = subprocess.run([XDET, *argv], capture_output=True, text=True, timeout=600,
                           env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    counts = re.search(r"5000 completion\(s\): (\d+) scored by the model, (\d+) from the cache", rerun.stdout)
    assert counts and (int(counts[1]), int(counts[2])) == (5000 - done_before, done_before), rerun.stdout
    assert len(list(samples.parent.glob("fluency_*.jsonl"))) == 1
