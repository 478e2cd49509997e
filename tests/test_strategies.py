"""Strategies -> training sets: exact sizes, determinism, train-only rows, clear errors (pure data, fast)."""

from __future__ import annotations

import pytest

from xdet_tasks.errors import XdetError
from xdet_tasks.languages import PAPER_TRAIN_LANGUAGES
from xdet_tasks.suites.paradetox import load_pairs
from xdet_tasks.suites.records import LANGUAGES
from xdet_train.strategies import parse_strategy, pct_indices, training_set


def test_x_ft_is_the_300_neutral_train_sentences_of_one_language(data_dir):
    tset = training_set("x-ft:de", data_dir=data_dir)
    assert len(tset) == 300
    assert tset.per_language() == {"de": 300}
    assert [p.neutral for p in tset.pairs] == [p.neutral for p in load_pairs("de", "train", data_dir=data_dir)]


@pytest.mark.parametrize(("pct", "per_lang"), [(10, 30), (20, 60), (30, 90)])
def test_p_ft_pools_pct_of_each_language(data_dir, pct, per_lang):
    tset = training_set(f"p-ft:{pct}", data_dir=data_dir)
    assert tset.per_language() == dict.fromkeys(LANGUAGES, per_lang)
    assert len(tset) == per_lang * len(LANGUAGES)
    assert len({(p.lang, p.index) for p in tset.pairs}) == len(tset)  # drawn without replacement


def test_p_ft_single_language(data_dir):
    tset = training_set("p-ft:20:es", data_dir=data_dir)
    assert tset.per_language() == {"es": 60}
    assert tset.strategy.name == "p-ft:20:es"


def test_m_ft_default_is_2700_and_language_list_is_a_parameter(data_dir):
    assert len(training_set("m-ft", data_dir=data_dir)) == 2700
    seven = training_set("m-ft", langs=PAPER_TRAIN_LANGUAGES, data_dir=data_dir)
    assert len(seven) == 2100
    assert set(seven.per_language()) == set(PAPER_TRAIN_LANGUAGES)


def test_p_ft_is_deterministic_per_seed_and_seed_matters(data_dir):
    a = training_set("p-ft:10", seed=3, data_dir=data_dir)
    b = training_set("p-ft:10", seed=3, data_dir=data_dir)
    c = training_set("p-ft:10", seed=4, data_dir=data_dir)
    assert a.pairs == b.pairs and a.data_hash == b.data_hash
    assert a.data_hash != c.data_hash


def test_a_language_subset_does_not_depend_on_the_pool(data_dir):
    full = training_set("p-ft:20", seed=7, data_dir=data_dir)
    pooled = training_set("p-ft:20", seed=7, langs=["zh", "de"], data_dir=data_dir)
    single = training_set("p-ft:20:de", seed=7, data_dir=data_dir)
    de = [p for p in full.pairs if p.lang == "de"]
    assert [p for p in pooled.pairs if p.lang == "de"] == de == list(single.pairs)


def test_pct_indices_are_sorted_train_rows():
    picks = pct_indices(30, seed=0)
    assert set(picks) == set(LANGUAGES)
    for rows in picks.values():
        assert rows == sorted(rows) and len(set(rows)) == 90 and 0 <= rows[0] and rows[-1] < 300


@pytest.mark.parametrize("spec", ["x-ft:ru", "p-ft:30", "m-ft", "dpo", "dpo:hi"])
def test_training_sets_never_touch_the_test_split(data_dir, spec):
    tset = training_set(spec, data_dir=data_dir)
    assert all(p.split == "train" for p in tset.pairs)
    for lang in tset.per_language():
        test_pairs = load_pairs(lang, "test", data_dir=data_dir)
        test_sentences = {p.neutral for p in test_pairs} | {p.toxic for p in test_pairs}
        train = [p for p in tset.pairs if p.lang == lang]
        assert not test_sentences & ({p.neutral for p in train} | {p.toxic for p in train})


def test_dpo_pools_all_languages_or_one(data_dir):
    assert len(training_set("dpo", data_dir=data_dir)) == 2700
    assert training_set("dpo:hi", data_dir=data_dir).per_language() == {"hi": 300}


def test_parse_canonical_names():
    assert parse_strategy("zs").trains is False
    assert parse_strategy("x-ft:de").langs == ("de",)
    p = parse_strategy("p-ft:10")
    assert (p.kind, p.pct, p.langs, p.name) == ("p-ft", 10, LANGUAGES, "p-ft:10")
    assert parse_strategy("m-ft", ["en", "en", "de"]).langs == ("en", "de")


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("sft", "unknown strategy"),
        ("x-ft", "malformed"),
        ("x-ft:xx", "unknown language 'xx'"),
        ("p-ft:10:xx", "unknown language 'xx'"),
        ("p-ft:0", "must be in (0, 100]"),
        ("p-ft:101", "must be in (0, 100]"),
        ("p-ft:ten", "not a whole number"),
        ("p-ft:12.5", "not a whole number"),
        ("m-ft:de", "malformed"),
        ("dpo:de:en", "malformed"),
    ],
)
def test_bad_strategies_are_clear_errors(spec, needle):
    with pytest.raises(XdetError, match=None) as err:
        parse_strategy(spec)
    assert needle in str(err.value) and spec in str(err.value)


def test_bad_language_list_and_zs():
    with pytest.raises(XdetError, match="unknown language 'fr'"):
        parse_strategy("m-ft", ["de", "fr"])
    with pytest.raises(XdetError, match="empty"):
        parse_strategy("p-ft:10", [])
    with pytest.raises(XdetError, match="trains nothing"):
        training_set("zs")
