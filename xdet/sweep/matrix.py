"""The sweep's configuration matrix: which (model, strategy) configurations a sweep runs, and shards.

**How our count relates to the paper's "392 configurations".** With the paper's four models, seven
source and seven evaluation languages and P-FT at 10/20/30 %, this matrix has 4 x (1 ZS + 7 X-FT +
3 P-FT + 1 M-FT) = 48 configurations (48 adapters or base models to evaluate, 44 trainings), which
fill 4 x 12 x 7 = 336 (configuration, evaluation language) cells per split and metric. The paper's
own breakdown does not add up to 392 either way: per model it lists 7 ZS + 49 X-FT pairs + 21 P-FT +
7 M-FT = 84 cells (336 for four models), while its Section A.2 counts "81 language pairs" and "27"
P-FT settings (nine languages: 7 + 81 + 27 + 7 = 122 per model, 488 in all); 392 = 4 x 98 matches
neither. ``xdet sweep`` prints its configuration and cell counts so a run can be compared with either
reading; :func:`paper_matrix_size` gives ours for the paper's setting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from xdet.runs.record import model_display_name
from xdet_tasks.errors import XdetError
from xdet_tasks.languages import PAPER_EVAL_LANGUAGES, PAPER_TRAIN_LANGUAGES
from xdet_tasks.suites.records import LANGUAGES, check_language
from xdet_train.manifest import normalize_model_id
from xdet_train.strategies import PAPER_PCTS, STRATEGIES, parse_strategy

#: The paper's four models (Section A.2), for :func:`paper_matrix_size`.
PAPER_MODELS: tuple[str, ...] = (
    "CohereForAI/aya-expanse-8b", "CohereForAI/aya-23-8B", "google/mt5-large", "bigscience/bloom-7b1",
)


@dataclass(frozen=True)
class SweepConfig:
    """One cell of the matrix: a base model under one (canonical) strategy."""

    model: str
    strategy: str

    @property
    def id(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model_display_name(self.model)).strip("-") or "model"
        return f"{slug}__{self.strategy.replace(':', '-')}"

    @property
    def trains(self) -> bool:
        return self.strategy != "zs"


def _expand(kind_spec: str, train_langs: tuple[str, ...], pcts: tuple[int, ...], pool: tuple[str, ...]) -> list[str]:
    """One ``--strategies`` entry -> canonical strategy names.

    A bare kind whose spec needs arguments expands over them (``x-ft`` over ``train_langs``, ``p-ft``
    over ``pcts``), as the strategy record declares them.
    """
    spec = kind_spec.strip()
    record = STRATEGIES.get(spec)
    if record is None or ":" in spec or not record.required:
        return [parse_strategy(spec, pool).name]
    values = {"lang": [str(x) for x in train_langs], "pct": [str(x) for x in pcts]}
    specs = [spec]
    for param in record.required:
        specs = [f"{s}:{v}" for s in specs for v in values[param]]
    return [parse_strategy(s, pool).name for s in specs]


def enumerate_matrix(
    models: list[str] | tuple[str, ...],
    strategies: list[str] | tuple[str, ...],
    train_langs: tuple[str, ...] = PAPER_TRAIN_LANGUAGES,
    pcts: tuple[int, ...] = PAPER_PCTS,
    pool_langs: tuple[str, ...] = LANGUAGES,
) -> list[SweepConfig]:
    """The configurations in a fixed order (model, then strategy as listed); ids must be unique."""
    if not models:
        raise XdetError("--model: at least one model is needed")
    if not strategies:
        raise XdetError("--strategies: the list is empty")
    for lang in train_langs:
        check_language(lang)
    configs: list[SweepConfig] = []
    for model in models:
        names: list[str] = []
        for spec in strategies:
            if spec.split(":")[0] not in STRATEGIES:
                raise XdetError(
                    f"--strategies: unknown strategy {spec!r}; expected {', '.join(STRATEGIES)} (or e.g. x-ft:de)"
                )
            names.extend(n for n in _expand(spec, train_langs, pcts, pool_langs) if n not in names)
        configs.extend(SweepConfig(normalize_model_id(model), name) for name in names)
    seen: dict[str, SweepConfig] = {}
    for cfg in configs:
        if cfg.id in seen and seen[cfg.id] != cfg:
            raise XdetError(
                f"models {seen[cfg.id].model!r} and {cfg.model!r} share the folder name {cfg.id!r}; "
                "give them distinct directory names"
            )
        seen[cfg.id] = cfg
    return list(dict.fromkeys(configs))


def paper_matrix_size() -> dict[str, int]:
    """Our counts for the paper's setting (see the module docstring for the relation to "392")."""
    configs = enumerate_matrix(list(PAPER_MODELS), ["zs", "x-ft", "p-ft", "m-ft"], PAPER_TRAIN_LANGUAGES)
    return {
        "configurations": len(configs),
        "trainings": sum(c.trains for c in configs),
        "cells_per_split": len(configs) * len(PAPER_EVAL_LANGUAGES),
    }


def parse_shard(value: str | None) -> tuple[int, int]:
    """``"i/N"`` -> ``(i, N)`` with ``0 <= i < N``; ``None`` -> ``(0, 1)``."""
    if value is None:
        return 0, 1
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", value)
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise XdetError(f"--shard {value!r}: expected i/N with 0 <= i < N (e.g. 0/4 ... 3/4)")
    return int(m.group(1)), int(m.group(2))


def shard(configs: list[SweepConfig], index: int, count: int) -> list[SweepConfig]:
    """Round-robin over the matrix order: balanced, deterministic, disjoint, and complete over all i."""
    return configs[index::count]
