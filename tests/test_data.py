"""The data module: both sources give the paper's pairs, and bad input fails with a precise message."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from xdet_tasks.errors import DataError
from xdet_tasks.suites import paradetox as data
from xdet_tasks.suites.paradetox import load_pairs, load_set


def _lines(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [row[0] for row in csv.reader(fh)]


@pytest.mark.parametrize("lang", data.LANGUAGES)
def test_released_files_give_parallel_pairs(data_dir, lang):
    train, test = load_pairs(lang, "train"), load_pairs(lang, "test")
    assert len(train) == 300 and len(test) == 100
    toxic = _lines(data_dir / f"{lang}_test_toxic.csv")
    neutral = _lines(data_dir / f"{lang}_test_neutral.csv")
    assert [p.toxic for p in test] == toxic
    assert [p.neutral for p in test] == neutral
    assert [p.index for p in train] == list(range(300))
    assert load_set(lang, "neutral-train") == [p.neutral for p in train]
    assert load_set(lang, "toxic-test") == toxic


def test_sets_are_distinct_and_train_test_disjoint():
    for lang in ("de", "zh"):
        train = {p.neutral for p in load_pairs(lang, "train")}
        test = {p.neutral for p in load_pairs(lang, "test")}
        assert len(train & test) <= 1  # the released files may repeat a stock phrase, not whole splits


def _copy_split(data_dir: Path, tmp_path: Path, lang: str = "de") -> Path:
    out = tmp_path / "splits"
    out.mkdir()
    for split in ("train", "test"):
        for kind in ("toxic", "neutral"):
            name = f"{lang}_{split}_{kind}.csv"
            shutil.copy(data_dir / name, out / name)
    return out


def _rewrite(path: Path, rows: list[str]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, quoting=csv.QUOTE_ALL).writerows([r] for r in rows)


def test_missing_data_dir(tmp_path):
    with pytest.raises(DataError, match="does-not-exist.*does not exist"):
        load_pairs("de", "test", data_dir=tmp_path / "does-not-exist")


def test_missing_split_file(data_dir, tmp_path):
    out = _copy_split(data_dir, tmp_path)
    (out / "de_test_neutral.csv").unlink()
    with pytest.raises(DataError, match=r"de_test_neutral\.csv: missing split file"):
        load_pairs("de", "test", data_dir=out)


def test_wrong_row_count(data_dir, tmp_path):
    out = _copy_split(data_dir, tmp_path)
    for kind in ("toxic", "neutral"):
        path = out / f"de_test_{kind}.csv"
        _rewrite(path, _lines(path)[:99])
    with pytest.raises(DataError, match=r"de_test_toxic\.csv: expected 100 rows, found 99"):
        load_pairs("de", "test", data_dir=out)


def test_toxic_neutral_count_mismatch(data_dir, tmp_path):
    out = _copy_split(data_dir, tmp_path)
    path = out / "de_test_neutral.csv"
    _rewrite(path, _lines(path)[:97])
    with pytest.raises(DataError, match=r"has 100 rows but .*de_test_neutral\.csv has 97.*mismatch"):
        load_pairs("de", "test", data_dir=out)


def test_empty_sentence_names_file_and_line(data_dir, tmp_path):
    out = _copy_split(data_dir, tmp_path)
    path = out / "de_test_toxic.csv"
    rows = _lines(path)
    rows[41] = "   "
    _rewrite(path, rows)
    with pytest.raises(DataError, match=r"de_test_toxic\.csv:42: empty sentence"):
        load_pairs("de", "test", data_dir=out)


def test_wrong_column_count(data_dir, tmp_path):
    out = _copy_split(data_dir, tmp_path)
    path = out / "de_test_toxic.csv"
    rows = _lines(path)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_ALL)
        writer.writerows([[r] for r in rows[:4]] + [[rows[4], "extra"]] + [[r] for r in rows[5:]])
    with pytest.raises(DataError, match=r"de_test_toxic\.csv:5: expected exactly one column, found 2"):
        load_pairs("de", "test", data_dir=out)


def test_non_utf8_file(data_dir, tmp_path):
    out = _copy_split(data_dir, tmp_path)
    path = out / "de_test_neutral.csv"
    raw = path.read_bytes().split(b"\n")
    raw[2] = b'"caf\xe9 latin-1"'
    path.write_bytes(b"\n".join(raw))
    with pytest.raises(DataError, match=r"de_test_neutral\.csv:3: not valid UTF-8"):
        load_pairs("de", "test", data_dir=out)


def test_unknown_language_and_split_and_set():
    with pytest.raises(DataError, match="unknown language code 'xx'"):
        load_pairs("xx", "test")
    with pytest.raises(DataError, match="unknown split 'dev'"):
        load_pairs("de", "dev")
    with pytest.raises(DataError, match="unknown set 'toxic-dev'"):
        load_set("de", "toxic-dev")


#: The authors' protocol, written out here rather than read from the module, so that a changed seed
#: in the loader cannot also change what the test expects.
AUTHORS_SEED = 42


def _hub_layout(tmp_path: Path, data_dir: Path, langs: tuple[str, ...], edit=None) -> Path:
    """A local dataset laid out like the hub one, rows placed so the authors' shuffle yields the released files."""
    import datasets

    root = tmp_path / "hub"
    (root / "data").mkdir(parents=True, exist_ok=True)
    order = datasets.Dataset.from_dict({"i": list(range(400))}).shuffle(seed=AUTHORS_SEED)["i"]
    configs = []
    for lang in langs:
        released = load_pairs(lang, "train", data_dir=data_dir) + load_pairs(lang, "test", data_dir=data_dir)
        toxic, neutral = [""] * 400, [""] * 400
        for shuffled_pos, original_pos in enumerate(order):
            toxic[original_pos] = released[shuffled_pos].toxic
            neutral[original_pos] = released[shuffled_pos].neutral
        if edit is not None:
            toxic[order[0]] = edit
        datasets.Dataset.from_dict({"toxic_sentence": toxic, "neutral_sentence": neutral}).to_parquet(
            root / "data" / f"{lang}-00000-of-00001.parquet"
        )
        configs.append(f"  - split: {lang}\n    path: data/{lang}-*\n")
    (root / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n" + "".join(configs) + "---\n")
    return root


@pytest.fixture
def private_datasets_cache(tmp_path, monkeypatch):
    """The hub tests write arrow files into a cache of their own, never the user's."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")


def test_hub_source_with_authors_protocol_matches_released_files(data_dir, tmp_path, monkeypatch,
                                                                 private_datasets_cache):
    hub = _hub_layout(tmp_path, data_dir, ("de", "zh"))
    monkeypatch.delenv("XDET_DATA_DIR")
    monkeypatch.setenv("XDET_HUB_DATASET", str(hub))
    assert data.describe_source()["source"] == "hub"
    for lang in ("de", "zh"):
        for split in ("train", "test"):
            assert load_pairs(lang, split) == load_pairs(lang, split, data_dir=data_dir)
    with pytest.raises(DataError, match="no split 'am'"):
        load_pairs("am", "test")
    assert any((tmp_path / "datasets-cache").rglob("*.arrow")), "the loader must write to the private cache"


def test_edited_local_hub_folder_is_never_served_stale(data_dir, tmp_path, monkeypatch, private_datasets_cache):
    hub = _hub_layout(tmp_path, data_dir, ("de",))
    monkeypatch.delenv("XDET_DATA_DIR")
    monkeypatch.setenv("XDET_HUB_DATASET", str(hub))
    first = load_pairs("de", "train")[0].toxic
    _hub_layout(tmp_path, data_dir, ("de",), edit="an edited first sentence")
    assert first != "an edited first sentence"
    assert load_pairs("de", "train")[0].toxic == "an edited first sentence"


def test_unreachable_hub_names_the_dataset_and_the_way_out(monkeypatch):
    monkeypatch.delenv("XDET_DATA_DIR")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("XDET_HUB_DATASET", "someone/not-cached-anywhere")
    with pytest.raises(DataError) as info:
        load_pairs("de", "test")
    message = str(info.value)
    assert "'someone/not-cached-anywhere' cannot be loaded" in message and "XDET_DATA_DIR" in message
    assert "\n" not in message and "OfflineModeIsEnabled" not in message


def test_fingerprint_tracks_content(data_dir, tmp_path):
    out = _copy_split(data_dir, tmp_path)
    before = data.data_fingerprint(["de"], data_dir=out)
    assert before == data.data_fingerprint(["de"], data_dir=data_dir)
    path = out / "de_train_neutral.csv"
    rows = _lines(path)
    rows[0] = rows[0] + " (edited)"
    _rewrite(path, rows)
    data._load_dir.cache_clear()
    assert data.data_fingerprint(["de"], data_dir=out) != before
