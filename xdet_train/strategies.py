"""Learning strategies: one place that turns a strategy name into its training set.

Strategy names (``parse_strategy``):

* ``zs`` -- zero-shot, no training (the baseline row of every table);
* ``x-ft:<lang>`` -- cross-lingual fine-tuning on the 300 neutral-train sentences of one language;
* ``p-ft:<pct>`` -- a seeded random ``pct`` % of the neutral-train sentences of *each* language, pooled
  into one multilingual set; ``p-ft:<pct>:<lang>`` draws from one language only;
* ``m-ft`` -- every neutral-train sentence of every language, pooled;
* ``dpo`` / ``dpo:<lang>`` -- preference pairs (neutral chosen over toxic), pooled or one language.

Two readings of the paper are settled by the authors' released code (``11_finetune_all_percentage.py``):
p-ft pools the per-language percentages into a single multilingual training run (the paper's text
"random subsets of 10%, 20%, and 30% of the neutral-train set per language" is ambiguous), and m-ft
pools all nine languages -- 2,700 sentences; the paper's "300 samples x 7 languages" only adds up
for nine. The language list of p-ft, m-ft and pooled dpo is a parameter (default: all nine).

Sampling follows the released code too: one legacy ``numpy`` ``RandomState(seed)`` draws
``int(300 * pct / 100)`` rows without replacement for each language in the released order
(en es de zh ar hi uk ru am), so a language's subset does not depend on which other languages are
pooled, and ``seed=42`` reproduces the authors' subsets (the rows are the same ``shuffle(seed=42)``
rows the data module serves).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xdet_tasks.data import LANGUAGES, SPLIT_ROWS, Pair, check_language, content_hash, load_pairs
from xdet_train.errors import XdetError

KINDS: tuple[str, ...] = ("zs", "x-ft", "p-ft", "m-ft", "dpo")
#: The language order in which the released p-ft script draws its per-language subsets.
RELEASED_DRAW_ORDER: tuple[str, ...] = ("en", "es", "de", "zh", "ar", "hi", "uk", "ru", "am")
PAPER_PCTS: tuple[int, ...] = (10, 20, 30)
TRAIN_ROWS = SPLIT_ROWS["train"][1] - SPLIT_ROWS["train"][0]

USAGE = "zs, x-ft:<lang>, p-ft:<pct>, p-ft:<pct>:<lang>, m-ft, dpo or dpo:<lang>"


@dataclass(frozen=True)
class Strategy:
    """A parsed strategy: its kind, the languages it trains on and (p-ft only) the percentage."""

    kind: str
    langs: tuple[str, ...] = ()
    pct: int | None = None
    #: True when the spec named one language (``x-ft:de``, ``p-ft:10:de``, ``dpo:de``).
    single_language: bool = False

    @property
    def trains(self) -> bool:
        return self.kind != "zs"

    @property
    def name(self) -> str:
        """Canonical spec string (pooled variants do not spell out the language list)."""
        if self.kind in ("zs", "m-ft"):
            return self.kind
        if self.kind == "x-ft":
            return f"x-ft:{self.langs[0]}"
        if self.kind == "p-ft":
            return f"p-ft:{self.pct}:{self.langs[0]}" if self.single_language else f"p-ft:{self.pct}"
        return f"dpo:{self.langs[0]}" if self.single_language else "dpo"


@dataclass(frozen=True)
class TrainingSet:
    """The parallel pairs a strategy trains on, in a fixed order, with their content hash."""

    strategy: Strategy
    pairs: tuple[Pair, ...] = field(repr=False)
    data_hash: str = ""

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def neutral(self) -> list[str]:
        return [p.neutral for p in self.pairs]

    def per_language(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for p in self.pairs:
            counts[p.lang] = counts.get(p.lang, 0) + 1
        return counts


def _lang(value: str, spec: str) -> str:
    if value not in LANGUAGES:
        raise XdetError(
            f"strategy {spec!r}: unknown language {value!r}; expected one of {', '.join(LANGUAGES)}"
        )
    return value


def _pct(value: str, spec: str) -> int:
    try:
        pct = int(value)
    except ValueError:
        raise XdetError(f"strategy {spec!r}: percentage {value!r} is not a whole number (e.g. p-ft:10)") from None
    if not 0 < pct <= 100:
        raise XdetError(f"strategy {spec!r}: percentage {pct} must be in (0, 100]")
    return pct


def _pool(langs: Sequence[str] | None, spec: str) -> tuple[str, ...]:
    if langs is None:
        return LANGUAGES
    chosen = tuple(dict.fromkeys(langs))  # keep order, drop repeats
    if not chosen:
        raise XdetError(f"strategy {spec!r}: the language list is empty")
    for lang in chosen:
        _lang(lang, spec)
    return chosen


def parse_strategy(spec: str, langs: Sequence[str] | None = None) -> Strategy:
    """Parse a strategy name; ``langs`` is the pool of p-ft / m-ft / dpo (default: all nine languages)."""
    parts = spec.strip().split(":")
    kind, args = parts[0], parts[1:]
    if kind not in KINDS:
        raise XdetError(f"unknown strategy {spec!r}; expected one of {USAGE}")
    arity = {"zs": (0,), "x-ft": (1,), "p-ft": (1, 2), "m-ft": (0,), "dpo": (0, 1)}[kind]
    if len(args) not in arity:
        raise XdetError(f"malformed strategy {spec!r}; expected one of {USAGE}")
    if kind == "zs":
        return Strategy("zs")
    if kind == "x-ft":
        return Strategy("x-ft", (_lang(args[0], spec),), single_language=True)
    if kind == "p-ft":
        pct = _pct(args[0], spec)
        if len(args) == 2:
            return Strategy("p-ft", (_lang(args[1], spec),), pct, single_language=True)
        return Strategy("p-ft", _pool(langs, spec), pct)
    if kind == "m-ft":
        return Strategy("m-ft", _pool(langs, spec))
    if args:
        return Strategy("dpo", (_lang(args[0], spec),), single_language=True)
    return Strategy("dpo", _pool(langs, spec))


def pct_indices(pct: int, seed: int) -> dict[str, list[int]]:
    """Train-row indices of every language's ``pct`` % subset (sorted), drawn as the released code does."""
    n = int(TRAIN_ROWS * pct / 100)
    if n < 1:
        raise XdetError(f"p-ft:{pct} selects no sentence out of {TRAIN_ROWS}")
    rng = np.random.RandomState(seed)
    return {
        lang: sorted(int(i) for i in rng.choice(list(range(TRAIN_ROWS)), size=n, replace=False))
        for lang in RELEASED_DRAW_ORDER
    }


def training_set(
    strategy: Strategy | str,
    *,
    seed: int = 0,
    langs: Sequence[str] | None = None,
    data_dir: str | Path | None = None,
) -> TrainingSet:
    """The training pairs of ``strategy`` (train split only; never a test row), deterministic for ``seed``.

    Pairs come language by language in the strategy's language order, each language in row order;
    the trainer shuffles them with its own seed.
    """
    if isinstance(strategy, str):
        strategy = parse_strategy(strategy, langs)
    if not strategy.trains:
        raise XdetError("strategy 'zs' trains nothing: evaluate the base model instead")
    for lang in strategy.langs:
        check_language(lang)
    picks = pct_indices(strategy.pct, seed) if strategy.kind == "p-ft" else None
    pairs: list[Pair] = []
    for lang in strategy.langs:
        rows = load_pairs(lang, "train", data_dir=data_dir)
        if picks is not None:
            rows = [rows[i] for i in picks[lang]]
        pairs.extend(rows)
    return TrainingSet(strategy, tuple(pairs), content_hash(pairs))
