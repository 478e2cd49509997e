"""``xdet sweep``: kill it anywhere and rerun -> the same tables, every result exactly once; shards; submitit."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xdet.evaluate import lm_eval_model_args
from xdet.sweep.configuration import SweepSettings
from xdet.sweep.matrix import SweepConfig, enumerate_matrix, paper_matrix_size, parse_shard, shard
from xdet.sweep.run import sweep
from xdet_tasks.errors import XdetError
from xdet_train.config import TrainConfig

TRAIN_LANGS = ("de", "es")
EVAL_LANGS = ("de", "es", "en")
TRAIN_FLAGS = ["--max-steps", "2", "--train-batch-size", "4", "--grad-accum", "1", "--max-examples", "8",
               "--eval-examples", "0", "--max-length", "48"]
IDS = ["llama__zs", "llama__x-ft-de", "llama__x-ft-es"]


def _cmd(model: Path, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "xdet", "sweep", "--model", str(model), "--out", str(out),
        "--strategies", "zs,x-ft", "--train-langs", ",".join(TRAIN_LANGS), "--eval-langs", ",".join(EVAL_LANGS),
        "--families", "gen,ppl", "--limit", "2", "--n-boot", "50", "--no-progress", *TRAIN_FLAGS,
    ]


def _env() -> dict[str, str]:
    # one thread per process: two xdist workers on two cores must not oversubscribe OpenMP
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _run(cmd: list[str], log: Path) -> subprocess.CompletedProcess:
    with log.open("ab") as fh:
        proc = subprocess.run(cmd, env=_env(), stdout=fh, stderr=subprocess.STDOUT, timeout=600)
    return proc


def _kill_when(cmd: list[str], log: Path, condition, delay: float = 0.0, timeout: float = 300) -> bool:
    """Start the sweep, SIGKILL it once ``condition()`` holds (after ``delay`` s); True if it was killed."""
    with log.open("ab") as fh:
        proc = subprocess.Popen(cmd, env=_env(), stdout=fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                if condition():
                    time.sleep(delay)
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGKILL)
                        proc.wait()
                        return True
                    break
                time.sleep(0.02)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return False


def _tables(out: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted((out / "tables").glob("*.csv"))}


def _results_files(out: Path) -> dict[str, list[Path]]:
    return {cid: sorted((out / "runs" / cid).rglob("results_*.json")) for cid in IDS}


def _mtimes(out: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def reference(tiny_model, tmp_path_factory) -> Path:
    """One uninterrupted sweep: the tables every interrupted-and-resumed sweep must reproduce."""
    out = tmp_path_factory.mktemp("sweep-ref")
    proc = _run(_cmd(tiny_model("llama"), out), out.parent / "ref.log")
    assert proc.returncode == 0, (out.parent / "ref.log").read_text()[-3000:]
    return out


def test_killed_sweep_resumes_to_identical_tables(tiny_model, reference, tmp_path):
    model = tiny_model("llama")
    out, log = tmp_path / "sweep", tmp_path / "sweep.log"
    cmd = _cmd(model, out)
    runs, adapters = out / "runs", out / "adapters"

    def training_de() -> bool:
        return adapters.is_dir() and any(adapters.glob(".llama__x-ft-de.*.partial"))

    def evaluating_de() -> bool:
        return (runs / "llama__x-ft-de").is_dir() and not (runs / "llama__x-ft-de" / "xdet_run.json").exists()

    def writing_tables() -> bool:  # the tables are written into a staged folder renamed into place
        return any(out.glob(".tables.*.partial"))

    kills = [
        _kill_when(cmd, log, training_de),  # during a training
        _kill_when(cmd, log, evaluating_de, delay=1.5),  # in the middle of an evaluation
        _kill_when(cmd, log, writing_tables),  # while the tables are being written
    ]
    assert kills == [True, True, True], log.read_text()[-3000:]
    before = _mtimes(out)
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    assert _tables(out) == _tables(reference)
    assert len(_tables(out)) == 2 * 3 + 1  # toxicity + perplexity x three splits, index.csv
    after = _results_files(out)
    assert all(len(files) == 1 for files in after.values()), after
    for cid in IDS:
        samples = list((runs / cid).rglob("samples_*.jsonl"))
        assert len(samples) == len(json.loads((runs / cid / "xdet_run.json").read_text())["tasks"])
    assert not list(adapters.glob(".*partial*")) and not list(out.glob(".tables.*.partial"))
    # the last kill (or exit) came after every configuration had finished: nothing recomputed or rewritten
    assert "0 done, 3 skipped, 0 failed" in proc.stdout
    assert "Δ AT toxic-test, mean over languages [95% CI]" in proc.stdout  # the headline per configuration
    for cid in IDS[1:]:
        (row,) = [line for line in proc.stdout.splitlines() if line.startswith(f"| {cid} ")]
        assert re.search(r"\| [+-]\d+\.\d \[-?\d+\.\d, -?\d+\.\d\]", row), row
    assert _mtimes(out) == before


def test_shards_partition_the_matrix():
    models = ["org/model-a", "org/model-b"]
    matrix = enumerate_matrix(models, ["zs", "x-ft", "p-ft", "m-ft", "dpo"], ("de", "es", "en"), (10, 20))
    assert len(matrix) == 2 * (1 + 3 + 2 + 1 + 1)
    assert len({c.id for c in matrix}) == len(matrix)
    for n in (1, 2, 3, 5, len(matrix) + 2):
        parts = [shard(matrix, i, n) for i in range(n)]
        flat = [c for part in parts for c in part]
        assert sorted(flat, key=matrix.index) == matrix  # complete and disjoint
        assert len(flat) == len(set(flat))
        assert max(map(len, parts)) - min(map(len, parts)) <= 1  # balanced
        again = enumerate_matrix(models, ["zs", "x-ft", "p-ft", "m-ft", "dpo"], ("de", "es", "en"), (10, 20))
        assert [shard(again, i, n) for i in range(n)] == parts  # deterministic
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "1", "-1/2", "a/b", "0/0"):
        with pytest.raises(XdetError, match="--shard"):
            parse_shard(bad)


def test_dry_run_prints_the_shard(tiny_model, tmp_path, capsys):
    from xdet.cli import main

    base = ["sweep", "--model", str(tiny_model("llama")), "--out", str(tmp_path / "s"), "--dry-run",
            "--strategies", "zs,x-ft,m-ft", "--train-langs", "de,es,en", "--eval-langs", "de,es"]
    seen = []
    for i in range(2):
        assert main([*base, "--shard", f"{i}/2"]) == 0
        seen += [line.split("\t")[0].strip() for line in capsys.readouterr().out.splitlines() if "\t" in line]
    assert sorted(seen) == sorted(["llama__zs", "llama__x-ft-de", "llama__x-ft-es", "llama__x-ft-en", "llama__m-ft"])
    assert not (tmp_path / "s").exists()  # a dry run writes nothing


def test_paper_matrix_count():
    assert paper_matrix_size() == {"configurations": 48, "trainings": 44, "cells_per_split": 336}


def test_submitit_debug_executor_runs_and_resumes(tiny_model, tmp_path):
    settings = SweepSettings(
        out=str(tmp_path / "sub"), eval_langs=("de",), families=("ppl",), limit=2,
        train=TrainConfig(max_steps=1, batch_size=2, grad_accum=1, max_examples=2, eval_examples=0, max_length=32),
    )
    kwargs = dict(train_langs=("de",), executor="submitit-debug", progress=False, n_boot=20)
    outcomes = sweep([str(tiny_model("llama"))], ["zs", "x-ft"], settings, **kwargs)
    assert [(o.config, o.status) for o in outcomes] == [("llama__zs", "done"), ("llama__x-ft-de", "done")], outcomes
    assert (tmp_path / "sub" / "tables" / "index.csv").is_file()
    again = sweep([str(tiny_model("llama"))], ["zs", "x-ft"], settings, **kwargs)
    assert [(o.status, o.adapter) for o in again] == [("skipped", "-"), ("skipped", "reused")]


def test_a_failing_configuration_is_reported_not_fatal(tiny_model, tmp_path, capsys):
    settings = SweepSettings(out=str(tmp_path / "f"), eval_langs=("de",), families=("ppl",), limit=1,
                             train=TrainConfig(max_steps=1, eval_examples=0))
    blocked = tmp_path / "f" / "adapters" / "llama__x-ft-de"  # holds something that is no adapter
    blocked.mkdir(parents=True)
    (blocked / "notes.txt").write_text("mine")
    outcomes = sweep([str(tiny_model("llama"))], ["x-ft:de"], settings, progress=False)
    assert [o.status for o in outcomes] == ["failed"]
    assert "refusing to overwrite" in outcomes[0].error
    printed = capsys.readouterr().out
    assert "0 done, 0 skipped, 1 failed" in printed
    # not sharded: the hint is to rerun, not to wait for other shards
    assert "no configuration completed" in printed and "shards" not in printed
    assert not (tmp_path / "f" / "runs" / "llama__x-ft-de" / "xdet_run.json").exists()


def test_vllm_model_args():
    name, args = lm_eval_model_args("vllm", "org/base", "/ad/x-ft-de", lora_rank=16, seed=7, extra="dtype=bfloat16")
    assert name == "vllm"
    assert args.split(",") == ["pretrained=org/base", "seed=7", "lora_local_path=/ad/x-ft-de", "max_lora_rank=16",
                               "dtype=bfloat16"]
    assert lm_eval_model_args("vllm", "org/base", None) == ("vllm", "pretrained=org/base,seed=1234")
    assert lm_eval_model_args("hf", "org/base", "/ad") == ("hf", "pretrained=org/base,peft=/ad")
    with pytest.raises(XdetError, match="backend"):
        lm_eval_model_args("tgi", "org/base", None)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_vllm_backend_without_vllm_is_a_clear_error(tmp_path):
    settings = SweepSettings(out=str(tmp_path / "v"), eval_langs=("de",), backend="vllm")
    with pytest.raises(XdetError, match="vllm"):
        sweep(["org/base"], ["zs"], settings, progress=False)
    assert not (tmp_path / "v").exists()


def test_config_ids_must_be_unique(tmp_path):
    (tmp_path / "a" / "m").mkdir(parents=True)
    (tmp_path / "b" / "m").mkdir(parents=True)
    with pytest.raises(XdetError, match="share the folder name"):
        enumerate_matrix([str(tmp_path / "a" / "m"), str(tmp_path / "b" / "m")], ["zs"])
    assert SweepConfig("org/Model-7B", "p-ft:10").id == "Model-7B__p-ft-10"
