"""The offline local scorer: quality bar on held-out pairs, determinism, disk cache, CLI."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from xdet.cli import main
from xdet.validity.heldout import evaluate_scorer
from xdet_tasks.errors import ScorerError
from xdet_tasks.io import cache_dir
from xdet_tasks.scoring.local import load_or_train, train_local
from xdet_tasks.scoring.registry import build_scorer
from xdet_tasks.suites.paradetox import load_pairs
from xdet_tasks.suites.records import LANGUAGES


@pytest.fixture(scope="module")
def scorer():
    return load_or_train()


def test_meets_the_held_out_bar(scorer):
    report = evaluate_scorer(scorer, LANGUAGES, n_boot=20)
    aucs = {lang: row["roc_auc"]["value"] for lang, row in report["rows"].items()}
    assert set(aucs) == set(LANGUAGES)
    assert np.mean(list(aucs.values())) >= 0.88
    assert min(aucs.values()) >= 0.80, aucs


def test_scores_are_probabilities_and_rank_toxic_above_neutral(scorer):
    pairs = load_pairs("en", "test")
    toxic = scorer.score([p.toxic for p in pairs], "en")
    neutral = scorer.score([p.neutral for p in pairs], "en")
    assert all(0.0 <= s <= 1.0 for s in toxic + neutral)
    assert np.mean(toxic) > np.mean(neutral) + 0.2


def test_training_is_deterministic_and_cached_by_data_hash(scorer, tmp_path, monkeypatch):
    pairs = [p for lang in ("de", "en") for p in load_pairs(lang, "train")]
    a, b = train_local(pairs), train_local(pairs)
    texts = [p.toxic for p in load_pairs("de", "test")]
    assert a.score(texts, "de") == b.score(texts, "de")
    assert a.version == b.version != scorer.version  # other data, other version
    monkeypatch.setenv("XDET_CACHE_DIR", str(tmp_path))
    first = load_or_train()
    (cached,) = (cache_dir() / "local-scorer").glob("*.pkl")
    assert pickle.loads(cached.read_bytes()).version == first.version == scorer.version


def test_unknown_backend_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("XDET_SCORER", "nonesuch")
    with pytest.raises(ScorerError, match=r"scorer 'nonesuch' \(XDET_SCORER or --scorer\): unknown scorer backend 'nonesuch'"):
        build_scorer()


def test_cli_evaluate_prints_per_language_table(capsys, tmp_path):
    assert main(["scorer", "evaluate", "local", "--n-boot", "50", "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "ROC-AUC" in out and "| mean" in out and "Brier" in out and "ECE" in out
    for lang in LANGUAGES:
        assert f"| {lang} " in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["scorer"]["backend"] == "local" and set(report["rows"]) == set(LANGUAGES)
