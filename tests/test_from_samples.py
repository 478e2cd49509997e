"""Scores that survive the Perspective shutdown: every number rebuilt from published samples files alone."""

from __future__ import annotations

import math
import shutil

from xdet.cli import main
from xdet.evaluate import run_eval
from xdet.runs.folder import read_run
from xdet.runs.writer import write_run
from xdet.tables.paper import write_paper_results

TASKS = ["xdet_toxic_test_de", "xdet_neutral_test_es", "xdet_ppl_toxic_test_de", "xdet_pref_test_es"]


def test_a_real_run_rebuilds_from_its_samples_alone(tiny_model, tmp_path, monkeypatch):
    out = run_eval(str(tiny_model("llama")), tmp_path / "run", tasks=TASKS, limit=4)
    full = read_run(out)
    published = tmp_path / "published" / "run"
    shutil.copytree(out, published)
    for results in published.rglob("results_*.json"):  # what a team publishes: the run record and samples
        results.unlink()
    monkeypatch.setenv("XDET_SCORER", "no-such-scorer")  # any scorer call would fail
    rebuilt = read_run(published, from_samples=True)
    assert sorted(rebuilt.aggregates) == sorted(TASKS)
    for task in TASKS:
        for key, value in rebuilt.aggregates[task].items():
            expected = full.aggregates[task][key]
            if value is None:  # a number that does not exist: NaN in lm-eval's results file, None rebuilt
                assert expected is None or math.isnan(expected), (task, key)
                continue
            assert value == expected or abs(value - expected) <= 1e-9 * max(1.0, abs(expected)), (task, key)


def test_tables_and_repro_rebuild_from_samples(tmp_path, capsys):
    write_paper_results(tmp_path / "paper", [3], n_samples=3)
    for results in (tmp_path / "paper").rglob("results_*.json"):
        results.unlink()
    assert main(["tables", str(tmp_path / "paper"), "--out", str(tmp_path / "t"), "--from-samples", "--n-boot", "0",
                 "--paper-layout"]) == 0
    assert "1 table(s)" in capsys.readouterr().out
    assert main(["tables", str(tmp_path / "paper"), "--out", str(tmp_path / "t2"), "--n-boot", "0"]) == 2
    assert "--from-samples" in capsys.readouterr().err


def test_unscored_counts_are_summed_not_averaged(tmp_path):
    write_run(tmp_path / "r", model="m", samples={"xdet_toxic_test_de": {"avg_toxicity": [10.0, None, 30.0],
                                                                       "unscored": [0.0, 1.0, 0.0]}})
    for results in (tmp_path / "r").rglob("results_*.json"):
        results.unlink()
    run = read_run(tmp_path / "r", from_samples=True)
    assert run.value("xdet_toxic_test_de", "unscored") == 1.0
    assert run.value("xdet_toxic_test_de", "avg_toxicity") == 20.0
