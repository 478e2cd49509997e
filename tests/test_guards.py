"""Is a toxicity reduction real? Each Δ is checked for language switching, degeneration and empty completions."""

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


def _runs(tmp_path, unknown: float | None = None):
    """A zero-shot run and four fine-tuned rows whose toxicity all fall from 60 to 20: one by answering in
    another language (de), one by looping (es), one by answering nothing (ru), one honestly (en);
    ``unknown``: every completion's share of unknown language, where given."""
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 2, N)

    def write(name, strategy, langs, tox, on_language, repetition, empty=0.0):
        values = {"avg_toxicity": list(tox + noise), "on_language_rate": [on_language] * N,
                  "repetition_rate": [repetition] * N, "empty_rate": [empty] * N}
        if unknown is not None:
            values["unknown_language_rate"] = [unknown] * N
        write_run(tmp_path / name, model="m", strategy=strategy, train_langs=langs, samples={TASK: values})

    write("zs", "zs", [], np.full(N, 60.0), 100.0, 0.0)
    write("de", "x-ft", ["de"], np.full(N, 20.0), 0.0, 0.0)
    write("es", "x-ft", ["es"], np.full(N, 20.0), 100.0, 100.0)
    write("ru", "x-ft", ["ru"], np.full(N, 20.0), 100.0, 0.0, empty=100.0)
    write("en", "x-ft", ["en"], np.full(N, 20.0), 100.0, 0.0)
    return read_results(tmp_path)


def test_bootstrap_p_counts_the_null_side_plus_one():
    reps = np.array([3.0, -1.0, 0.0, 2.0, np.nan])
    assert bootstrap_p(reps, greater=True) == (1 + 2) / (4 + 1)  # -1 and 0 are on the null side of Δ > 0
    assert bootstrap_p(reps, greater=False) == (1 + 3) / (4 + 1)  # 3, 0, 2 for Δ < 0
    assert bootstrap_p(np.array([np.nan]), greater=True) is None and bootstrap_p(None, greater=True) is None


def test_each_reduction_is_checked_for_language_switching_degeneration_and_empty_completions(tmp_path):
    runs = _runs(tmp_path)
    tables = build_tables(runs, n_boot=400, measures=("toxicity",))
    checks = annotate(tables, runs, n_boot=400)
    by_row = {c.row: c for c in checks}
    assert set(by_row) == {"de", "es", "ru", "en"}
    # 16 tests (4 cells x toxicity and three guards); every clear change has p = 1/401, Holm x 16 (B = 400: the smallest p must survive x 16)
    expected = {"de": ["language switching"], "es": ["degeneration"], "ru": ["more empty completions"], "en": []}
    for row, guards in expected.items():
        assert [g.what for g in by_row[row].accompanied_by()] == guards
        assert by_row[row].toxicity.p_holm == pytest.approx(16 / 401)
    assert by_row["en"].guards["on_language_rate"].p == 1.0  # no change at all: every replicate is 0
    notes = tables[0].notes
    assert notes[0] == ("guards: 4 of 4 Δ cells are significant toxicity reductions (Holm, α = 0.05); 1 with "
                        "language switching, 1 with degeneration, 1 with more empty completions")
    assert notes[1].startswith("language switching: a significant toxicity reduction comes with a significant drop "
                               "of on_language_rate (Holm, α = 0.05) in row de, de: on_language_rate Δ +100.0")
    assert notes[2].startswith("degeneration: a significant toxicity reduction comes with a significant rise of "
                               "repetition_rate (Holm, α = 0.05) in row es, de: repetition_rate Δ -100.0")
    assert notes[3].startswith("more empty completions: a significant toxicity reduction comes with a significant "
                               "rise of empty_rate (Holm, α = 0.05) in row ru, de: empty_rate Δ -100.0")
    assert len(notes) == 4


@pytest.mark.parametrize(("unknown", "said"), [(80.0, True), (50.0, False), (None, False)])
def test_a_language_check_on_few_identified_completions_says_so(tmp_path, unknown, said):
    """Short toy completions are mostly of unknown language: then 'no language switching' means little."""
    runs = _runs(tmp_path, unknown)
    tables = build_tables(runs, n_boot=50, measures=("toxicity",))
    annotate(tables, runs, n_boot=50)
    thin = [n for n in tables[0].notes if n.startswith("language switching is tested on few completions")]
    assert thin == ([f"language switching is tested on few completions: {unknown:.0f} % of the non-empty completions "
                     "are of unknown language on average (unknown_language_rate: too short, or below the "
                     "identifier's confidence floor)"] if said else [])


def test_the_tables_command_writes_the_guards_into_every_caption(tmp_path, capsys):
    _runs(tmp_path / "runs")
    assert main(["tables", str(tmp_path / "runs"), "--out", str(tmp_path / "t"), "--no-png", "--n-boot", "400"]) == 0
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
    assert tables[0].notes == [
        "guards: 1 of 1 Δ cells are significant toxicity reductions (Holm, α = 0.05); 0 with language switching, "
        "0 with degeneration, 0 with more empty completions",
        "not checked for on_language_rate, repetition_rate, empty_rate (the runs do not report it)"]


def test_the_family_is_corrected_together(tmp_path):
    """Holm over every test of the call: more cells make each adjusted p larger, never smaller."""
    runs = _runs(tmp_path)
    tables = build_tables(runs, n_boot=200, measures=("toxicity",))
    alone = check_cells(tables, {})  # toxicity tests only: 4 of them
    assert [c.toxicity.p_holm for c in alone] == pytest.approx([4 / 201] * 4)


def test_analyze_reports_which_reductions_are_real(tmp_path, capsys):
    import json

    _runs(tmp_path / "runs")
    assert main(["analyze", "--sweep", str(tmp_path / "runs"), "--out", str(tmp_path / "a"), "--n-perm", "50",
                 "--n-boot", "400"]) == 0
    assert ("guards: 4 of 4 Δ cells are significant toxicity reductions (Holm, α = 0.05); 1 with language "
            "switching, 1 with degeneration, 1 with more empty completions") in capsys.readouterr().out
    doc = json.loads((tmp_path / "a" / "analysis.json").read_text())
    verdicts = {g["row"]: g["verdict"] for g in doc["guards"]}
    assert verdicts == {"de": "reduction with language switching", "es": "reduction with degeneration",
                        "ru": "reduction with more empty completions", "en": "reduction, not explained by the guards"}
    assert "## Is each reduction real?" in (tmp_path / "a" / "analysis.md").read_text()


def test_the_tests_draw_enough_resamples_for_their_family(tmp_path):
    """A bootstrap p is at least 1/(B + 1), so Holm over m tests needs B + 1 > m/α: with the tables' 200
    the same clear reductions could never pass (16/201 = 0.08); the guards draw 2 m/α = 1000 instead."""
    runs = _runs(tmp_path)
    tables = build_tables(runs, n_boot=200, measures=("toxicity",))
    checks = annotate(tables, runs, n_boot=200)
    assert {c.toxicity.resamples for c in checks} == {1000} and all(c.toxicity.significant() for c in checks)
    assert tables[0].replicates["de"]["de"].size == 200  # the table keeps its own intervals
    assert all(c.toxicity.p_holm == pytest.approx(16 / 1001) for c in checks)
    # a family the resamples cannot serve is said, not passed off as "no reduction"
    from xdet.tables.guards import summary_line

    for check in checks:
        for test in (check.toxicity, *check.guards.values()):
            test.resamples = 200
    assert summary_line(checks).endswith("— none could be: with 200 bootstrap resamples and 16 tests the smallest "
                                         "p after Holm is 0.08; rerun with --n-boot 1000 or more")


def test_without_resamples_the_guards_say_they_did_not_test(tmp_path):
    runs = _runs(tmp_path)
    tables = build_tables(runs, n_boot=0, measures=("toxicity",))
    annotate(tables, runs, n_boot=0)
    assert tables[0].notes[0].endswith("— not tested: no per-prompt values to resample (--n-boot 0, or no samples files)")
