"""The sentences tiny test models are trained on: every train pair of the paper's nine languages.

A module of its own (not ``conftest``): ``pytest tests repro`` loads two conftest files, so ``from
conftest import ...`` in a helper module can find the wrong one.
"""

from __future__ import annotations

from pathlib import Path


def training_texts(data_dir: Path) -> list[str]:
    from xdet_tasks.suites.paradetox import load_pairs
    from xdet_tasks.suites.records import LANGUAGES

    texts: list[str] = []
    for lang in LANGUAGES:
        for pair in load_pairs(lang, "train", data_dir=data_dir):
            texts.extend((pair.toxic, pair.neutral))
    return texts
