"""The paper's sentence sets: which rows of the dataset each one is, and which three are evaluated.

Every multilingual ParaDetox row is a parallel pair (toxic sentence, human-written neutral
paraphrase). The authors split each language's shuffled rows into ``train`` (rows 0-299) and
``test`` (rows 300-399); the paper's four sets are the toxic or neutral halves of those pairs.
"""

from __future__ import annotations

from xdet_tasks.errors import DataError

#: Pair splits and the rows of the authors' ``shuffle(seed=42)`` order they take.
SPLIT_ROWS: dict[str, tuple[int, int]] = {"train": (0, 300), "test": (300, 400)}
PAIR_SPLITS: tuple[str, ...] = tuple(SPLIT_ROWS)
#: The paper's four sets and the (pair split, side of the pair) each is made of.
SETS: dict[str, tuple[str, str]] = {
    "toxic-train": ("train", "toxic"),
    "neutral-train": ("train", "neutral"),
    "toxic-test": ("test", "toxic"),
    "neutral-test": ("test", "neutral"),
}
#: The three sets the paper evaluates on (neutral-train is what fine-tuning trains on).
EVAL_SETS: tuple[str, ...] = ("toxic-train", "toxic-test", "neutral-test")


def split_size(split: str) -> int:
    start, stop = SPLIT_ROWS[check_split(split)]
    return stop - start


def check_split(split: str) -> str:
    if split not in SPLIT_ROWS:
        raise DataError(f"unknown split {split!r}; expected one of {', '.join(PAIR_SPLITS)}")
    return split


def check_set(set_name: str) -> str:
    if set_name not in SETS:
        raise DataError(f"unknown set {set_name!r}; expected one of {', '.join(SETS)}")
    return set_name


def slug(name: str) -> str:
    """The form a set name takes inside task names: ``toxic-test`` -> ``toxic_test``."""
    return name.replace("-", "_")
