"""xdet analyze: permutation machinery, the five hypotheses and Holm on constructed matrices.

Expected p-values in the toy cases are worked out by hand in comments and hard-coded, never
recomputed with the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
from analysis_fixtures import PAPER_COLS, PAPER_ROWS, lang_map, make_matrix, only

from xdet.analyze import (
    AmountRow,
    Distances,
    count_distinct_permutations,
    distinct_permutations,
    holm,
    run_analysis,
)
from xdet.analyze.permutation import permutation_p, relabellings


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
    m = make_matrix(["aa", "bb", "cc"], ["aa", "bb", "cc"], TOY)
    langs = lang_map({"aa": "Latin", "bb": "Latin", "cc": "Cyrillic"})
    rec = only(run_analysis([m], langs), "H1")
    assert rec.status == "tested"
    assert rec.effect == pytest.approx(3.0)
    assert rec.p == pytest.approx(1 / 3)
    assert rec.n_permutations == 3 and rec.exact
    assert rec.p_floor == pytest.approx(1 / 3)
    assert only(run_analysis([m], langs, alternative="two-sided"), "H1").p == pytest.approx(2 / 3)
    # bb and cc share the script instead: observed 0.0, #{>= 0} = {3.0, 0.0} -> 2/3
    other = only(run_analysis([m], lang_map({"aa": "Cyrillic", "bb": "Latin", "cc": "Latin"})), "H1")
    assert other.effect == pytest.approx(0.0)
    assert other.p == pytest.approx(2 / 3)
    # aa and cc: observed -3.0 is the smallest, every arrangement is >= it -> 3/3
    worst = only(run_analysis([m], lang_map({"aa": "Latin", "bb": "Cyrillic", "cc": "Latin"})), "H1")
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
    rec = only(run_analysis([make_matrix(codes, codes, delta)], lang_map(scripts)), "H1")
    # 9!/(3!3!3!) = 1680 arrangements; the 3! renamings of the planted partition tie with it -> p = 6/1680
    assert rec.exact and rec.n_permutations == 1680
    assert rec.p == pytest.approx(6 / 1680)
    assert 9 < rec.effect < 11
    assert rec.ci_method == "cell-bootstrap" and 5 < rec.ci_low < rec.effect < rec.ci_high < 15


def test_pure_noise_is_not_significant():
    codes, scripts = _three_scripts_nine_languages()
    delta = np.random.default_rng(11).normal(0, 1, (9, 9))
    res = run_analysis([make_matrix(codes, codes, delta)], lang_map(scripts, set(codes[:4])))
    for hyp in ("H1", "H2", "H3"):
        rec = only(res, hyp)
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
    rec = only(run_analysis([make_matrix(PAPER_ROWS, PAPER_COLS, delta)]), "H2")
    # two non-Indo-European rows among 7: C(7, 2) = 21 arrangements, only the observed one is the maximum
    assert rec.exact and rec.n_permutations == 21
    assert rec.p == pytest.approx(1 / 21)
    assert rec.effect > 8


def test_h3_planted_diagonal_effect():
    codes = [f"l{i}" for i in range(7)]
    delta = np.random.default_rng(5).normal(0, 1, (7, 7)) + 10 * np.eye(7)
    rec = only(run_analysis([make_matrix(codes, codes, delta)], lang_map({c: c for c in codes})), "H3")
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
    closer_more = make_matrix(codes, codes, -5 * dist.matrix + noise)
    rec = only(run_analysis([closer_more], lang_map({c: c for c in codes}), dist, n_perm=2000), "H4")
    # 8! = 40320 > max_exact: 2000 random relabellings + the observed one
    assert not rec.exact and rec.n_permutations == 2001
    assert rec.effect < -0.9
    assert rec.p < 0.01
    assert rec.ci_high < 0
    farther_more = make_matrix(codes, codes, 5 * dist.matrix + noise)
    assert only(run_analysis([farther_more], lang_map({c: c for c in codes}), dist, n_perm=2000), "H4").p > 0.9


def test_h5_amount_exact_by_hand():
    cols = ("de", "en", "es")
    fractions = [(0.1, "P-FT 10%"), (0.2, "P-FT 20%"), (0.3, "P-FT 30%"), (1.0, "M-FT")]
    up = tuple(
        AmountRow(label, f, np.array([1.0, 2.0, 3.0]) * 10 * f + np.arange(3)) for f, label in fractions
    )
    base = make_matrix(["de"], cols, [[1.0, 2.0, 3.0]], amounts=up)
    rec = only(run_analysis([base]), "H5")
    # 4! = 24 relabellings; every column rises with the fraction, so only the identity reaches the maximum
    assert rec.exact and rec.n_permutations == 24
    assert rec.p == pytest.approx(1 / 24)
    assert rec.effect > 0.5
    assert any("M-FT" in n for n in rec.notes)
    down = tuple(AmountRow(a.label, a.fraction, -a.delta) for a in up)
    assert only(
        run_analysis([make_matrix(["de"], cols, [[1.0, 2.0, 3.0]], amounts=down)]), "H5"
    ).p == pytest.approx(1.0)


def test_sample_bootstrap_used_when_replicates_exist():
    codes, scripts = _three_scripts_nine_languages()
    rng = np.random.default_rng(2)
    delta = rng.normal(0, 1, (9, 9))
    reps = delta[None] + rng.normal(0, 0.1, (50, 9, 9))
    rec = only(run_analysis([make_matrix(codes, codes, delta, replicates=reps)], lang_map(scripts)), "H1")
    assert rec.ci_method == "sample-bootstrap"
    assert rec.ci_low <= rec.effect <= rec.ci_high
    assert (
        only(run_analysis([make_matrix(codes, codes, delta)], lang_map(scripts)), "H1").ci_method
        == "cell-bootstrap"
    )
    h4 = only(
        run_analysis(
            [make_matrix(codes, codes, delta, replicates=reps)], lang_map(scripts), _distances(codes), n_perm=200
        ),
        "H4",
    )
    assert h4.ci_method == "sample-bootstrap" and h4.ci_low <= h4.effect <= h4.ci_high
    amounts = tuple(
        AmountRow(f"P-FT {f:.0%}", f, np.arange(9.0) * f, np.arange(9.0) * f + rng.normal(0, 0.1, (40, 9)))
        for f in (0.1, 0.2, 0.3)
    )
    h5 = only(run_analysis([make_matrix(codes, codes, delta, amounts=amounts)], lang_map(scripts)), "H5")
    assert h5.ci_method == "sample-bootstrap" and h5.ci_low <= h5.effect <= h5.ci_high


# ---------------------------------------------------------------------------------------------
# Untestable cases and confound notes
# ---------------------------------------------------------------------------------------------


def test_untestable_cases_carry_reasons_and_leave_the_family():
    codes = ["aa", "bb", "cc"]
    m = make_matrix(codes, codes, TOY)
    res = run_analysis([m], lang_map({"aa": "Latin", "bb": "Cyrillic", "cc": "Arabic"}))
    h1, h4, h5 = only(res, "H1"), only(res, "H4"), only(res, "H5")
    assert h1.status == "untestable" and "same script" in h1.reason
    assert h4.status == "untestable" and "no language distance matrix" in h4.reason
    assert h5.status == "untestable" and "fewer than 2 data-amount rows" in h5.reason
    assert all(r.p is None and r.p_holm is None for r in (h1, h4, h5))
    assert res.settings["family_size"] == sum(r.status == "tested" for r in res)
    per_model = run_analysis(
        [m], lang_map({"aa": "Latin", "bb": "Cyrillic", "cc": "Arabic"}), {"other-model": _distances(codes)}
    )
    assert only(per_model, "H4").reason == "no language distance matrix for model 'm'"
    one = make_matrix(
        ["de"], ["de", "en"], [[1.0, 2.0]], amounts=(AmountRow("P-FT 10%", 0.1, np.array([1.0, 2.0])),)
    )
    assert "(1)" in only(run_analysis([one]), "H5").reason
    assert (
        "no script known" in only(run_analysis([make_matrix(["qq", "de"], ["de"], [[1.0], [2.0]])]), "H1").reason
    )
