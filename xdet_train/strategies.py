"""Learning strategies as data: one :class:`StrategyRecord` per strategy, read by training, results
validation, tables, analysis and the sweep.

Strategy specs (``parse_strategy``):

* ``zs`` -- zero-shot, no training (the baseline row of every table);
* ``x-ft:<lang>`` -- cross-lingual fine-tuning on the 300 neutral-train sentences of one language;
* ``p-ft:<pct>`` -- a seeded random ``pct`` % of the neutral-train sentences of *each* language, pooled
  into one multilingual set; ``p-ft:<pct>:<lang>`` draws from one language only;
* ``m-ft`` -- every neutral-train sentence of every language, pooled;
* ``dpo`` / ``dpo:<lang>`` -- preference pairs (neutral chosen over toxic), pooled or one language.

Adding a strategy is one record in :data:`STRATEGIES` plus, if none of the existing ones fits, the
function that draws its training pairs.

Two readings of the paper are settled by the authors' released code (``11_finetune_all_percentage.py``):
p-ft pools the per-language percentages into a single multilingual training run (the paper's text
"random subsets of 10%, 20%, and 30% of the neutral-train set per language" is ambiguous), and m-ft
pools all nine languages -- 2,700 sentences; the paper's "300 samples x 7 languages" only adds up
for nine. The language list of p-ft, m-ft and pooled dpo is a parameter (default: all languages).

Sampling follows the released code too: one legacy ``numpy`` ``RandomState(seed)`` draws
``int(300 * pct / 100)`` rows without replacement for each language in the released order
(en es de zh ar hi uk ru am, then any language added since, in :data:`LANGUAGES` order), so a
language's subset does not depend on which other languages are pooled, and ``seed=42`` reproduces
the authors' subsets (the rows are the same ``shuffle(seed=42)`` rows the data module serves).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xdet_tasks.errors import XdetError
from xdet_tasks.suites.paradetox import Pair, content_hash, load_pairs
from xdet_tasks.suites.records import LANGUAGES
from xdet_tasks.suites.sets import split_size

#: The language order in which the released p-ft script draws its per-language subsets.
RELEASED_DRAW_ORDER: tuple[str, ...] = ("en", "es", "de", "zh", "ar", "hi", "uk", "ru", "am")
PAPER_PCTS: tuple[int, ...] = (10, 20, 30)
TRAIN_ROWS = split_size("train")


@dataclass(frozen=True)
class Strategy:
    """A parsed strategy spec: its kind, the languages it trains on and (p-ft only) the percentage."""

    kind: str
    langs: tuple[str, ...] = ()
    pct: int | None = None
    #: True when the spec named one language (``x-ft:de``, ``p-ft:10:de``, ``dpo:de``).
    single_language: bool = False

    @property
    def record(self) -> StrategyRecord:
        return STRATEGIES[self.kind]

    @property
    def trains(self) -> bool:
        return self.record.trainer is not None

    @property
    def name(self) -> str:
        """Canonical spec string (pooled variants do not spell out the language list)."""
        parts = [self.kind]
        for param in self.record.params:
            if param.startswith("pct"):
                parts.append(str(self.pct))
            elif self.single_language:
                parts.append(self.langs[0])
        return ":".join(parts)


@dataclass(frozen=True)
class TrainingSet:
    """The parallel pairs a strategy trains on, in a fixed order, with their content hash."""

    strategy: Strategy
    pairs: tuple[Pair, ...] = field(repr=False)
    data_hash: str = ""

    def __len__(self) -> int:
        return len(self.pairs)

    def per_language(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for p in self.pairs:
            counts[p.lang] = counts.get(p.lang, 0) + 1
        return counts


Drawer = Callable[[Strategy, int, "str | Path | None"], list[Pair]]


def draw_all(strategy: Strategy, seed: int, data_dir: str | Path | None) -> list[Pair]:
    """Every train pair of the strategy's languages, language by language in row order."""
    return [p for lang in strategy.langs for p in load_pairs(lang, "train", data_dir=data_dir)]


def draw_percentage(strategy: Strategy, seed: int, data_dir: str | Path | None) -> list[Pair]:
    """The seeded ``pct`` % subset of each language's train pairs (:func:`pct_indices`)."""
    picks = pct_indices(strategy.pct, seed)
    out: list[Pair] = []
    for lang in strategy.langs:
        rows = load_pairs(lang, "train", data_dir=data_dir)
        out += [rows[i] for i in picks[lang]]
    return out


@dataclass(frozen=True)
class StrategyRecord:
    """Everything the project needs to know about one strategy.

    ``params`` are the spec's ``:``-arguments in order: ``lang`` or ``pct``; a trailing ``?`` marks
    an optional one. A strategy without a ``lang`` argument trains on a language *pool*.
    """

    kind: str
    description: str
    params: tuple[str, ...] = ()
    trainer: str | None = None  # "sft", "dpo", or None (nothing to train)
    default_epochs: float | None = None
    draw: Drawer | None = None
    #: Where its rows go in a table: ``cross-lingual`` (one row per source language, the paper's
    #: layout and bottom AVG), ``data-amount`` (P-FT/M-FT bars, the data-amount analysis) or ``other``.
    table_block: str = "other"
    table_rank: int = 9  # rows of lower rank come first
    #: Row label; ``{langs}`` is the language list, ``{pct}`` the percentage, ``{one}`` " <lang>" for a
    #: single-language spec and "" for a pooled one.
    row_format: str = "{kind}{one}"
    #: Share of all training data it sees, for the data-amount analysis (``None``: not comparable).
    data_fraction: Callable[[Strategy], float | None] = lambda s: None

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(p for p in self.params if not p.endswith("?"))

    @property
    def usage(self) -> str:
        return ":".join([self.kind, *(f"<{p.rstrip('?')}>" for p in self.required)]) + "".join(
            f"[:<{p.rstrip('?')}>]" for p in self.params if p.endswith("?")
        )

    def row_label(self, langs: Sequence[str], pct: int | None) -> str:
        one = f" {langs[0]}" if len(langs) == 1 else ""
        return self.row_format.format(kind=self.kind, langs="+".join(langs), pct=pct, one=one)


STRATEGIES: dict[str, StrategyRecord] = {
    r.kind: r
    for r in (
        StrategyRecord("zs", "zero-shot: the base model, nothing trained", row_format="ZS", table_rank=-1),
        StrategyRecord(
            "x-ft", "the 300 neutral-train sentences of one language", ("lang",), "sft", 10, draw_all,
            "cross-lingual", 0, "{langs}",
        ),
        StrategyRecord(
            "p-ft", "a seeded pct % of each pooled language's neutral-train sentences", ("pct", "lang?"), "sft", 15,
            draw_percentage, "data-amount", 1, "p-ft {pct}%{one}", lambda s: s.pct / 100,
        ),
        StrategyRecord(
            "m-ft", "every neutral-train sentence of the pooled languages", (), "sft", 15, draw_all,
            "data-amount", 2, "m-ft{one}", lambda s: 1.0,
        ),
        StrategyRecord(
            "dpo", "TRL DPO on parallel pairs, chosen = neutral, rejected = toxic", ("lang?",), "dpo", 3, draw_all,
            "other", 3,
        ),
    )
}


def usage() -> str:
    return ", ".join(r.usage for r in STRATEGIES.values())


def _lang(value: str, spec: str) -> str:
    if value not in LANGUAGES:
        raise XdetError(f"strategy {spec!r}: unknown language {value!r}; expected one of {', '.join(LANGUAGES)}")
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
    return tuple(_lang(lang, spec) for lang in chosen)


def parse_strategy(spec: str, langs: Sequence[str] | None = None) -> Strategy:
    """Parse a strategy spec; ``langs`` is the pool of strategies without a language argument."""
    kind, *args = spec.strip().split(":")
    record = STRATEGIES.get(kind)
    if record is None:
        raise XdetError(f"unknown strategy {spec!r}; expected one of {usage()}")
    if not len(record.required) <= len(args) <= len(record.params):
        raise XdetError(f"malformed strategy {spec!r}; expected one of {usage()}")
    pct = None
    chosen: tuple[str, ...] | None = None
    for param, value in zip(record.params, args, strict=False):
        if param.startswith("pct"):
            pct = _pct(value, spec)
        else:
            chosen = (_lang(value, spec),)
    if record.trainer is None:
        return Strategy(kind)
    if chosen is not None:
        return Strategy(kind, chosen, pct, single_language=True)
    return Strategy(kind, _pool(langs, spec), pct)


def draw_order() -> tuple[str, ...]:
    """The released draw order, extended by every other language so a new language can be drawn."""
    return RELEASED_DRAW_ORDER + tuple(lang for lang in LANGUAGES if lang not in RELEASED_DRAW_ORDER)


def pct_indices(pct: int, seed: int) -> dict[str, list[int]]:
    """Train-row indices of every language's ``pct`` % subset (sorted), drawn as the released code does."""
    n = int(TRAIN_ROWS * pct / 100)
    if n < 1:
        raise XdetError(f"p-ft:{pct} selects no sentence out of {TRAIN_ROWS}")
    rng = np.random.RandomState(seed)
    return {
        lang: sorted(int(i) for i in rng.choice(list(range(TRAIN_ROWS)), size=n, replace=False))
        for lang in draw_order()
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
    record = strategy.record
    if record.draw is None:
        raise XdetError(f"strategy {strategy.kind!r} trains nothing: evaluate the base model instead")
    pairs = record.draw(strategy, seed, data_dir)
    return TrainingSet(strategy, tuple(pairs), content_hash(pairs))
