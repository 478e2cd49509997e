"""Builders shared by the analysis tests (matrices, language maps, the required record fields)."""

from __future__ import annotations

import numpy as np

from xdet.analyze import DeltaMatrix, LanguageInfo

PAPER_ROWS = ("ar", "de", "en", "es", "hi", "ru", "zh")
PAPER_COLS = ("am", "ar", "de", "en", "es", "hi", "ru")
REQUIRED_FIELDS = {
    "table",
    "model",
    "metric",
    "split",
    "hypothesis",
    "description",
    "effect",
    "ci_low",
    "ci_high",
    "p",
    "p_holm",
    "n_cells",
    "n_permutations",
    "exact",
    "ci_method",
    "status",
    "reason",
    "notes",
}


def make_matrix(rows, cols, delta, **kw) -> DeltaMatrix:
    base = {
        "table": "T",
        "model": "m",
        "metric": "avg_toxicity",
        "measure": "toxicity",
        "split": "toxic-test",
    }
    return DeltaMatrix(
        **(base | kw), rows=tuple(rows), cols=tuple(cols), delta=np.asarray(delta, dtype=float)
    )


def only(results, hypothesis):
    [rec] = [r for r in results if r.hypothesis == hypothesis]
    return rec


def lang_map(scripts: dict[str, str], indo_european: set[str] | None = None) -> dict[str, LanguageInfo]:
    ie = indo_european or set()
    return {c: LanguageInfo(s, c in ie, "Indo-European" if c in ie else "Other") for c, s in scripts.items()}


# ---------------------------------------------------------------------------------------------
# Permutation machinery and Holm
# ---------------------------------------------------------------------------------------------
