"""The paper's data: multilingual ParaDetox pairs split as the Breaking mBad! authors split them.

One home for every sentence the project reads. Two sources give the same pairs:

* the dataset hub (``textdetox/multilingual_paradetox``, one split per language) with the authors'
  protocol ``.shuffle(seed=42)``, rows 0-299 train and 300-399 test (the default);
* a directory of released split files ``{lang}_{train|test}_{toxic|neutral}.csv`` (one column, no
  header, CSV-quoted), chosen with ``XDET_DATA_DIR`` or an explicit ``data_dir``.

Row ``i`` of a toxic set and row ``i`` of its neutral set are a parallel pair.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from xdet_tasks.errors import DataError
from xdet_tasks.suites.hub import folder_fingerprint, load_hub_dataset
from xdet_tasks.suites.records import LANGUAGES, PARADETOX, SUITES, check_language
from xdet_tasks.suites.sets import PAIR_SPLITS, SETS, SPLIT_ROWS, check_set, check_split, split_size

HUB_DATASET = SUITES[PARADETOX].hub
HUB_SHUFFLE_SEED = 42
ENV_DATA_DIR = "XDET_DATA_DIR"
ENV_HUB_DATASET = "XDET_HUB_DATASET"
ENV_HUB_REVISION = "XDET_HUB_REVISION"


@dataclass(frozen=True)
class Pair:
    """One parallel pair: a toxic sentence and its human-written neutral paraphrase."""

    lang: str
    split: str
    index: int
    toxic: str
    neutral: str


def split_file(data_dir: str | Path, lang: str, split: str, kind: str) -> Path:
    return Path(data_dir) / f"{lang}_{split}_{kind}.csv"


def resolve_data_dir(data_dir: str | Path | None = None) -> Path | None:
    """The released-files directory to read, or ``None`` for the dataset hub."""
    chosen = data_dir if data_dir not in (None, "") else os.environ.get(ENV_DATA_DIR) or None
    if chosen is None:
        return None
    path = Path(chosen).expanduser()
    if not path.is_dir():
        source = "data_dir" if data_dir not in (None, "") else ENV_DATA_DIR
        raise DataError(f"data directory {str(path)!r} (from {source}) does not exist or is not a directory")
    return path.resolve()


def _read_column(path: Path, expected_rows: int) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path}: missing split file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
    rows: list[str] = []
    reader = csv.reader(text.splitlines(keepends=True))
    for row in reader:
        line = reader.line_num
        if len(row) != 1:
            raise DataError(f"{path}:{line}: expected exactly one column, found {len(row)}")
        sentence = row[0]
        if not sentence.strip():
            raise DataError(f"{path}:{line}: empty sentence")
        rows.append(sentence)
    if len(rows) != expected_rows:
        raise DataError(f"{path}: expected {expected_rows} rows, found {len(rows)}")
    return rows


@lru_cache(maxsize=256)
def _load_dir(data_dir: Path, lang: str, split: str) -> tuple[Pair, ...]:
    expected = split_size(split)
    toxic_path = split_file(data_dir, lang, split, "toxic")
    neutral_path = split_file(data_dir, lang, split, "neutral")
    toxic = _read_column(toxic_path, expected)
    neutral = _read_column(neutral_path, expected)
    return tuple(Pair(lang, split, i, t, n) for i, (t, n) in enumerate(zip(toxic, neutral, strict=True)))


def _read_column_any(path: Path) -> list[str]:
    """Read a split file without a row-count expectation (used only to report mismatches)."""
    with path.open(encoding="utf-8", newline="") as fh:
        return [row[0] if row else "" for row in csv.reader(fh)]


def _load_hub_language(dataset: str, revision: str | None, lang: str) -> tuple[tuple[str, str], ...]:
    return _load_hub_rows(dataset, revision, lang, folder_fingerprint(dataset))


@lru_cache(maxsize=16)
def _load_hub_rows(dataset: str, revision: str | None, lang: str, fingerprint: str | None) -> tuple[tuple[str, str], ...]:
    # ``fingerprint`` (a local folder's content hash) is only part of the cache key: an edited folder is re-read
    ds = load_hub_dataset(
        dataset, revision=revision, split=lang, what=f"dataset {dataset!r}",
        way_out=f"point {ENV_DATA_DIR} at a folder of the released split files "
                "(<lang>_<train|test>_<toxic|neutral>.csv), see the README's Data section",
    )
    for column in ("toxic_sentence", "neutral_sentence"):
        if column not in ds.column_names:
            raise DataError(f"dataset {dataset!r} split {lang!r}: missing column {column!r}")
    ds = ds.shuffle(seed=HUB_SHUFFLE_SEED)
    stop = SPLIT_ROWS["test"][1]
    if len(ds) < stop:
        raise DataError(f"dataset {dataset!r} split {lang!r}: expected at least {stop} rows, found {len(ds)}")
    rows = ds.select(range(stop))
    return tuple(zip(rows["toxic_sentence"], rows["neutral_sentence"], strict=True))


def load_pairs(
    lang: str,
    split: str,
    *,
    data_dir: str | Path | None = None,
    hub_dataset: str | None = None,
    hub_revision: str | None = None,
) -> list[Pair]:
    """The parallel pairs of one language and split (``train``: 300, ``test``: 100)."""
    check_language(lang, PARADETOX)
    check_split(split)
    directory = resolve_data_dir(data_dir)
    if directory is not None:
        if not split_file(directory, lang, split, "toxic").is_file() and not split_file(
            directory, lang, split, "neutral"
        ).is_file():
            raise DataError(
                f"{split_file(directory, lang, split, 'toxic')}: missing split file "
                f"(data directory {directory} holds no {lang}/{split} files)"
            )
        try:
            return list(_load_dir(directory, lang, split))
        except DataError as err:
            _explain_mismatch(directory, lang, split, err)
            raise
    dataset = hub_dataset or os.environ.get(ENV_HUB_DATASET) or HUB_DATASET
    revision = hub_revision or os.environ.get(ENV_HUB_REVISION) or None
    rows = _load_hub_language(dataset, revision, lang)
    start, stop = SPLIT_ROWS[split]
    pairs = []
    for i, (toxic, neutral) in enumerate(rows[start:stop]):
        where = f"{dataset}[{lang}] shuffled row {start + i}"
        if not (toxic or "").strip() or not (neutral or "").strip():
            raise DataError(f"{where}: empty sentence")
        pairs.append(Pair(lang, split, i, toxic, neutral))
    return pairs


def _explain_mismatch(directory: Path, lang: str, split: str, err: DataError) -> None:
    """Turn a bare row-count error into a toxic/neutral mismatch error where that is the cause."""
    if "expected" not in str(err) or "rows" not in str(err):
        return
    toxic_path = split_file(directory, lang, split, "toxic")
    neutral_path = split_file(directory, lang, split, "neutral")
    try:
        n_toxic, n_neutral = len(_read_column_any(toxic_path)), len(_read_column_any(neutral_path))
    except (OSError, UnicodeDecodeError):
        return
    if n_toxic != n_neutral:
        raise DataError(
            f"{toxic_path} has {n_toxic} rows but {neutral_path} has {n_neutral}: "
            "toxic/neutral row-count mismatch (rows must be parallel pairs)"
        ) from err


def load_set(lang: str, set_name: str, **source: str | Path | None) -> list[str]:
    """The sentences of one of the paper's four sets, e.g. ``load_set("de", "toxic-test")``."""
    split, kind = SETS[check_set(set_name)]
    return [getattr(p, kind) for p in load_pairs(lang, split, **source)]


def describe_source(data_dir: str | Path | None = None) -> dict[str, str]:
    """Where the data comes from, for provenance records."""
    directory = resolve_data_dir(data_dir)
    if directory is not None:
        return {"source": "dir", "data_dir": str(directory)}
    return {
        "source": "hub",
        "dataset": os.environ.get(ENV_HUB_DATASET) or HUB_DATASET,
        "revision": os.environ.get(ENV_HUB_REVISION) or "main",
        "protocol": f"shuffle(seed={HUB_SHUFFLE_SEED}); train rows 0-299, test rows 300-399",
    }


def content_hash(pairs: Iterable[Pair]) -> str:
    """A stable hash of pair contents (language, split, index and both sentences)."""
    h = hashlib.sha256()
    for p in pairs:
        for part in (p.lang, p.split, str(p.index), p.toxic, p.neutral):
            h.update(part.encode("utf-8"))
            h.update(b"\x1f")
        h.update(b"\x1e")
    return h.hexdigest()


def data_fingerprint(
    langs: Sequence[str] = LANGUAGES, splits: Sequence[str] = PAIR_SPLITS, **source: str | Path | None
) -> str:
    """Content hash over several languages and splits (keys caches and manifests)."""
    pairs: list[Pair] = []
    for lang in langs:
        for split in splits:
            pairs.extend(load_pairs(lang, split, **source))
    return content_hash(pairs)
