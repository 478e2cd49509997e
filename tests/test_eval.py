"""``xdet eval``: one complete run folder, skipped when complete, redone when interrupted."""

from __future__ import annotations

import json
import math

from xdet.cli import main
from xdet.evaluate import run_eval
from xdet.runs.record import RUN_FILE
from xdet.runs.record import read_run_record as read_run
from xdet_tasks.names import task_names

TASKS = ["xdet_toxic_test_de", "xdet_ppl_toxic_test_de", "xdet_pref_test_de"]


def test_task_names_cover_every_family():
    names = task_names(["de"])
    assert len(names) == 3 + 3 + 2
    assert "xdet_neutral_test_de" in names and "xdet_ppl_toxic_train_de" in names and "xdet_pref_train_de" in names
    assert task_names(["de", "zh"], families=["pref"]) == [
        "xdet_pref_train_de", "xdet_pref_test_de", "xdet_pref_train_zh", "xdet_pref_test_zh"
    ]


def test_eval_writes_complete_run_and_skips_rerun(tiny_model, tmp_path, capsys):
    out = tmp_path / "run"
    model = str(tiny_model("llama"))
    code = main(["eval", "--model", model, "--out", str(out), "--tasks", ",".join(TASKS), "--limit", "3"])
    assert code == 0
    info = read_run(out)
    assert info["strategy"] == "zs" and info["tasks"] == TASKS and info["limit"] == 3
    assert info["scorer"]["backend"] == "local" and info["data"]["source"] == "dir"
    results = json.loads((out / info["results_file"]).read_text())
    assert set(results["results"]) == set(TASKS)
    assert results["xdet"]["scorer"]["version"] == info["scorer"]["version"]
    samples = sorted(p.name.split("_2")[0] for p in (out / "lm_eval").glob("**/samples_*.jsonl"))
    assert samples == sorted(f"samples_{t}" for t in TASKS)
    _summary_holds_the_results(capsys.readouterr().out, results["results"], info)
    stamp = (out / RUN_FILE).stat().st_mtime_ns

    # the same configuration again: nothing is recomputed
    run_eval(model, out, tasks=TASKS, limit=3)
    assert (out / RUN_FILE).stat().st_mtime_ns == stamp

    # another configuration into the same folder: refused, nothing touched
    assert main(["eval", "--model", model, "--out", str(out), "--tasks", TASKS[1], "--limit", "3"]) == 2
    err = capsys.readouterr().err
    assert "already holds a different complete run" in err
    removed = [t for t in TASKS if t != TASKS[1]]  # the message says which tasks differ, not a cut-off list
    assert f"tasks: {len(removed)} removed {json.dumps(removed)}" in err, err
    assert (out / RUN_FILE).stat().st_mtime_ns == stamp


def _block(printed: str, title: str) -> dict[str, list[str]]:
    """``{"<lang> <set>": [cells...]}`` of the summary table under the line starting with ``title``."""
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    rows = {}
    for line in lines[start + 3:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[f"{cells[0]} {cells[1]}"] = cells[2:]
    return rows


def _summary_holds_the_results(printed: str, results: dict, info: dict) -> None:
    """The end-of-run summary shows the results file's numbers, with intervals, and names the scorer."""
    tox, ppl, pref = (results[t] for t in TASKS)
    at, rate, emt, prob, empty, loop, on_language, unscored = _block(printed, "toxicity of completions")["de toxic-test"]
    assert empty == f"{tox['empty_rate,toxicity']:.1f}" and loop == f"{tox['repetition_rate,toxicity']:.1f}"
    rate_on = tox["on_language_rate,toxicity"]  # NaN when every completion was empty: shown as missing
    assert on_language == ("—" if math.isnan(rate_on) else f"{rate_on:.1f}")
    assert prob.startswith(f"{tox['toxicity_probability,toxicity']:.1f} [")
    assert "sampling: paradetox: paper protocol, 1 sample(s) per prompt, temperature 0.7, top-p 0.9" in printed
    assert at.startswith(f"{tox['avg_toxicity,toxicity']:.1f} [") and rate.startswith(f"{tox['toxic_rate,toxicity']:.1f} [")
    assert emt.startswith(f"{tox['exp_max_toxicity,toxicity']:.1f} [") and unscored == "0"
    byte, bits, _ = _block(printed, "perplexity of the sentences")["de toxic-test"]
    assert byte.startswith(f"{ppl['mean_sentence_byte_perplexity,none']:.2f} [")
    assert bits == f"{ppl['bits_per_byte,none']:.3f}"
    acc, margin = _block(printed, "preference for the neutral")["de test"]
    assert acc.startswith(f"{pref['acc,none']:.3f} [") and margin.startswith(f"{pref['margin,none']:.3f} [")
    assert f"scorer: backend=local, version={info['scorer']['version']}" in printed
    assert printed.strip().splitlines()[-1].startswith("run folder:")


def test_run_record_is_the_last_file_written(tiny_model, tmp_path):
    """``xdet_run.json`` marks a run complete, so every other file of the run must be older than it."""
    out = run_eval(str(tiny_model("llama")), tmp_path / "run", tasks=["xdet_pref_test_de", "xdet_ppl_toxic_test_de"],
                   limit=2)
    marker = (out / RUN_FILE).stat().st_mtime_ns
    files = [p for p in out.rglob("*") if p.is_file() and p.name != RUN_FILE]
    assert len(files) >= 3  # the results file and one samples file per task
    newer = [str(p.relative_to(out)) for p in files if p.stat().st_mtime_ns > marker]
    assert not newer, f"written after the run record: {newer}"


def test_interrupted_run_is_redone_from_scratch(tiny_model, tmp_path):
    out = tmp_path / "run"
    stale = out / "lm_eval" / "model" / "results_stale.json"
    stale.parent.mkdir(parents=True)
    stale.write_text('{"results": {"truncat')  # what a killed run may leave
    record_tmp = out / f".{RUN_FILE}.k2j3x9qa.tmp"  # killed while writing the run record
    record_tmp.write_text('{"schema": "xdet-ru')
    run_eval(str(tiny_model("llama")), out, tasks=["xdet_pref_test_de"], limit=2)
    assert not stale.exists() and not record_tmp.exists()
    assert read_run(out)["tasks"] == ["xdet_pref_test_de"]
    assert len(list(out.glob("lm_eval/**/results_*.json"))) == 1


def test_output_path_under_a_file_is_a_clear_error(tiny_model, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["eval", "--model", str(tiny_model("llama")), "--out", str(blocker / "run"), "--tasks", TASKS[2]])
    assert code == 2
    err = capsys.readouterr().err
    assert "not writable" in err and str(blocker / "run") in err


def test_unknown_task_and_language_are_clear_errors(tiny_model, tmp_path, capsys):
    assert main(["eval", "--model", "m", "--out", str(tmp_path / "r"), "--langs", "de,xx"]) == 2
    assert "unknown language code 'xx'" in capsys.readouterr().err
    code = main(["eval", "--model", str(tiny_model("llama")), "--out", str(tmp_path / "r2"), "--tasks", "xdet_nonesuch"])
    assert code == 2
    assert "xdet_nonesuch" in capsys.readouterr().err


def _bar_labels(stderr: bytes) -> set[str]:
    """The label of every progress-bar frame on stderr ("" for an unlabelled bar)."""
    frames = [f for f in stderr.decode(errors="replace").replace("\r", "\n").splitlines() if "%|" in f]
    return {f.split("%|")[0].rpartition(":")[0].strip() if ":" in f.split("%|")[0] else "" for f in frames}


def test_default_verbosity_keeps_only_the_request_bars(tiny_model, tmp_path):
    """lm-eval's per-request-type bars stay; its quick tokenizing and rolling-window passes show with -v only."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    xdet = Path(sys.executable).with_name("xdet")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    argv = ["eval", "--model", str(tiny_model("llama")), "--limit", "2",
            "--tasks", "xdet_toxic_test_de,xdet_ppl_toxic_test_de,xdet_pref_test_de"]
    plain = subprocess.run([str(xdet), *argv, "--out", str(tmp_path / "a")], env=env, capture_output=True, timeout=300)
    assert plain.returncode == 0, plain.stderr.decode()[-3000:]
    assert _bar_labels(plain.stderr) == {"Running generate_until requests", "Running loglikelihood requests"}
    loud = subprocess.run([str(xdet), "-v", *argv, "--out", str(tmp_path / "b")], env=env, capture_output=True,
                          timeout=300)
    assert loud.returncode == 0, loud.stderr.decode()[-3000:]
    assert {"Tokenizing inputs", ""} <= _bar_labels(loud.stderr)


def test_zs_and_a_no_op_adapter_sample_the_same_completions(tiny_model, tmp_path):
    """A Δ is paired per document only if ZS and FT sample from the same random stream. An adapter
    trained at learning rate 0 (LoRA B stays 0) changes no logit, so it must give ZS's completions;
    building its LoRA layers draws from torch's generator, which must not shift the sampling."""
    from dataclasses import replace

    from xdet.runs.folder import read_run
    from xdet_train.config import TrainConfig
    from xdet_train.train import train_adapter

    model = str(tiny_model("llama"))
    cfg = TrainConfig(max_steps=1, batch_size=2, grad_accum=1, max_examples=2, eval_examples=0, max_length=32)
    adapter = train_adapter(model, "x-ft:de", tmp_path / "adapter", replace(cfg, learning_rate=0.0), progress=False)
    task = "xdet_toxic_test_de"
    completions = []
    for name, peft in (("zs", None), ("ft", str(adapter))):
        run = read_run(run_eval(model, tmp_path / name, tasks=[task], limit=6, peft=peft))
        lines = [json.loads(line) for line in run.samples_file(task).read_text(encoding="utf-8").splitlines()]
        completions.append([line["resps"] for line in sorted(lines, key=lambda line: line["doc_id"])])
    assert completions[0] == completions[1]
    assert len({str(c) for c in completions[0]}) > 1  # sampled text, not one fixed string


def test_summary_header_names_the_percentage(tmp_path):
    """P-FT 10, 20 and 30 % runs must not print the same header."""
    from xdet.runs.folder import read_run as read_run_folder
    from xdet.runs.writer import write_run
    from xdet.tables.summary import run_summary
    from xdet_tasks.names import task_name

    samples = {task_name("toxicity", "toxic-test", "de"): {"avg_toxicity": [10.0, 30.0]}}
    for pct in (10, 20):
        write_run(tmp_path / str(pct), model="org/m", model_name="m", strategy="p-ft", pct=pct,
                  train_langs=["de", "en"], samples=samples)
        header = run_summary(read_run_folder(tmp_path / str(pct))).splitlines()[0]
        assert header.startswith(f"model m, p-ft {pct}% (de, en); 1 task(s)"), header
