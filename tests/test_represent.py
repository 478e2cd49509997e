"""Representation analysis: distance matrices and silhouettes (paper §A.4, Figs. 7-9)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import silhouette_score

from xdet.cli import main
from xdet.represent.compute import GROUPS, analyze, centroid_distances
from xdet.represent.embed import embed, load_model
from xdet.represent.report import represent
from xdet_tasks.errors import XdetError

WORDS_A = "river stone cloud garden window lantern meadow harbor candle orchard".split()
WORDS_B = "kettle violin saddle pepper marble tunnel falcon ribbon walnut chimney".split()


def _sentences(rng: random.Random, words: list[str], n: int, tag: str) -> list[str]:
    return [f"{tag} {i} " + " ".join(rng.choice(words) for _ in range(rng.randint(2, 9))) for i in range(n)]


def _write_column(path: Path, rows: list[str]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([r] for r in rows)


@pytest.fixture()
def twin_data_dir(tmp_path: Path) -> Path:
    """Released-files layout where ``de`` and ``en`` hold the same (synthetic) sentences and ``es`` differs."""
    rng = random.Random(7)
    out = tmp_path / "data"
    out.mkdir()
    for split, n in (("train", 300), ("test", 100)):
        shared = {
            "toxic": _sentences(rng, WORDS_A, n, "loud"),
            "neutral": _sentences(rng, WORDS_A, n, "calm"),
        }
        other = {
            "toxic": _sentences(rng, WORDS_B, n, "LOUD!"),
            "neutral": _sentences(rng, WORDS_B, n, "quiet."),
        }
        for kind in ("toxic", "neutral"):
            _write_column(out / f"de_{split}_{kind}.csv", shared[kind])
            _write_column(out / f"en_{split}_{kind}.csv", shared[kind])
            _write_column(out / f"es_{split}_{kind}.csv", other[kind])
    return out


def _clusters(seed: int = 0, n: int = 12, dim: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {lang: rng.normal(loc=rng.normal(0, 3, dim), scale=0.5, size=(n, dim)) for lang in ("ar", "de", "ru")}


def _check_matrix(m: np.ndarray, n: int) -> None:
    assert m.shape == (n, n)
    np.testing.assert_array_equal(m, m.T)
    np.testing.assert_array_equal(np.diag(m), 0.0)
    assert (m >= -1e-12).all()


def test_analyze_on_constructed_embeddings_identical_languages_have_zero_distance() -> None:
    toxic, neutral = _clusters(0), _clusters(1)
    toxic["en"], neutral["en"] = toxic["de"].copy(), neutral["de"].copy()  # en is a copy of de
    for metric in ("cosine", "euclidean", "manhattan"):
        a = analyze(toxic, neutral, metric)
        assert a.langs == ["ar", "de", "ru", "en"]
        de, en, ar = a.langs.index("de"), a.langs.index("en"), a.langs.index("ar")
        for group in GROUPS:
            m = a.distances[group]
            _check_matrix(m, 4)
            assert m[de, en] == pytest.approx(0.0, abs=1e-9)
            assert m[de, ar] > 0.01
            assert -1.0 <= a.silhouette[group] <= 1.0
            assert all(-1.0 <= v <= 1.0 for v in a.silhouette_per_lang[group].values())
        assert all(-1.0 <= v <= 1.0 for v in a.toxic_vs_neutral.values())
        # the overall score is sklearn's, and per-language means average back to it (equal sizes)
        x = np.concatenate([toxic[lang] for lang in a.langs])
        labels = [lang for lang in a.langs for _ in range(len(toxic[lang]))]
        assert a.silhouette["toxic"] == pytest.approx(silhouette_score(x, labels, metric=metric))
        assert np.mean(list(a.silhouette_per_lang["toxic"].values())) == pytest.approx(a.silhouette["toxic"])
        # de and en are indistinguishable, so their sentences cannot cluster well; ar and ru can.
        assert a.silhouette_per_lang["toxic"]["de"] < a.silhouette_per_lang["toxic"]["ar"]


def test_centroid_distance_matches_direct_cosine() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(10, 5))
    labels = ["a"] * 4 + ["b"] * 6
    ca, cb = x[:4].mean(0), x[4:].mean(0)
    expected = 1 - ca @ cb / (np.linalg.norm(ca) * np.linalg.norm(cb))
    m = centroid_distances(x, labels, ["a", "b"])
    assert m[0, 1] == pytest.approx(expected)


def test_toxic_vs_neutral_separation_is_detected() -> None:
    rng = np.random.default_rng(5)
    toxic = {lang: rng.normal(5, 0.1, size=(10, 4)) for lang in ("de", "en")}
    neutral = {lang: rng.normal(-5, 0.1, size=(10, 4)) for lang in ("de", "en")}
    a = analyze(toxic, neutral, "euclidean")
    assert a.toxic_vs_neutral["de"] > 0.9 and a.toxic_vs_neutral["overall"] > 0.9


def test_analyze_rejects_bad_input() -> None:
    c = _clusters()
    with pytest.raises(XdetError, match="at least 2"):
        analyze({"de": c["de"]}, {"de": c["de"]})
    with pytest.raises(XdetError, match="unknown metric"):
        analyze(c, c, "hamming-ish")


def test_embedding_ignores_batch_padding_and_honours_layer_and_pooling(tiny_model) -> None:
    loaded = load_model(tiny_model("llama"), device="cpu")
    short, long = "calm river", "calm river stone cloud garden window lantern meadow"
    for pooling in ("mean", "last", "first"):
        alone = embed(loaded, [short], pooling=pooling)
        padded = embed(loaded, [long, short], pooling=pooling, batch_size=2)
        np.testing.assert_allclose(alone[0], padded[1], atol=1e-5)
    # layer 0 is the token embedding table: "first" pooling gives the first token's embedding row
    first_id = loaded.tokenizer(short).input_ids[0]
    row = loaded.hf.get_input_embeddings().weight[first_id].detach().numpy()
    np.testing.assert_allclose(embed(loaded, [short], layer=0, pooling="first")[0], row, atol=1e-6)
    assert not np.allclose(embed(loaded, [short], pooling="mean"), embed(loaded, [short], pooling="last"))
    with pytest.raises(XdetError, match="layer 99 out of range"):
        embed(loaded, [short], layer=99)


def test_represent_through_model_identical_languages(tiny_model, twin_data_dir, tmp_path) -> None:
    out = tmp_path / "out"
    summary = represent(
        tiny_model("llama"), langs=["de", "en", "es"], split="test", out_dir=out, limit=8,
        data_dir=twin_data_dir, batch_size=5, device="cpu",
    )
    run = summary["runs"]["base"]
    assert run["n_pairs"] == {"de": 8, "en": 8, "es": 8}
    for group in GROUPS:
        m = np.array(run["distances"][group])
        _check_matrix(m, 3)
        assert m[0, 1] == pytest.approx(0.0, abs=1e-5)  # de vs en: identical sentences
        assert m[0, 2] > 1e-3
        # the CSV holds the same matrix
        with (out / "base" / f"distance_{group}.csv").open() as fh:
            rows = list(csv.reader(fh))
        assert rows[0] == ["lang", "de", "en", "es"]
        np.testing.assert_allclose(np.array([r[1:] for r in rows[1:]], dtype=float), m, atol=1e-6)
        assert -1 <= run["silhouette"][group] <= 1
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["schema"] == "xdet-represent/1" and on_disk["pair_splits"] == ["test"]
    for rel in on_disk["files"]:
        assert (out / rel).stat().st_size > 0
    assert (out / "base" / "distance_all.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "adapter").exists() and summary["diff"] is None


def test_cli_with_adapter_on_seq2seq_writes_before_after_and_diff(tiny_model, data_dir, tmp_path, capsys) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSeq2SeqLM

    base = tiny_model("mt5")
    adapter = tmp_path / "adapter"
    # random (non-zero) LoRA weights so the adapter visibly moves the encoder's representations
    peft_model = get_peft_model(
        AutoModelForSeq2SeqLM.from_pretrained(base), LoraConfig(r=4, target_modules=["q", "v"], init_lora_weights=False)
    )
    peft_model.save_pretrained(adapter)
    out = tmp_path / "out"
    code = main([
        "represent", "--model", str(base), "--peft", str(adapter), "--langs", "de,en", "ru",
        "--split", "toxic-train", "--limit", "4", "--out", str(out), "--device", "cpu", "--pooling", "last",
    ])
    assert code == 0
    assert "language silhouette" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["encoder_only"] is True and summary["pair_splits"] == ["train"]
    for group in GROUPS:
        before = np.array(summary["runs"]["base"]["distances"][group])
        after = np.array(summary["runs"]["adapter"]["distances"][group])
        _check_matrix(after, 3)
        diff = np.array(summary["diff"]["distances"][group])
        np.testing.assert_allclose(diff, after - before, atol=1e-5)
        assert np.abs(diff).max() > 1e-4
        assert (out / "diff" / f"distance_{group}_diff.png").is_file()
    assert (out / "adapter" / "silhouette.png").is_file() and (out / "diff" / "silhouette_diff.csv").is_file()


def test_cli_bad_input_exits_2_and_writes_nothing(tiny_model, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    model = str(tiny_model("llama"))
    common = ["represent", "--model", model, "--langs", "de", "en", "--limit", "3", "--out", str(out)]
    assert main([*common, "--layer", "42"]) == 2
    assert "layer 42 out of range" in capsys.readouterr().err
    assert main([*common, "--peft", str(tmp_path)]) == 2
    assert "no adapter_config.json" in capsys.readouterr().err
    assert main([*common[:4], "xx", "en", *common[6:]]) == 2
    assert "unknown language code 'xx'" in capsys.readouterr().err
    assert not out.exists()
