"""The ``textdetox`` preset is the TextDetox 2025 shared task's scorer, rebuilt here from its documented steps.

The official evaluation (pan-webis-de/pan-code, ``clef25/text-detoxification/evaluation/metrics/
toxicity.py``) loads the classifier ``textdetox/xlmr-large-toxicity-classifier-v2`` and, separately,
the tokenizer of ``cardiffnlp/twitter-xlm-roberta-large-2022``; tokenizes each batch of 32 texts with
padding, ``truncation=True`` and ``max_length=512``; runs the model in float32 without gradients;
applies a softmax over the logits and keeps one class (class 0, neutral: its style-transfer accuracy;
toxicity is class 1 of the same vector). :func:`official_scores` below does exactly these steps with
plain transformers calls, on a tiny random XLM-R classifier whose folder holds no tokenizer and a
tiny tokenizer trained here, and the preset must give the same numbers.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from tiny_classifier import add_hub_commit, isolate_hub, one_torch_thread, tiny_xlmr_paths

from xdet_tasks.errors import ScorerError
from xdet_tasks.scoring.cache import CachedScorer, ScoreCache
from xdet_tasks.scoring.hf import files_hash
from xdet_tasks.scoring.presets import lock_path
from xdet_tasks.scoring.registry import build_scorer
from xdet_tasks.suites.paradetox import load_pairs

V2 = "textdetox/xlmr-large-toxicity-classifier-v2"
TOKENIZER = "cardiffnlp/twitter-xlm-roberta-large-2022"


@pytest.fixture(scope="module")
def xlmr(tmp_path_factory, data_dir):
    return tiny_xlmr_paths(tmp_path_factory, data_dir)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture
def private_hub(tmp_path, monkeypatch):
    return isolate_hub(tmp_path, monkeypatch)


def official_scores(classifier, tokenizer, texts, batch_size=32):
    """``(n, 2)`` softmax probabilities, computed the way the shared task's evaluation documents it."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(classifier).eval()
    tok = AutoTokenizer.from_pretrained(tokenizer)
    out = []
    for start in range(0, len(texts), batch_size):
        inputs = tok(texts[start:start + batch_size], return_tensors="pt", padding=True, truncation=True,
                     max_length=512)
        with torch.no_grad():
            out.append(torch.softmax(model(**inputs).logits, dim=-1))
    return torch.cat(out).numpy()


def _texts(data_dir):
    pairs = [p for lang in ("en", "zh", "am", "ru", "hi") for p in load_pairs(lang, "test", data_dir=data_dir)[:8]]
    medium = " ".join(p.toxic for p in pairs[:12])  # between the tokenizer's 128 and the official 512 tokens
    long = " ".join(p.toxic + " " + p.neutral for p in pairs)  # beyond 512 tokens: truncated
    return [p.toxic for p in pairs] + [p.neutral for p in pairs] + [medium, long]


def test_classifier_folder_without_tokenizer_files_needs_the_separate_tokenizer(xlmr):
    classifier, tokenizer = xlmr
    assert sorted(p.name for p in classifier.iterdir()) == ["config.json", "model.safetensors"]
    with pytest.raises(ScorerError, match="no usable tokenizer") as caught:
        build_scorer(f"hf:{classifier}#label=toxic")
    assert "\n" not in str(caught.value)
    scorer = build_scorer(f"hf:{classifier}#tokenizer={tokenizer}")
    assert scorer.provenance()["tokenizer"]["source"] == str(tokenizer)


def test_preset_equals_the_official_procedure_text_by_text(xlmr, data_dir, private_hub, monkeypatch):
    classifier, tokenizer = xlmr
    monkeypatch.setenv("XDET_SCORER_PRESET_DIR_TEXTDETOX", str(classifier))
    monkeypatch.setenv("XDET_SCORER_PRESET_TOKENIZER_DIR_TEXTDETOX", str(tokenizer))
    texts = _texts(data_dir)
    lengths = [len(ids) for ids in build_scorer(f"hf:{classifier}#tokenizer={tokenizer}").tokenizer(texts)["input_ids"]]
    assert 128 < lengths[-2] < 512 < lengths[-1]  # both limits are exercised
    official = official_scores(classifier, tokenizer, texts, batch_size=1)  # one text per forward pass
    scorer = build_scorer("textdetox:#batch=1")
    ours = scorer.score(texts, "en")
    assert ours == official[:, 1].tolist()  # bit for bit: the same tokens, forward pass, softmax and class
    assert np.allclose(1.0 - official[:, 0], ours, rtol=0, atol=1e-6)  # the shared task's STA = 1 - toxicity
    assert float(np.std(ours)) > 0.05  # spread-out scores, so a wrong class or a wrong text cannot pass
    assert (scorer.max_length, scorer.dtype, scorer.truncated) == (512, "float32", 1)
    assert scorer.provenance()["probability"] == "softmax"


def test_batched_preset_is_within_the_official_procedures_own_batch_noise(xlmr, data_dir, private_hub, monkeypatch):
    """Padding changes float32 sums in the last bits, so the official scores themselves depend on which
    texts share a batch; the preset (length-sorted batches) must stay within that noise."""
    classifier, tokenizer = xlmr
    monkeypatch.setenv("XDET_SCORER_PRESET_DIR_TEXTDETOX", str(classifier))
    monkeypatch.setenv("XDET_SCORER_PRESET_TOKENIZER_DIR_TEXTDETOX", str(tokenizer))
    texts = _texts(data_dir)
    official = official_scores(classifier, tokenizer, texts)[:, 1]
    ours = np.array(build_scorer("textdetox").score(texts, "en"))
    assert np.abs(ours - official).max() <= 2e-6


def test_provenance_names_both_revisions_and_pins_them(xlmr, data_dir, private_hub):
    classifier, tokenizer = xlmr
    model_commit, tok_commit = "a" * 40, "c" * 40
    model_snap = add_hub_commit(private_hub, V2, model_commit, classifier)
    tok_snap = add_hub_commit(private_hub, TOKENIZER, tok_commit, tokenizer)
    scorer = build_scorer("textdetox")
    prov = scorer.provenance()
    assert (prov["model"], prov["revision"], prov["origin"]) == (V2, model_commit, "hub-cache")
    tok = prov["tokenizer"]
    assert (tok["model"], tok["revision"], tok["origin"]) == (TOKENIZER, tok_commit, "hub-cache")
    assert tok["files_sha256"] == files_hash(tok_snap, weights=False) and "line 14" in prov["preset_source"]
    lock = json.loads(lock_path("textdetox").read_text())
    assert (lock["revision"], lock["tokenizer_revision"]) == (model_commit, tok_commit)
    assert lock["files_sha256"] == files_hash(model_snap) and lock["tokenizer"] == TOKENIZER

    add_hub_commit(private_hub, TOKENIZER, "d" * 40, tokenizer, note="a newer upload")  # main moves on
    assert build_scorer("textdetox").provenance()["tokenizer"]["revision"] == tok_commit  # the pin holds
    config = json.loads((tok_snap / "tokenizer_config.json").read_text())
    (tok_snap / "tokenizer_config.json").write_text(json.dumps({**config, "model_max_length": 64}))
    with pytest.raises(ScorerError, match="tokenizer revision c{40} changed on disk") as caught:
        build_scorer("textdetox")
    assert "XDET_SCORER_PRESET_TOKENIZER_DIR_TEXTDETOX" in str(caught.value)


def test_missing_tokenizer_offline_is_one_line_naming_it(xlmr, private_hub):
    classifier, _ = xlmr
    add_hub_commit(private_hub, V2, "a" * 40, classifier)  # the classifier alone is cached
    with pytest.raises(ScorerError) as caught:
        build_scorer("textdetox")
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"scorer 'textdetox' ({V2}) cannot be loaded: its tokenizer "
                                                      f"{TOKENIZER}")
    assert "XDET_SCORER_PRESET_TOKENIZER_DIR_TEXTDETOX" in message and "XDET_SCORER=local" in message


def test_score_cache_key_includes_the_tokenizer(xlmr, tmp_path):
    """Same classifier, another tokenizer: other scores, so never the first one's cached entries."""
    classifier, tokenizer = xlmr
    other = tmp_path / "other-tokenizer"
    shutil.copytree(tokenizer, other)
    config = json.loads((other / "tokenizer_config.json").read_text())
    (other / "tokenizer_config.json").write_text(json.dumps({**config, "do_lower_case": True, "note": "other"}))
    first = build_scorer(f"hf:{classifier}#tokenizer={tokenizer}")
    second = build_scorer(f"hf:{classifier}#tokenizer={other}")
    assert first.files_sha256 == second.files_sha256 and first.version != second.version
    cache = ScoreCache(tmp_path / "scores.sqlite3")
    texts = ["A calm sentence.", "Another one."]
    CachedScorer(first, cache).score(texts, "en")
    again = CachedScorer(second, cache)
    again.score(texts, "en")
    assert (again.hits, again.misses) == (0, 2)

