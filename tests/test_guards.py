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


def _runs(tmp_path, unknown: float | dict[str, float] | None = None):
    """A zero-shot run and four fine-tuned rows whose toxicity all fall from 60 to 20: one by answering in
    another language (de), one by looping (es), one by answering nothing (ru), one honestly (en);
    ``unknown``: every completion's share of unknown language, where given (a dict: per run, by name)."""
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 2, N)

    def write(name, strategy, langs, tox, on_language, repetition, empty=0.0):
        values = {"avg_toxicity": list(tox + noise), "on_language_rate": [on_language] * N,
                  "repetition_rate": [repetition] * N, "empty_rate": [empty] * N}
        share = unknown.get(name) if isinstance(unknown, dict) else unknown
        if share is not None:
            values["unknown_language_rate"] = [share] * N
        write_run(tmp_path / name, model="m", strategy=strategy, train_langs=langs, samples={TASK: values})

    write("zs", "zs", [], np.full(N, 60.0), 100.0, 0.0)
    write("de", "x-ft", ["de"], np.full(N, 20.0), 0.0, 0.0)
    write("es", "x-ft", ["es"], np.full(N, 20.0), 100.0, 100.0)
    write("ru", "x-ft", ["ru"], np.full(N, 20.0), 100.0, 0.0, empty=100.0)
    write("en", "x-ft", ["en"], np.full(N, 20.0), 100.0, 0.0)
    return read_results(tmp_path)


def test_bootstrap_p_counts_the_null_side_plus_one():
    reps = np.array([3.0, -1.0, 0.0, 0.5, 2.0, np.nan])
    assert bootstrap_p(reps, greater=True) == (1 + 2) / (5 + 1)  # -1 and 0 are on the null side of Δ > 0
    assert bootstrap_p(reps, greater=False) == (1 + 4) / (5 + 1)  # 3, 0, 0.5, 2 for Δ < 0
    # replicates with a missing one (None in an object array) count over the others
    assert bootstrap_p(np.array([0.5, None, -1.0], dtype=object), greater=True) == (1 + 1) / (2 + 1)
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
    assert {c.toxicity.measure for c in checks} == {"avg_toxicity"}
    assert {m: t.measure for m, t in by_row["de"].guards.items()} == {m: m for m in ("on_language_rate",
                                                                                     "repetition_rate", "empty_rate")}
    notes = tables[0].notes
    assert notes[0] == ("guards: 4 of 4 Δ cells are significant toxicity reductions (Holm, α = 0.05); 1 with "
                        "language switching, 1 with degeneration, 1 with more empty completions")
    # every prompt's guard value changes by the same 100 points, so every replicate and both bounds are ±100
    assert notes[1] == ("language switching: a significant toxicity reduction comes with a significant drop "
                        "of on_language_rate (Holm, α = 0.05) in row de, de: on_language_rate Δ +100.0 [100.0, 100.0]")
    assert notes[2] == ("degeneration: a significant toxicity reduction comes with a significant rise of "
                        "repetition_rate (Holm, α = 0.05) in row es, de: repetition_rate Δ -100.0 [-100.0, -100.0]")
    assert notes[3] == ("more empty completions: a significant toxicity reduction comes with a significant "
                        "rise of empty_rate (Holm, α = 0.05) in row ru, de: empty_rate Δ -100.0 [-100.0, -100.0]")
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
    checks = annotate(tables, runs, n_boot=0)
    assert tables[0].notes[0] == ("guards: 0 of 4 Δ cells are significant toxicity reductions (Holm, α = 0.05); 0 with "
                                  "language switching, 0 with degeneration, 0 with more empty completions — not "
                                  "tested: no per-prompt values to resample (--n-boot 0, or no samples files)")
    assert {t.resamples for c in checks for t in (c.toxicity, *c.guards.values())} == {0}


def test_a_p_equal_to_alpha_is_not_significant():
    from xdet.tables.guards import Test

    assert not Test("avg_toxicity", 40.0, 30.0, 50.0, p=1 / 320, p_holm=16 / 320).significant()  # exactly 0.05
    assert Test("avg_toxicity", 40.0, 30.0, 50.0, p=1 / 321, p_holm=16 / 321).significant()


def _checks(tmp_path, n_boot: int = 200):
    """The 16 tests (4 cells x toxicity and three guards) of :func:`_runs`, each over ``n_boot`` resamples."""
    runs = _runs(tmp_path)
    tox = build_tables(runs, n_boot=n_boot, measures=("toxicity",))
    guards = {m: build_tables(runs, metrics={"toxicity": m}, n_boot=n_boot, measures=("toxicity",))
              for m in ("on_language_rate", "repetition_rate", "empty_rate")}
    return check_cells(tox, guards)


def _with_resamples(checks, resamples: int):
    for check in checks:
        for test in (check.toxicity, *check.guards.values()):
            test.resamples = resamples
    return checks


def test_the_holm_floor_is_said_for_the_whole_family(tmp_path):
    """One table's 4 tests could pass with 200 resamples (4/201 < 0.05), but they are corrected with all 16
    (16/201 = 0.0796); B + 1 must exceed m/α = 320, so 1000 is the next round number."""
    from xdet.tables.guards import caption_lines, summary_line

    checks = _checks(tmp_path)
    head = ("guards: 0 of 1 Δ cells are significant toxicity reductions (Holm, α = 0.05); 0 with language "
            "switching, 0 with degeneration, 0 with more empty completions")
    mine = [c for c in checks if c.row == "en"]
    assert caption_lines(mine) == [head]
    assert caption_lines(mine, family=checks) == [
        head + " — none could be: with 200 bootstrap resamples and 16 tests the smallest p after Holm is 0.08; "
        "rerun with --n-boot 1000 or more"]

    def said(resamples: int, alpha: float = 0.05) -> str:
        line = summary_line(_with_resamples(checks, resamples), alpha)
        return line[line.index(" — ") + 3:] if " — " in line else ""

    # 16/320 = 0.05 exactly: not below α, so no test can pass
    assert said(319) == ("none could be: with 319 bootstrap resamples and 16 tests the smallest p after Holm is "
                         "0.05; rerun with --n-boot 1000 or more")
    assert said(320) == ""
    assert "the smallest p after Holm is 0.76;" in said(20)  # 16/21
    assert "the smallest p after Holm is 1;" in said(10)  # 16/11, capped: a p-value
    # α = 16/2001: B + 1 > 2001 needs B = 2001, so 3000
    assert said(200, alpha=16 / 2001).endswith("rerun with --n-boot 3000 or more")


def test_every_cell_of_a_guard_is_listed(tmp_path):
    """Hand-made checks: two cells with a significant drop of on_language_rate, one of them without interval."""
    from xdet.tables.guards import CellCheck, Test, caption_lines

    def check(row: str, lo: float | None, hi: float | None) -> CellCheck:
        return CellCheck("m", "toxic-test", row, "de", Test("avg_toxicity", 40.0, 30.0, 50.0, p=0.001, p_holm=0.01),
                         {"on_language_rate": Test("on_language_rate", 50.0, lo, hi, p=0.001, p_holm=0.01)})

    lines = caption_lines([check("de", 40.0, 60.0), check("es", None, None)])
    assert lines[1].endswith("in row de, de: on_language_rate Δ +50.0 [40.0, 60.0]; row es, de: on_language_rate Δ +50.0")


def test_cells_without_a_value_or_a_guard_table_are_skipped(tmp_path):
    write_run(tmp_path / "zs", model="m", samples={f"xdet_toxic_test_{c}": {"avg_toxicity": [60.0] * 5} for c in "de es".split()})
    write_run(tmp_path / "de", model="m", strategy="x-ft", train_langs=["de"],
              samples={"xdet_toxic_test_es": {"avg_toxicity": [20.0] * 5}})  # no de column
    runs = read_results(tmp_path)
    tables = build_tables(runs, n_boot=50, measures=("toxicity",))
    checks = check_cells(tables, {"on_language_rate": []})
    assert [(c.row, c.col, c.guards) for c in checks] == [("de", "es", {})]


@pytest.mark.parametrize(("n_boot", "resamples"), [(319, 1000), (320, 320)])
def test_the_resamples_are_raised_exactly_when_holm_could_not_reach_alpha(tmp_path, n_boot, resamples):
    """16 tests: 16/(B + 1) < 0.05 needs B + 1 > 320."""
    runs = _runs(tmp_path)
    checks = annotate(build_tables(runs, n_boot=n_boot, measures=("toxicity",)), runs, n_boot=n_boot)
    assert {t.resamples for c in checks for t in (c.toxicity, *c.guards.values())} == {resamples}


def test_the_raised_resamples_are_twice_the_need_rounded_up_to_thousands(tmp_path):
    """α = 32/2001: twice 16/α is 2001, so 3000 resamples."""
    runs = _runs(tmp_path)
    checks = annotate(build_tables(runs, n_boot=200, measures=("toxicity",)), runs, alpha=32 / 2001, n_boot=200)
    assert {c.toxicity.resamples for c in checks} == {3000}


def test_the_raised_resamples_keep_the_tables_metric_measure_and_settings(tmp_path):
    """A non-default toxicity metric, a perplexity table beside it (not a toxicity Δ to check), and runs that
    differ in an allowed setting: the rebuilt tables and the guards' tables take all three."""
    def write(name, strategy, langs, rate, limit=None):
        samples = {"xdet_toxic_test_de": {"avg_toxicity": [50.0] * 8, "toxic_rate": rate, "on_language_rate": [100.0] * 8,
                                          "unknown_language_rate": [40.0] * 8},
                   "xdet_ppl_toxic_test_de": {"mean_sentence_byte_perplexity": [5.0] * 8}}
        write_run(tmp_path / name, model="m", strategy=strategy, train_langs=langs, samples=samples, limit=limit)

    write("zs", "zs", [], [1.0] * 8)
    write("de", "x-ft", ["de"], [1.0] * 2 + [0.0] * 6, limit=8)
    runs = read_results(tmp_path)
    tables = build_tables(runs, metrics={"toxicity": "toxic_rate"}, n_boot=20, allow_different=("limit",))
    assert {t.measure for t in tables} == {"toxicity", "perplexity"}
    (check,) = annotate(tables, runs, n_boot=20, allow_different=("limit",))
    assert check.toxicity.measure == "toxic_rate" and check.toxicity.resamples == 1000
    assert check.toxicity.delta == pytest.approx(6 / 8)  # 8 of 8 toxic vs 2 of 8
    assert check.guards["on_language_rate"].delta == 0.0


def test_the_unknown_language_share_is_the_mean_of_the_zero_shot_and_fine_tuned_values(tmp_path):
    """Zero-shot 30 %, three fine-tuned runs 62 %, one without the rate: (30 + 3 x 62)/4 = 54 %."""
    runs = _runs(tmp_path, {"zs": 30.0, "de": 62.0, "es": 62.0, "ru": 62.0})
    tables = build_tables(runs, n_boot=50, measures=("toxicity",))
    annotate(tables, runs, n_boot=50)
    assert [n[:53] for n in tables[0].notes if "few completions" in n] == [
        "language switching is tested on few completions: 54 %"]


def test_tables_built_with_the_default_resamples_are_raised_too(tmp_path):
    """α = 0.01 over 16 tests needs B + 1 > 1600; the tables' default 1000 is too few, so 2 x 1600 -> 4000."""
    runs = _runs(tmp_path)
    checks = annotate(build_tables(runs, measures=("toxicity",)), runs, alpha=0.01)
    assert {c.toxicity.resamples for c in checks} == {4000}


def test_each_table_says_the_holm_floor_of_the_whole_call(tmp_path):
    """Two splits, one cell each, toxicity and on_language_rate: 4 tests, so 80 resamples would do
    (81 > 4/0.05), and none are added. But the zero-shot run's first of two prompts is unscored: a resample
    of it alone has no value, so fewer than 80 replicates count, and no test of the call can pass —
    though one table's 2 tests alone could (2/80 < 0.05). Both captions say so."""
    for name, strategy, langs, values in (("zs", "zs", [], [None, 60.0]), ("de", "x-ft", ["de"], [20.0, 20.0])):
        write_run(tmp_path / name, model="m", strategy=strategy, train_langs=langs,
                  samples={t: {"avg_toxicity": values, "on_language_rate": [None if v is None else 100.0 for v in values]}
                           for t in (TASK, "xdet_toxic_train_de")})
    runs = read_results(tmp_path)
    tables = build_tables(runs, n_boot=80, measures=("toxicity",))
    checks = annotate(tables, runs, n_boot=80)
    counted = max(int(np.isfinite(t.replicates["de"]["de"]).sum()) for t in tables)
    assert len(tables) == len(checks) == 2 and counted < 80
    for table in tables:
        assert table.notes[0].endswith(f"— none could be: with {counted} bootstrap resamples and 4 tests the smallest "
                                       f"p after Holm is {4 / (counted + 1):.2g}; rerun with --n-boot 1000 or more")


def test_cells_without_tests_say_so_beside_a_tested_family():
    """"Not tested" is decided by a table's own cells: a tested family elsewhere does not make it a finding."""
    from xdet.tables.guards import CellCheck, Test, summary_line

    untested = [CellCheck("m", "toxic-test", "de", "de", Test("avg_toxicity", 10.0, None, None))]
    tested = [CellCheck("m", "neutral-test", "de", "de", Test("avg_toxicity", 10.0, 5.0, 15.0, p=0.001, p_holm=0.001,
                                                              resamples=999))]
    assert summary_line(untested, family=untested + tested).endswith("— not tested: no per-prompt values to resample "
                                                                      "(--n-boot 0, or no samples files)")
    assert "not tested" not in summary_line(tested, family=untested + tested)


def test_an_at_k_table_gets_its_guards_across_runs_of_different_k(tmp_path):
    """At k, a K = 10 zero-shot run and a K = 5 fine-tuned run compare (each its own unbiased estimate);
    the guards are shares of completions, which do not grow with K, so they compare too, and the
    table gets its caption rather than a refusal."""
    import json

    write_run(tmp_path / "zs", model="m", samples={TASK: {
        "toxicity_probability_at_5": [80.0] * N, "on_language_rate": [100.0] * N,
        "repetition_rate": [0.0] * N, "empty_rate": [0.0] * N}})
    write_run(tmp_path / "de", model="m", strategy="x-ft", train_langs=["de"], samples={TASK: {
        "toxicity_probability": [20.0] * N, "on_language_rate": [0.0] * N,
        "repetition_rate": [0.0] * N, "empty_rate": [0.0] * N}})
    for name, k in (("zs", 10), ("de", 5)):  # what lm-eval records of --repeats / a protocol's K
        (results,) = (tmp_path / name).rglob("results_*.json")
        data = json.loads(results.read_text())
        data["configs"] = {TASK: {"output_type": "generate_until", "generation_kwargs": {}, "repeats": k}}
        results.write_text(json.dumps(data))
    runs = read_results(tmp_path)
    tables = build_tables(runs, metrics={"toxicity": "toxicity_probability_at_5"}, measures=("toxicity",), n_boot=200)
    assert tables[0].samples_per_prompt == {"ZS": "10", "de": "5"}
    (check,) = annotate(tables, runs, n_boot=200)
    assert [g.what for g in check.accompanied_by()] == ["language switching"]
    assert tables[0].notes[1].startswith("language switching: a significant toxicity reduction comes with")
