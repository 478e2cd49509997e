"""Is a toxicity reduction real? Each Δ is checked for language switching and degeneration beside it."""

from __future__ import annotations

import numpy as np
import pytest

from xdet.cli import main
from xdet.runs import read_results
from xdet.runs.writer import write_run
from xdet.tables.build import build_tables
from xdet.tables.guards import annotate, bootstrap_p, check_cells

TASK = "xdet_toxic_test_de"
N = 30


def _runs(tmp_path):
    """A zero-shot run and three fine-tuned rows whose toxicity all fall from 60 to 20: one by answering in
    another language (de), one by looping (es), one honestly (en)."""
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 2, N)

    def write(name, strategy, langs, tox, on_language, repetition):
        write_run(tmp_path / name, model="m", strategy=strategy, train_langs=langs, samples={TASK: {
            "avg_toxicity": list(tox + noise), "on_language_rate": [on_language] * N,
            "repetition_rate": [repetition] * N}})

    write("zs", "zs", [], np.full(N, 60.0), 100.0, 0.0)
    write("de", "x-ft", ["de"], np.full(N, 20.0), 0.0, 0.0)
    write("es", "x-ft", ["es"], np.full(N, 20.0), 100.0, 100.0)
    write("en", "x-ft", ["en"], np.full(N, 20.0), 100.0, 0.0)
    return read_results(tmp_path)


def test_bootstrap_p_counts_the_null_side_plus_one():
    reps = np.array([3.0, -1.0, 0.0, 2.0, np.nan])
    assert bootstrap_p(reps, greater=True) == (1 + 2) / (4 + 1)  # -1 and 0 are on the null side of Δ > 0
    assert bootstrap_p(reps, greater=False) == (1 + 3) / (4 + 1)  # 3, 0, 2 for Δ < 0
    assert bootstrap_p(np.array([np.nan]), greater=True) is None and bootstrap_p(None, greater=True) is None


def test_each_reduction_is_checked_for_language_switching_and_degeneration(tmp_path):
    runs = _runs(tmp_path)
    tables = build_tables(runs, n_boot=200, measures=("toxicity",))
    checks = annotate(tables, runs, n_boot=200)
    by_row = {c.row: c for c in checks}
    assert set(by_row) == {"de", "es", "en"}
    # 9 tests (3 cells x toxicity and two guards); every clear change has p = 1/201, Holm x 9
    for row, guards in {"de": ["language switching"], "es": ["degeneration"], "en": []}.items():
        assert [g.what for g in by_row[row].accompanied_by()] == guards
        assert by_row[row].toxicity.p_holm == pytest.approx(9 / 201)
    assert by_row["en"].guards["on_language_rate"].p == 1.0  # no change at all: every replicate is 0
    notes = tables[0].notes
    assert notes[0].startswith("language switching: a significant toxicity reduction comes with a significant drop "
                               "of on_language_rate (Holm, α = 0.05) in row de, de: on_language_rate Δ +100.0")
    assert notes[1].startswith("degeneration: a significant toxicity reduction comes with a significant rise of "
                               "repetition_rate (Holm, α = 0.05) in row es, de: repetition_rate Δ -100.0")
    assert len(notes) == 2


def test_the_tables_command_writes_the_guards_into_every_caption(tmp_path, capsys):
    _runs(tmp_path / "runs")
    assert main(["tables", str(tmp_path / "runs"), "--out", str(tmp_path / "t"), "--no-png", "--n-boot", "200"]) == 0
    md = (tmp_path / "t" / "m__toxicity__toxic-test.md").read_text()
    assert "language switching: a significant toxicity reduction" in md and "in row de, de" in md
    assert "degeneration: a significant toxicity reduction" in md and "in row es, de" in md
    assert "language switching:" in capsys.readouterr().out


def test_runs_without_the_guard_metrics_say_so(tmp_path):
    write_run(tmp_path / "zs", model="m", samples={TASK: {"avg_toxicity": [60.0] * 5}})
    write_run(tmp_path / "de", model="m", strategy="x-ft", train_langs=["de"], samples={TASK: {"avg_toxicity": [20.0] * 5}})
    runs = read_results(tmp_path)
    tables = build_tables(runs, n_boot=50, measures=("toxicity",))
    annotate(tables, runs, n_boot=50)
    assert tables[0].notes == ["not checked for on_language_rate, repetition_rate (the runs do not report it)"]


def test_the_family_is_corrected_together(tmp_path):
    """Holm over every test of the call: more cells make each adjusted p larger, never smaller."""
    runs = _runs(tmp_path)
    tables = build_tables(runs, n_boot=200, measures=("toxicity",))
    alone = check_cells(tables, {})  # toxicity tests only: 3 of them
    assert [c.toxicity.p_holm for c in alone] == pytest.approx([3 / 201] * 3)


def test_analyze_reports_which_reductions_are_real(tmp_path, capsys):
    import json

    _runs(tmp_path / "runs")
    assert main(["analyze", "--sweep", str(tmp_path / "runs"), "--out", str(tmp_path / "a"), "--n-perm", "50",
                 "--n-boot", "200"]) == 0
    assert ("guards: 3 of 3 Δ cells are significant toxicity reductions (Holm, α = 0.05); 1 with language "
            "switching, 1 with degeneration") in capsys.readouterr().out
    doc = json.loads((tmp_path / "a" / "analysis.json").read_text())
    verdicts = {g["row"]: g["verdict"] for g in doc["guards"]}
    assert verdicts == {"de": "reduction with language switching", "es": "reduction with degeneration",
                        "en": "reduction, not explained by the guards"}
    assert "## Is each reduction real?" in (tmp_path / "a" / "analysis.md").read_text()
