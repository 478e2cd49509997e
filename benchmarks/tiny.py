"""The benchmarks' shared model: a tiny Llama trained on the paper's train sentences, cached in /tmp.

Imported by the ``bench_*.py`` scripts, which run from this folder (``python benchmarks/bench_x.py``
puts it first on ``sys.path``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def paradetox_train_texts() -> list[str]:
    """Every toxic and neutral train sentence of the nine languages (the tokenizer's corpus)."""
    from xdet_tasks.suites.paradetox import load_pairs
    from xdet_tasks.suites.records import LANGUAGES

    return [t for lang in LANGUAGES for p in load_pairs(lang, "train") for t in (p.toxic, p.neutral)]


def tiny_llama(out: Path | None = None, size: str = "tiny") -> Path:
    """The model at ``out`` (default: one per size under the temp folder), built once."""
    from xdet_train.tiny import save_tiny_model

    out = out or Path(tempfile.gettempdir()) / f"xdet-bench-llama-{size}"
    if not (out / "config.json").is_file():
        save_tiny_model("llama", out, paradetox_train_texts(), size=size)
    return out
