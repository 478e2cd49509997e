"""The ``hf:<path>`` backend on a tiny sequence classifier built and fine-tuned here on the shared train data."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from tiny_classifier import one_torch_thread, tiny_classifier_path

from xdet_tasks.errors import ScorerError
from xdet_tasks.scoring.hf import HFScorer, choose_label, files_hash
from xdet_tasks.scoring.registry import build_scorer
from xdet_tasks.suites.paradetox import load_pairs


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, data_dir):
    return tiny_classifier_path(tmp_path_factory, data_dir)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


def _direct_probability(folder, text: str, label: int) -> float:
    """The toxic probability of one text computed straight from transformers (no batching, no padding)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    with torch.inference_mode():
        logits = model(**tok(text, return_tensors="pt", truncation=True, max_length=128)).logits
    return torch.softmax(logits, -1)[0, label].item()


def test_spec_loads_the_toxic_label_and_batches_correctly(classifier, data_dir):
    scorer = build_scorer(f"hf:{classifier}")
    assert isinstance(scorer, HFScorer) and scorer.name == "hf"
    assert (scorer.label_index, scorer.label_name) == (1, "toxic")
    assert scorer.version == files_hash(classifier)[:16] and scorer.device == "cpu"
    pairs = load_pairs("en", "test", data_dir=data_dir)[:12]
    texts = [p.toxic for p in pairs] + [p.neutral for p in pairs] + [""]
    scorer.batch = 5  # several padded batches of mixed lengths
    batched = scorer.score(texts, "en")
    assert all(0.0 <= s <= 1.0 for s in batched) and batched[-1] == 0.0  # empty: 0.0 by the project's rule
    for i in (0, 7, 13, 23):  # padding and sorting must not change a text's score
        assert batched[i] == pytest.approx(_direct_probability(classifier, texts[i], 1), abs=1e-5)
    prov = scorer.provenance()
    assert prov["toxic_label"] == {"index": 1, "name": "toxic"} and prov["files_sha256"].startswith(scorer.version)


def test_fine_tuning_taught_it_something(classifier, data_dir):
    """Trained a few steps on toxic-vs-neutral train pairs: toxic sentences must score higher on average."""
    scorer = build_scorer(f"hf:{classifier}")
    pairs = [p for lang in ("en", "ru") for p in load_pairs(lang, "train", data_dir=data_dir)]
    toxic = scorer.score([p.toxic for p in pairs], "en")
    neutral = scorer.score([p.neutral for p in pairs], "en")
    assert sum(toxic) / len(toxic) > sum(neutral) / len(neutral)


def test_label_option_and_environment(classifier, monkeypatch):
    text = ["A calm sentence about the weather."]
    toxic = build_scorer(f"hf:{classifier}").score(text, "en")[0]
    neutral = build_scorer(f"hf:{classifier}#label=neutral,batch=4").score(text, "en")[0]
    assert toxic + neutral == pytest.approx(1.0, abs=1e-5)
    monkeypatch.setenv("XDET_HF_TOXIC_LABEL", "0")
    assert build_scorer(f"hf:{classifier}").score(text, "en")[0] == pytest.approx(neutral, abs=1e-6)
    with pytest.raises(ScorerError, match="not one of the model's labels"):
        build_scorer(f"hf:{classifier}#label=hateful")
    with pytest.raises(ScorerError, match="unknown option"):
        build_scorer(f"hf:{classifier}#temperature=2")


def test_generic_labels_must_be_named_and_version_tracks_the_files(classifier, tmp_path):
    copy = tmp_path / "generic"
    shutil.copytree(classifier, copy)
    config = json.loads((copy / "config.json").read_text())
    config["id2label"] = {"0": "LABEL_0", "1": "LABEL_1"}
    config["label2id"] = {"LABEL_0": 0, "LABEL_1": 1}
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ScorerError, match=r"cannot tell which label is toxic.*#label="):
        build_scorer(f"hf:{copy}")
    scorer = build_scorer(f"hf:{copy}#label=1")
    assert scorer.label_index == 1
    assert scorer.version != build_scorer(f"hf:{classifier}").version  # config changed -> new version


def test_choose_label_rules():
    assert choose_label({0: "non-toxic", 1: "Toxic"}, None, "m") == 1
    assert choose_label({0: "LABEL_0", 1: "LABEL_1"}, "LABEL_1", "m") == 1
    with pytest.raises(ScorerError):
        choose_label({0: "toxic", 1: "toxicity"}, None, "m")  # ambiguous


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ScorerError, match="no weight files"):
        build_scorer(f"hf:{tmp_path}")
    with pytest.raises(ScorerError, match="needs a model"):
        build_scorer("hf:")


def test_batched_scores_equal_one_at_a_time_and_truncation_is_counted(classifier, data_dir):
    """Sorting, per-batch padding and one-pass tokenization must not change any text's score."""
    scorer = build_scorer(f"hf:{classifier}#batch=7,max_length=40")
    assert scorer.dtype == "float32" and scorer.provenance()["dtype"] == "float32"
    pairs = [p for lang in ("en", "zh", "am", "ru") for p in load_pairs(lang, "test", data_dir=data_dir)[:10]]
    long_text = " ".join(p.toxic for p in pairs[:6])  # far beyond 40 tokens: truncated
    texts = [p.toxic for p in pairs] + [p.neutral for p in pairs] + ["", long_text, "ok"]
    batched = scorer.score(texts, "en")
    assert scorer.truncated == sum(len(scorer.tokenizer(t)["input_ids"]) > 40 for t in texts) >= 1
    single = [scorer.score([t], "en")[0] for t in texts]
    assert batched == pytest.approx(single, abs=1e-5)
    assert batched[len(texts) - 3] == 0.0 and all(0.0 <= s <= 1.0 for s in batched)


def test_dtype_option(classifier):
    text = ["A calm sentence about the weather.", "Another, somewhat longer sentence to score here."]
    fp32 = build_scorer(f"hf:{classifier}")
    bf16 = build_scorer(f"hf:{classifier}#dtype=bf16")
    assert bf16.dtype == "bfloat16" and bf16.provenance()["dtype"] == "bfloat16"
    assert bf16.version == f"{fp32.version}-bf16"  # half-precision scores never share cache entries
    assert bf16.score(text, "en") == pytest.approx(fp32.score(text, "en"), abs=0.05)
    with pytest.raises(ScorerError, match="dtype='int8'"):
        build_scorer(f"hf:{classifier}#dtype=int8")
    with pytest.raises(ScorerError, match="batch must be at least 1"):
        build_scorer(f"hf:{classifier}#batch=0")


def test_declared_languages_are_the_ones_it_scores(classifier):
    """``#langs=`` declares a classifier's coverage (its card's list); without it any language passes."""
    from xdet_tasks.scoring.local import LocalScorer

    declared = HFScorer(f"{classifier}#langs=de+fi")
    declared.check_language("fi")
    with pytest.raises(ScorerError, match=r"does not cover language 'ja' \(it covers de, fi\)"):
        declared.check_language("ja")
    assert "covers de, fi" in declared.provenance()["language_handling"]
    HFScorer(str(classifier)).check_language("ja")
    with pytest.raises(ScorerError, match="langs: unknown language code 'xx'"):
        HFScorer(f"{classifier}#langs=de+xx")
    with pytest.raises(ScorerError, match="scorer 'local' .* does not cover language 'fi'"):
        LocalScorer.check_language(None, "fi")  # the nine it was trained on, whatever its weights
