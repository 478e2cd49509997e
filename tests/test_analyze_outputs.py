"""xdet analyze: language metadata, distance files, the paper's tables, records and the written report.

Expected p-values in the toy cases are worked out by hand in comments and hard-coded, never
recomputed with the code under test.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from analysis_fixtures import PAPER_COLS, PAPER_ROWS, REQUIRED_FIELDS, make_matrix, only

from xdet.analyze import (
    SCHEMA,
    HypothesisResult,
    LanguageInfo,
    console_summary,
    load_language_map,
    one_line,
    read_distances,
    run_analysis,
    summary_markdown,
    write_outputs,
)
from xdet.analyze.sources import paper_matrices


def test_confound_notes_for_the_paper_languages():
    m = make_matrix(PAPER_ROWS, PAPER_COLS, np.random.default_rng(0).normal(0, 1, (7, 7)))
    res = run_analysis([m])
    h1 = only(res, "H1")
    assert h1.detail["n_same"] == 6
    assert any(
        "high-resource European (Latin-script) languages transfer among themselves" in n for n in h1.notes
    )
    assert any("only ar, zh" in n for n in only(res, "H2").notes)
    # Latin x3 among 8 languages: the statistic only depends on which 3 carry Latin -> floor 1/C(8,3) = 1/56
    assert h1.p_floor == pytest.approx(1 / 56)


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def test_language_map_defaults_and_overrides(tmp_path):
    default = load_language_map()
    assert default["de"].script == "Latin" and default["de"].indo_european
    assert not default["zh"].indo_european
    yml = tmp_path / "langs.yaml"
    yml.write_text(
        "- {code: hi, script: Brahmic, family: Indo-European}\n- {code: xx, script: Latin, family: Uralic}\n",
        encoding="utf-8",
    )
    over = load_language_map(yml)
    assert over["hi"].script == "Brahmic" and over["hi"].indo_european
    assert over["xx"] == LanguageInfo("Latin", False, "Uralic")
    assert over["de"] == default["de"]
    mapping = tmp_path / "map.yml"
    mapping.write_text("ar:\n  script: Arabic\n  family: Indo-European\n", encoding="utf-8")
    assert load_language_map(mapping)["ar"].indo_european
    table = tmp_path / "langs.csv"
    table.write_text("code,script,family\nzh,Latin,Sino-Tibetan\n", encoding="utf-8")
    assert load_language_map(table)["zh"].script == "Latin"


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "bad.csv",
            "code,script,family\nde,Latin,Indo-European\nxx,Latin,\n",
            ["bad.csv", "line 3", "'family'", "''"],
        ),
        ("bad.csv", "code,script\nde,Latin\n", ["bad.csv", "line 1", "family"]),
        ("bad.csv", "code,script,family\n9!,Latin,Uralic\n", ["bad.csv", "line 2", "'code'", "'9!'"]),
        (
            "bad.yaml",
            "- code: de\n  script: Latin\n  family: Indo-European\n- code: xx\n  family: Uralic\n",
            ["bad.yaml", "line 4", "'script'", "'xx'"],
        ),
        (
            "bad.yaml",
            "de:\n  script: Latin\n  family: Indo-European\nde:\n  script: Latin\n  family: Uralic\n",
            ["bad.yaml", "line 5", "'de'", "already given"],
        ),
        ("bad.txt", "code,script,family\n", ["bad.txt", ".txt"]),
    ],
)
def test_bad_language_file_names_file_line_and_value(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError) as err:
        load_language_map(path)
    for part in expected:
        assert part in str(err.value)


def test_read_distances_as_written_by_represent(tmp_path):
    from xdet.represent.report import matrix_csv

    path = tmp_path / "distance_all.csv"
    matrix = np.array([[0.0, 0.1, 0.5], [0.1, 0.0, 0.6], [0.5, 0.6, 0.0]])
    path.write_bytes(matrix_csv(matrix, ["de", "en", "zh"]))  # what `xdet represent` writes
    dist = read_distances(path)
    assert dist.langs == ("de", "en", "zh")
    assert dist.matrix[dist.index("zh"), dist.index("en")] == pytest.approx(0.6)
    assert dist.matrix[0].tolist() == pytest.approx([0.0, 0.1, 0.5])
    path.write_text("lang,de,en\nde,0,zero\nen,0.1,0\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"distance_all\.csv:line 2: field 'en': 'zero'"):
        read_distances(path)
    path.write_text("lang,de,en\nde,0,0.1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"no row for language\(s\) \['en'\]"):
        read_distances(path)


def test_delta_matrix_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        make_matrix(["de", "en"], ["de"], [[1.0, 2.0]])
    with pytest.raises(ValueError, match="measure"):
        make_matrix(["de"], ["de"], [[1.0]], measure="bleu")
    with pytest.raises(ValueError, match="duplicate"):
        make_matrix(["de", "de"], ["en"], [[1.0], [2.0]])


# ---------------------------------------------------------------------------------------------
# The paper's tables end to end, records and outputs
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def paper_results():
    start = time.perf_counter()
    res = run_analysis(paper_matrices())
    return res, time.perf_counter() - start


def test_paper_tables_analyse_quickly(paper_results):
    res, seconds = paper_results
    assert seconds < 15, f"24 tables took {seconds:.1f} s"
    assert len(res) == 24 * 5
    t1 = next(m for m in paper_matrices() if m.table == "Table 1")
    assert t1.delta[PAPER_ROWS.index("es"), PAPER_COLS.index("de")] == pytest.approx(16.82)
    h1 = [r for r in res if r.hypothesis == "H1"]
    assert all(r.status == "tested" and r.exact and r.n_permutations == 6720 for r in h1)
    assert {r.n_permutations for r in res if r.hypothesis == "H3"} == {5040}
    assert {r.n_permutations for r in res if r.hypothesis == "H2"} == {21}
    assert all(r.status == "untestable" for r in res if r.hypothesis in ("H4", "H5"))
    assert res.settings["family_size"] == 72
    # Table 1, H1: mean of the six Latin pairs (8.36 17.19 1.77 3.32 16.82 8.39) = 9.308333
    t1h1 = next(r for r in h1 if r.table == "Table 1")
    assert t1h1.detail["mean_same"] == pytest.approx(9.308333, abs=1e-5)
    # Table 1, H2 non-Indo-European rows, off-diagonal only: ar without ar>ar (2.35 -1.3 6.97 8.99 2.99 -5.36)
    # and all of zh (-2 -8.08 -14.65 -4.97 -1.11 -11.31 -15.33): sum -42.81 over 13 cells
    t1h2 = next(r for r in res if r.hypothesis == "H2" and r.table == "Table 1")
    assert t1h2.detail["mean_other"] == pytest.approx(-42.81 / 13)
    assert t1h2.n_cells == 43


def test_records_serialise_with_every_field(paper_results):
    res, _ = paper_results
    for rec in res:
        doc = json.loads(json.dumps(rec.to_json(), allow_nan=False))
        assert REQUIRED_FIELDS <= set(doc)
        assert doc["status"] in ("tested", "untestable")
        if doc["status"] == "tested":
            assert doc["ci_method"] in ("cell-bootstrap", "sample-bootstrap")
            assert 0 < doc["p"] <= doc["p_holm"] <= 1
        else:
            assert doc["reason"] and doc["p"] is None


def test_non_finite_numbers_become_null_in_json():
    rec = HypothesisResult(
        table="T",
        model="m",
        metric="x",
        measure="toxicity",
        split="s",
        hypothesis="H1",
        description="d",
        claim="+",
        alternative="greater",
        effect=float("nan"),
        detail={"mean": float("inf"), "cells": [1.0, float("nan")]},
    )
    doc = json.loads(json.dumps(rec.to_json(), allow_nan=False))
    assert doc["effect"] is None and doc["detail"] == {"mean": None, "cells": [1.0, None]}


def test_outputs_written(tmp_path, paper_results):
    res, _ = paper_results
    paths = write_outputs(res, tmp_path / "out")
    assert [p.name for p in paths] == ["analysis.json", "analysis.md", "analysis.png"]
    doc = json.loads(
        (tmp_path / "out" / "analysis.json").read_text(encoding="utf-8"),
        parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"),
    )
    assert doc["schema"] == SCHEMA
    assert doc["languages"]["es"]["script"] == "Latin"
    assert doc["settings"]["n_perm"] == 10_000 and doc["settings"]["seed"] == 0
    assert len(doc["results"]) == 120
    md = (tmp_path / "out" / "analysis.md").read_text(encoding="utf-8")
    for part in ("## H1", "## H5", "Holm", "high-resource European", "| Table 1 "):
        assert part in md
    import matplotlib.image as mpimg

    png = mpimg.imread(tmp_path / "out" / "analysis.png")
    assert png.shape[0] > 400 and png.shape[1] > 600
    assert png[..., :3].std() > 0.05
    assert len(np.unique(png[::5, ::5, :3].reshape(-1, 3), axis=0)) > 50  # more than a few flat colours
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_summaries_are_deterministic(paper_results):
    res, _ = paper_results
    again = run_analysis(paper_matrices())
    assert summary_markdown(res) == summary_markdown(again)
    assert [r.to_json() for r in res] == [r.to_json() for r in again]
    md = summary_markdown(res)
    assert md.startswith("| Hypothesis") and "H3 in-language vs cross-lingual" in md
    line = one_line(res)
    assert line.startswith("analysis: H1 0/24 tables significant after Holm, H2 0/24, H3 0/24")
    assert line.endswith("H4 untestable, H5 untestable")
    assert "Significant" in console_summary(res)


def _ppl_sweep(root, word: dict, byte: dict):
    """ZS and X-FT de/en runs; ``word[run][lang]`` / ``byte[run][lang]``: one value for all 4 documents."""
    from xdet.runs.writer import write_run
    from xdet_tasks.names import task_name

    for run, strategy, train in (("zs", "zs", []), ("x-ft-de", "x-ft", ["de"]), ("x-ft-en", "x-ft", ["en"])):
        samples = {task_name("perplexity", "neutral-test", lang): {
            "mean_sentence_word_perplexity": [word[run][lang]] * 4,
            "mean_sentence_byte_perplexity": [byte[run][lang]] * 4,
        } for lang in ("de", "en")}
        write_run(root / "runs" / run, model="org/tiny", model_name="tiny", strategy=strategy,
                  samples=samples, train_langs=train)


def _h3_effect(out) -> tuple[str, float]:
    doc = json.loads((out / "analysis.json").read_text(encoding="utf-8"))
    (rec,) = [r for r in doc["results"] if r["hypothesis"] == "H3" and r["measure"] == "perplexity"]
    return rec["metric"], rec["effect"]


def test_sweep_analysed_on_the_metric_its_tables_show(tmp_path, capsys):
    """`xdet analyze --sweep` tests the numbers the sweep's own tables show unless --metric says otherwise.

    H3 effect = mean diagonal Δ − mean off-diagonal Δ, Δ = ZS − FT. Word: diagonal Δ 10, 20, off-diagonal
    0, 0 -> 15. Byte: diagonal 1, 3, off-diagonal 1, 1 -> 1.
    """
    from xdet.cli import main

    word = {"zs": {"de": 100.0, "en": 200.0}, "x-ft-de": {"de": 90.0, "en": 200.0},
            "x-ft-en": {"de": 100.0, "en": 180.0}}
    byte = {"zs": {"de": 5.0, "en": 6.0}, "x-ft-de": {"de": 4.0, "en": 5.0}, "x-ft-en": {"de": 4.0, "en": 3.0}}
    sweep = tmp_path / "sweep"
    _ppl_sweep(sweep, word, byte)
    fast = ["--n-perm", "50", "--n-boot", "20"]

    assert main(["analyze", "--sweep", str(sweep), "--out", str(tmp_path / "a1"), *fast]) == 0
    assert _h3_effect(tmp_path / "a1") == ("mean_sentence_byte_perplexity", pytest.approx(1.0))  # the default

    assert main(["tables", str(sweep / "runs"), "--out", str(sweep / "tables"), "--n-boot", "0", "--no-png",
                 "--metric", "perplexity=mean_sentence_word_perplexity"]) == 0
    capsys.readouterr()
    assert main(["analyze", "--sweep", str(sweep), "--out", str(tmp_path / "a2"), *fast]) == 0
    assert _h3_effect(tmp_path / "a2") == ("mean_sentence_word_perplexity", pytest.approx(15.0))
    assert "metrics: perplexity = mean_sentence_word_perplexity" in capsys.readouterr().out

    assert main(["analyze", "--sweep", str(sweep), "--out", str(tmp_path / "a3"), *fast,
                 "--metric", "perplexity=mean_sentence_byte_perplexity"]) == 0
    assert _h3_effect(tmp_path / "a3") == ("mean_sentence_byte_perplexity", pytest.approx(1.0))


def test_metric_without_sweep_input_is_refused(tmp_path, capsys):
    from xdet.cli import main

    assert main(["analyze", "--paper", "--metric", "toxic_rate", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("xdet analyze: error: --metric") and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_binary_distance_file_is_named(tmp_path):
    png = tmp_path / "distance_toxic.png"  # xdet represent writes it beside the CSV: an easy slip
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with pytest.raises(ValueError, match=r"distance_toxic\.png: not a UTF-8 text file"):
        read_distances(png)
    csv_file = tmp_path / "langs.csv"
    csv_file.write_bytes(b"code,script,family\nde,Latin,Indo-European\nxx,\xff\xfe,Other\n")
    with pytest.raises(ValueError, match=r"langs\.csv: not a UTF-8 text file"):
        load_language_map(csv_file)
