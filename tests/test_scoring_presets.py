"""Scorer presets: pinned revisions, local overrides, first-download pinning, and failing fast offline."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import time

import pytest
from tiny_classifier import add_hub_commit, isolate_hub, tiny_classifier_path, tiny_xlmr_paths

from xdet_tasks.errors import ScorerError
from xdet_tasks.scoring.hf import files_hash
from xdet_tasks.scoring.presets import PRESETS, PresetScorer, env_dir_var, lock_path
from xdet_tasks.scoring.registry import build_scorer
from xdet_tasks.suites.records import LANGUAGES

V2 = "textdetox/xlmr-large-toxicity-classifier-v2"
TOKENIZER = "cardiffnlp/twitter-xlm-roberta-large-2022"


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, data_dir):
    return tiny_classifier_path(tmp_path_factory, data_dir)


@pytest.fixture
def private_hub(tmp_path, monkeypatch):
    return isolate_hub(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def xlmr(tmp_path_factory, data_dir):
    return tiny_xlmr_paths(tmp_path_factory, data_dir)


def test_preset_table():
    assert set(PRESETS) == {"textdetox", "textdetox-v1"}
    assert PRESETS["textdetox"].model == V2 and PRESETS["textdetox"].revision is None  # pinned on first use
    v1 = PRESETS["textdetox-v1"]
    assert v1.model == "textdetox/xlmr-large-toxicity-classifier" and re.fullmatch(r"[0-9a-f]{40}", v1.revision)
    for preset in PRESETS.values():
        assert (preset.label_index, preset.label_name) == (1, "toxic") and set(LANGUAGES) <= set(preset.languages)
    assert set(PRESETS["textdetox-v1"].languages) == set(LANGUAGES)
    assert env_dir_var("textdetox-v1") == "XDET_SCORER_PRESET_DIR_TEXTDETOX_V1"
    assert env_dir_var("textdetox", "tokenizer") == "XDET_SCORER_PRESET_TOKENIZER_DIR_TEXTDETOX"
    # the shared task's evaluation: toxicity.py lines 14 and 17, written out here, not read from the code
    official = PRESETS["textdetox"]
    assert (official.tokenizer, official.tokenizer_revision, official.max_length, official.dtype) == (
        TOKENIZER, None, 512, "float32")
    assert (v1.tokenizer, v1.max_length) == (None, None)  # the 2024 evaluation used the classifier's own


def test_local_folder_override_and_provenance(classifier, private_hub, monkeypatch):
    monkeypatch.setenv("XDET_SCORER_PRESET_DIR_TEXTDETOX_V1", str(classifier))
    scorer = build_scorer("textdetox-v1:#batch=4")
    assert isinstance(scorer, PresetScorer) and scorer.batch == 4 and scorer.label_index == 1
    prov = scorer.provenance()
    assert prov["preset"] == "textdetox-v1" and prov["model"] == "textdetox/xlmr-large-toxicity-classifier"
    assert prov["files_sha256"] == files_hash(classifier) and prov["local_path"] == str(classifier)
    assert prov["revision"] is None and prov["origin"] == "local-dir"
    assert scorer.version == files_hash(classifier)[:16]  # no revision known: the content hash alone
    for lang in LANGUAGES:
        scorer.check_language(lang)
    with pytest.raises(ScorerError, match="no reported results for language 'fr'"):
        scorer.check_language("fr")
    assert not lock_path("textdetox-v1").exists()  # a local folder never pins anything
    with pytest.raises(ScorerError, match="not allowed for a preset"):
        build_scorer("textdetox-v1:#label=0")


def test_a_model_whose_class_1_is_not_toxic_is_refused(classifier, private_hub, tmp_path, monkeypatch):
    flipped = tmp_path / "flipped"
    shutil.copytree(classifier, flipped)
    config = json.loads((flipped / "config.json").read_text())
    config["id2label"], config["label2id"] = {"0": "toxic", "1": "neutral"}, {"toxic": 0, "neutral": 1}
    (flipped / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("XDET_SCORER_PRESET_DIR_TEXTDETOX", str(flipped))
    monkeypatch.setenv("XDET_SCORER_PRESET_TOKENIZER_DIR_TEXTDETOX", str(classifier))
    with pytest.raises(ScorerError, match="class 1 is named 'neutral'"):
        build_scorer("textdetox")
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("XDET_SCORER_PRESET_DIR_TEXTDETOX", str(empty))
    with pytest.raises(ScorerError, match=r"^scorer 'textdetox' \(.*no weight files") as caught:
        build_scorer("textdetox")
    assert "\n" not in str(caught.value) and "XDET_SCORER=local" in str(caught.value)


def test_first_download_pins_the_revision_for_later_runs(xlmr, private_hub):
    classifier, tokenizer = xlmr
    first = "a" * 40
    snapshot = add_hub_commit(private_hub, V2, first, classifier)
    tok_snapshot = add_hub_commit(private_hub, TOKENIZER, "c" * 40, tokenizer)
    scorer = build_scorer("textdetox")
    prov = scorer.provenance()
    assert (prov["revision"], prov["origin"], prov["model"]) == (first, "hub-cache", V2)
    joint = hashlib.sha256(f"{files_hash(snapshot)}+{files_hash(tok_snapshot, weights=False)}".encode()).hexdigest()
    assert scorer.version == f"{joint[:16]}@{first[:12]}"  # the score-cache key names both files and the revision
    lock = json.loads(lock_path("textdetox").read_text())
    assert (lock["revision"], lock["files_sha256"]) == (first, files_hash(snapshot))

    add_hub_commit(private_hub, V2, "b" * 40, classifier, note="a newer upload")  # main moves on
    again = build_scorer("textdetox")
    assert again.provenance()["revision"] == first and again.files_sha256 == scorer.files_sha256

    config = json.loads((snapshot / "config.json").read_text())
    (snapshot / "config.json").write_text(json.dumps({**config, "tampered": True}))
    with pytest.raises(ScorerError, match="changed on disk"):
        build_scorer("textdetox")

    lock_path("textdetox").unlink()  # the documented way to move to the newest commit
    assert build_scorer("textdetox").provenance()["revision"] == "b" * 40


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("network", ["HF_HUB_OFFLINE", "refused", "stalled"])
def test_no_network_no_copy_fails_fast_with_one_line(network, private_hub, monkeypatch):
    from huggingface_hub import constants

    stalled = None
    if network != "HF_HUB_OFFLINE":  # really ask the (fake) hub: nothing may hang or retry
        monkeypatch.delenv("HF_HUB_OFFLINE")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        if network == "refused":
            port = _closed_port()
        else:  # accepts the connection (kernel backlog) and never answers
            stalled = socket.socket()
            stalled.bind(("127.0.0.1", 0))
            stalled.listen(8)
            port = stalled.getsockname()[1]
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    start = time.monotonic()
    try:
        with pytest.raises(ScorerError) as caught:
            build_scorer("textdetox")
    finally:
        if stalled is not None:
            stalled.close()
    elapsed = time.monotonic() - start
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"scorer 'textdetox' ({V2}) cannot be loaded: ")
    assert "XDET_SCORER=local" in message and "XDET_SCORER_PRESET_DIR_TEXTDETOX" in message
    assert ("HF_HUB_OFFLINE is set" if network == "HF_HUB_OFFLINE" else "the hub is unreachable") in message
    assert elapsed < (6.0 if network == "stalled" else 2.0), elapsed
