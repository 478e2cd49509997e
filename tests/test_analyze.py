"""xdet analyze: permutation machinery, the five hypotheses, Holm, inputs and outputs.

Expected p-values in the toy cases are worked out by hand in comments and hard-coded, never
recomputed with the code under test.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from xdet.analyze import (
    SCHEMA,
    AmountRow,
    DeltaMatrix,
    Distances,
    HypothesisResult,
    LanguageInfo,
    console_summary,
    count_distinct_permutations,
    distinct_permutations,
    holm,
    load_language_map,
    one_line,
    read_distances,
    run_analysis,
    summary_markdown,
    write_outputs,
)
from xdet.analyze.permutation import permutation_p, relabellings
from xdet.analyze.sources import paper_matrices

PAPER_ROWS = ("ar", "de", "en", "es", "hi", "ru", "zh")
PAPER_COLS = ("am", "ar", "de", "en", "es", "hi", "ru")
REQUIRED_FIELDS = {
    "table",
    "model",
    "metric",
    "split",
    "hypothesis",
    "description",
    "effect",
    "ci_low",
    "ci_high",
    "p",
    "p_holm",
    "n_cells",
    "n_permutations",
    "exact",
    "ci_method",
    "status",
    "reason",
    "notes",
}


def _matrix(rows, cols, delta, **kw) -> DeltaMatrix:
    base = {
        "table": "T",
        "model": "m",
        "metric": "avg_toxicity",
        "measure": "toxicity",
        "split": "toxic-test",
    }
    return DeltaMatrix(
        **(base | kw), rows=tuple(rows), cols=tuple(cols), delta=np.asarray(delta, dtype=float)
    )


def _one(results, hypothesis):
    [rec] = [r for r in results if r.hypothesis == hypothesis]
    return rec


def _langs(scripts: dict[str, str], indo_european: set[str] | None = None) -> dict[str, LanguageInfo]:
    ie = indo_european or set()
    return {c: LanguageInfo(s, c in ie, "Indo-European" if c in ie else "Other") for c, s in scripts.items()}


# ---------------------------------------------------------------------------------------------
# Permutation machinery and Holm
# ---------------------------------------------------------------------------------------------


def test_distinct_permutations_of_a_multiset():
    # the paper's 8 languages: Ethiopic, Arabic, Latin x3 (de en es), Devanagari, Cyrillic, Han: 8!/3! = 6720
    paper_scripts = ["Ethi", "Arab", "Latn", "Latn", "Latn", "Deva", "Cyrl", "Hani"]
    assert count_distinct_permutations(paper_scripts) == 6720
    perms = distinct_permutations(paper_scripts)
    assert perms.shape == (6720, 8)
    assert len({tuple(p) for p in perms.tolist()}) == 6720
    assert all(sorted(p) == sorted(paper_scripts) for p in perms.tolist())
    # A, A, B: the three arrangements written out
    assert {tuple(p) for p in distinct_permutations(["A", "A", "B"]).tolist()} == {
        ("A", "A", "B"),
        ("A", "B", "A"),
        ("B", "A", "A"),
    }
    assert count_distinct_permutations([1, 1, 2, 2]) == 6  # 4!/(2!2!)


def test_random_relabellings_keep_the_identity_first():
    labels = np.arange(9)  # 9! = 362880 > max_exact -> random
    rel = relabellings(labels, max_exact=100, n_perm=500, rng=np.random.default_rng(1))
    assert not rel.exact
    assert rel.count == 501
    assert rel.labels[0].tolist() == labels.tolist()
    assert all(sorted(row) == list(range(9)) for row in rel.labels.tolist())
    # the observed statistic is always in the reference set: p can never be 0
    stats = np.r_[100.0, np.zeros(500)]
    assert permutation_p(stats)[0] == pytest.approx(1 / 501)


def test_holm_against_hand_computation():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # 0.5*2 = 1.0, 0.6*1 = 0.6 -> max 1.0, capped at 1
    assert holm([0.5, 0.6]).tolist() == pytest.approx([1.0, 1.0])
    assert holm([0.2]).tolist() == pytest.approx([0.2])
    assert holm([]).size == 0
    with pytest.raises(ValueError):
        holm([1.5])


# ---------------------------------------------------------------------------------------------
# H1: exact p on a toy case, planted effect, noise
# ---------------------------------------------------------------------------------------------

# rows = cols = (aa, bb, cc); the diagonal is ignored by H1.
TOY = [
    [0.0, 5.0, 1.0],  # aa>aa aa>bb aa>cc
    [4.0, 0.0, 2.0],  # bb>aa bb>bb bb>cc
    [0.0, 3.0, 0.0],  # cc>aa cc>bb cc>cc
]


def test_h1_exact_p_by_hand_three_languages():
    # Script labels (L, L, C) over aa, bb, cc have 3 distinct arrangements:
    #   aa,bb share:  same = {aa>bb 5, bb>aa 4} mean 4.5; other = {1, 2, 0, 3} mean 1.5 -> +3.0 (observed)
    #   aa,cc share:  same = {aa>cc 1, cc>aa 0} mean 0.5; other = {5, 4, 2, 3} mean 3.5 -> -3.0
    #   bb,cc share:  same = {bb>cc 2, cc>bb 3} mean 2.5; other = {5, 4, 1, 0} mean 2.5 ->  0.0
    # one-sided: #{>= 3.0} / 3 = 1/3; two-sided (centre 0): #{|s| >= 3} / 3 = 2/3
    m = _matrix(["aa", "bb", "cc"], ["aa", "bb", "cc"], TOY)
    langs = _langs({"aa": "Latin", "bb": "Latin", "cc": "Cyrillic"})
    rec = _one(run_analysis([m], langs), "H1")
    assert rec.status == "tested"
    assert rec.effect == pytest.approx(3.0)
    assert rec.p == pytest.approx(1 / 3)
    assert rec.n_permutations == 3 and rec.exact
    assert rec.p_floor == pytest.approx(1 / 3)
    assert _one(run_analysis([m], langs, alternative="two-sided"), "H1").p == pytest.approx(2 / 3)
    # bb and cc share the script instead: observed 0.0, #{>= 0} = {3.0, 0.0} -> 2/3
    other = _one(run_analysis([m], _langs({"aa": "Cyrillic", "bb": "Latin", "cc": "Latin"})), "H1")
    assert other.effect == pytest.approx(0.0)
    assert other.p == pytest.approx(2 / 3)
    # aa and cc: observed -3.0 is the smallest, every arrangement is >= it -> 3/3
    worst = _one(run_analysis([m], _langs({"aa": "Latin", "bb": "Cyrillic", "cc": "Latin"})), "H1")
    assert worst.effect == pytest.approx(-3.0)
    assert worst.p == pytest.approx(1.0)


def _three_scripts_nine_languages():
    codes = [f"l{i}" for i in range(9)]
    scripts = {c: ("Latin", "Cyrillic", "Arabic")[i // 3] for i, c in enumerate(codes)}
    return codes, scripts


def test_h1_planted_same_script_effect_is_found():
    codes, scripts = _three_scripts_nine_languages()
    rng = np.random.default_rng(7)
    delta = rng.normal(0, 1, (9, 9))
    same = np.array([[scripts[r] == scripts[c] and r != c for c in codes] for r in codes])
    delta[same] += 10
    rec = _one(run_analysis([_matrix(codes, codes, delta)], _langs(scripts)), "H1")
    # 9!/(3!3!3!) = 1680 arrangements; the 3! renamings of the planted partition tie with it -> p = 6/1680
    assert rec.exact and rec.n_permutations == 1680
    assert rec.p == pytest.approx(6 / 1680)
    assert 9 < rec.effect < 11
    assert rec.ci_method == "cell-bootstrap" and 5 < rec.ci_low < rec.effect < rec.ci_high < 15


def test_pure_noise_is_not_significant():
    codes, scripts = _three_scripts_nine_languages()
    delta = np.random.default_rng(11).normal(0, 1, (9, 9))
    res = run_analysis([_matrix(codes, codes, delta)], _langs(scripts, set(codes[:4])))
    for hyp in ("H1", "H2", "H3"):
        rec = _one(res, hyp)
        assert rec.status == "tested"
        assert rec.p > 0.05, hyp
        assert rec.p_holm >= rec.p


# ---------------------------------------------------------------------------------------------
# H2, H3, H4, H5
# ---------------------------------------------------------------------------------------------


def test_h2_planted_indo_european_rows():
    rng = np.random.default_rng(3)
    delta = rng.normal(0, 1, (7, 7))
    ie_rows = [i for i, r in enumerate(PAPER_ROWS) if r not in ("ar", "zh")]
    delta[ie_rows] += 10
    rec = _one(run_analysis([_matrix(PAPER_ROWS, PAPER_COLS, delta)]), "H2")
    # two non-Indo-European rows among 7: C(7, 2) = 21 arrangements, only the observed one is the maximum
    assert rec.exact and rec.n_permutations == 21
    assert rec.p == pytest.approx(1 / 21)
    assert rec.effect > 8


def test_h3_planted_diagonal_effect():
    codes = [f"l{i}" for i in range(7)]
    delta = np.random.default_rng(5).normal(0, 1, (7, 7)) + 10 * np.eye(7)
    rec = _one(run_analysis([_matrix(codes, codes, delta)], _langs({c: c for c in codes})), "H3")
    # 7! = 5040 column relabellings; only the identity puts all seven planted cells on the diagonal
    assert rec.exact and rec.n_permutations == 5040
    assert rec.p == pytest.approx(1 / 5040)
    off = ~np.eye(7, dtype=bool)
    assert rec.effect == pytest.approx(np.diag(delta).mean() - delta[off].mean())  # the definition, by numpy
    assert rec.detail["n_diagonal"] == 7


def _distances(codes, seed=0) -> Distances:
    pts = np.random.default_rng(seed).normal(0, 1, (len(codes), 2))
    return Distances(tuple(codes), np.linalg.norm(pts[:, None] - pts[None, :], axis=-1))


def test_h4_mantel_finds_planted_negative_correlation():
    codes = [f"l{i}" for i in range(8)]
    dist = _distances(codes)
    noise = np.random.default_rng(9).normal(0, 0.05, (8, 8))
    closer_more = _matrix(codes, codes, -5 * dist.matrix + noise)
    rec = _one(run_analysis([closer_more], _langs({c: c for c in codes}), dist, n_perm=2000), "H4")
    # 8! = 40320 > max_exact: 2000 random relabellings + the observed one
    assert not rec.exact and rec.n_permutations == 2001
    assert rec.effect < -0.9
    assert rec.p < 0.01
    assert rec.ci_high < 0
    farther_more = _matrix(codes, codes, 5 * dist.matrix + noise)
    assert _one(run_analysis([farther_more], _langs({c: c for c in codes}), dist, n_perm=2000), "H4").p > 0.9


def test_h5_amount_exact_by_hand():
    cols = ("de", "en", "es")
    fractions = [(0.1, "P-FT 10%"), (0.2, "P-FT 20%"), (0.3, "P-FT 30%"), (1.0, "M-FT")]
    up = tuple(
        AmountRow(label, f, np.array([1.0, 2.0, 3.0]) * 10 * f + np.arange(3)) for f, label in fractions
    )
    base = _matrix(["de"], cols, [[1.0, 2.0, 3.0]], amounts=up)
    rec = _one(run_analysis([base]), "H5")
    # 4! = 24 relabellings; every column rises with the fraction, so only the identity reaches the maximum
    assert rec.exact and rec.n_permutations == 24
    assert rec.p == pytest.approx(1 / 24)
    assert rec.effect > 0.5
    assert any("M-FT" in n for n in rec.notes)
    down = tuple(AmountRow(a.label, a.fraction, -a.delta) for a in up)
    assert _one(
        run_analysis([_matrix(["de"], cols, [[1.0, 2.0, 3.0]], amounts=down)]), "H5"
    ).p == pytest.approx(1.0)


def test_sample_bootstrap_used_when_replicates_exist():
    codes, scripts = _three_scripts_nine_languages()
    rng = np.random.default_rng(2)
    delta = rng.normal(0, 1, (9, 9))
    reps = delta[None] + rng.normal(0, 0.1, (50, 9, 9))
    rec = _one(run_analysis([_matrix(codes, codes, delta, replicates=reps)], _langs(scripts)), "H1")
    assert rec.ci_method == "sample-bootstrap"
    assert rec.ci_low <= rec.effect <= rec.ci_high
    assert (
        _one(run_analysis([_matrix(codes, codes, delta)], _langs(scripts)), "H1").ci_method
        == "cell-bootstrap"
    )
    h4 = _one(
        run_analysis(
            [_matrix(codes, codes, delta, replicates=reps)], _langs(scripts), _distances(codes), n_perm=200
        ),
        "H4",
    )
    assert h4.ci_method == "sample-bootstrap" and h4.ci_low <= h4.effect <= h4.ci_high
    amounts = tuple(
        AmountRow(f"P-FT {f:.0%}", f, np.arange(9.0) * f, np.arange(9.0) * f + rng.normal(0, 0.1, (40, 9)))
        for f in (0.1, 0.2, 0.3)
    )
    h5 = _one(run_analysis([_matrix(codes, codes, delta, amounts=amounts)], _langs(scripts)), "H5")
    assert h5.ci_method == "sample-bootstrap" and h5.ci_low <= h5.effect <= h5.ci_high


# ---------------------------------------------------------------------------------------------
# Untestable cases and confound notes
# ---------------------------------------------------------------------------------------------


def test_untestable_cases_carry_reasons_and_leave_the_family():
    codes = ["aa", "bb", "cc"]
    m = _matrix(codes, codes, TOY)
    res = run_analysis([m], _langs({"aa": "Latin", "bb": "Cyrillic", "cc": "Arabic"}))
    h1, h4, h5 = _one(res, "H1"), _one(res, "H4"), _one(res, "H5")
    assert h1.status == "untestable" and "same script" in h1.reason
    assert h4.status == "untestable" and "no language distance matrix" in h4.reason
    assert h5.status == "untestable" and "fewer than 2 data-amount rows" in h5.reason
    assert all(r.p is None and r.p_holm is None for r in (h1, h4, h5))
    assert res.settings["family_size"] == sum(r.status == "tested" for r in res)
    per_model = run_analysis(
        [m], _langs({"aa": "Latin", "bb": "Cyrillic", "cc": "Arabic"}), {"other-model": _distances(codes)}
    )
    assert _one(per_model, "H4").reason == "no language distance matrix for model 'm'"
    one = _matrix(
        ["de"], ["de", "en"], [[1.0, 2.0]], amounts=(AmountRow("P-FT 10%", 0.1, np.array([1.0, 2.0])),)
    )
    assert "(1)" in _one(run_analysis([one]), "H5").reason
    assert (
        "no script known" in _one(run_analysis([_matrix(["qq", "de"], ["de"], [[1.0], [2.0]])]), "H1").reason
    )


def test_confound_notes_for_the_paper_languages():
    m = _matrix(PAPER_ROWS, PAPER_COLS, np.random.default_rng(0).normal(0, 1, (7, 7)))
    res = run_analysis([m])
    h1 = _one(res, "H1")
    assert h1.detail["n_same"] == 6
    assert any(
        "high-resource European (Latin-script) languages transfer among themselves" in n for n in h1.notes
    )
    assert any("only ar, zh" in n for n in _one(res, "H2").notes)
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
    path = tmp_path / "distance_all.csv"
    path.write_text(
        "lang,de,en,zh\nzh,0.500000,0.600000,0.000000\nde,0.000000,0.100000,0.500000\n"
        "en,0.100000,0.000000,0.600000\n",
        encoding="utf-8",
    )
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
        _matrix(["de", "en"], ["de"], [[1.0, 2.0]])
    with pytest.raises(ValueError, match="measure"):
        _matrix(["de"], ["de"], [[1.0]], measure="bleu")
    with pytest.raises(ValueError, match="duplicate"):
        _matrix(["de", "de"], ["en"], [[1.0], [2.0]])


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
