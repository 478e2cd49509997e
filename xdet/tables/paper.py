"""The paper's printed tables (Breaking mBad!, Tables 1 and 3-25) as data.

The CSVs under the checkout's ``tables/paper/`` are transcribed exactly as printed; they are the one
source. A copy ships inside the distribution (``xdet/tables/paper_data/``) so that an installed xdet
compares with the paper too; ``python -m xdet.tables.paper`` refreshes the copy and a test checks the
two are identical. Each table has the zero-shot row of actual scores (``ZS``), one Δ row per training
language (Δ = ZS − FT), a row-AVG column and a bottom ``AVG`` row of column means over the Δ rows
(its AVG cell is empty in print).
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from xdet.runs.writer import write_run
from xdet_tasks.errors import DataError
from xdet_tasks.io import csv_number
from xdet_tasks.languages import PAPER_EVAL_LANGUAGES, PAPER_TRAIN_LANGUAGES
from xdet_tasks.metrics.aggregation import pairs_per_sample
from xdet_tasks.names import BY_MEASURE, DEFAULT_METRICS, TABLE_MEASURES, task_name

ENV_PAPER_DIR = "XDET_PAPER_TABLES"
#: Header of every transcribed table, as printed (the paper's columns stop at ``ru``).
PAPER_HEADER: tuple[str, ...] = ("row", *PAPER_EVAL_LANGUAGES, "AVG")
PAPER_ROWS: tuple[str, ...] = ("ZS", *PAPER_TRAIN_LANGUAGES, "AVG")
PAPER_MODELS: tuple[str, ...] = ("aya-expanse-8B", "aya-23-8B", "mt5-large", "bloom-7B1")
#: Hub ids the paper's model names stand for (our runs may be labelled with either).
PAPER_MODEL_IDS: dict[str, str] = {
    "aya-expanse-8B": "CohereForAI/aya-expanse-8b",
    "aya-23-8B": "CohereForAI/aya-23-8B",
    "mt5-large": "google/mt5-large",
    "bloom-7B1": "bigscience/bloom-7b1",
}
PACKAGE_DIR = Path(__file__).resolve().with_name("paper_data")
#: The transcription's home in a checkout (absent from an installed wheel).
SOURCE_DIR = Path(__file__).resolve().parents[2] / "tables" / "paper"


def paper_dir() -> Path:
    """Folder of the transcribed tables: ``XDET_PAPER_TABLES`` or the copy shipped in the package."""
    env = os.environ.get(ENV_PAPER_DIR)
    return Path(env) if env else PACKAGE_DIR


@dataclass(frozen=True)
class PaperTable:
    """One printed table; ``delta[(train_lang, eval_lang)]`` is a Δ cell, ZS − FT."""

    number: int
    model: str
    measure: str  # "toxicity" or "perplexity"
    split: str
    strategy: str
    pm_ft_figure: int | None
    columns: tuple[str, ...]
    rows: tuple[str, ...]
    zs: dict[str, float]
    zs_avg: float
    delta: dict[tuple[str, str], float]
    row_avg: dict[str, float]
    col_avg: dict[str, float]
    path: Path = field(compare=False)

    @property
    def title(self) -> str:
        return f"Table {self.number} ({self.model}, {self.measure}, {self.split}, {self.strategy})"

    def cell(self, row: str, col: str) -> float:
        """Any printed cell by its printed labels (``row`` is ``ZS``, a language or ``AVG``)."""
        if row == "ZS":
            return self.zs_avg if col == "AVG" else self.zs[col]
        if row == "AVG":
            return self.col_avg[col]
        return self.row_avg[row] if col == "AVG" else self.delta[(row, col)]


@dataclass(frozen=True)
class IndexEntry:
    number: int
    model: str
    measure: str
    split: str
    strategy: str
    pm_ft_figure: int | None


@lru_cache(maxsize=4)
def _load_index(directory: Path) -> tuple[IndexEntry, ...]:
    path = directory / "index.csv"
    if not path.is_file():
        raise DataError(f"paper table index missing: {path}")
    entries = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        expected = ["table", "model", "measure", "split", "strategy", "pm_ft_figure"]
        if reader.fieldnames != expected:
            raise DataError(f"{path}: header {reader.fieldnames} != {expected}")
        for line, rec in enumerate(reader, start=2):
            if rec["measure"] not in TABLE_MEASURES or rec["split"] not in BY_MEASURE[rec["measure"]].sets:
                raise DataError(f"{path}:{line}: unknown measure/split {rec['measure']!r}/{rec['split']!r}")
            fig = rec["pm_ft_figure"].strip()
            entries.append(
                IndexEntry(
                    number=int(rec["table"]),
                    model=rec["model"],
                    measure=rec["measure"],
                    split=rec["split"],
                    strategy=rec["strategy"],
                    pm_ft_figure=int(fig) if fig else None,
                )
            )
    return tuple(entries)


def paper_index() -> tuple[IndexEntry, ...]:
    """All 24 entries of ``index.csv``: table number -> model, metric, split, strategy."""
    return _load_index(paper_dir())


def table_numbers() -> tuple[int, ...]:
    return tuple(e.number for e in paper_index())


def load_paper_table(number: int) -> PaperTable:
    """Parse ``tableNN.csv``; a malformed file raises :class:`DataError` naming file, line and cell."""
    return _load_table(paper_dir(), number)


@lru_cache(maxsize=64)
def _load_table(directory: Path, number: int) -> PaperTable:
    entry = next((e for e in _load_index(directory) if e.number == number), None)
    if entry is None:
        raise DataError(f"table {number} is not in {directory / 'index.csv'}")
    path = directory / f"table{number:02d}.csv"
    if not path.is_file():
        raise DataError(f"paper table file missing: {path}")
    with path.open(newline="", encoding="utf-8") as fh:
        records = list(csv.reader(fh))
    if not records or tuple(records[0]) != PAPER_HEADER:
        raise DataError(f"{path}:1: header must be {','.join(PAPER_HEADER)}")
    labels = tuple(r[0] if r else "" for r in records[1:])
    if labels != PAPER_ROWS:
        raise DataError(f"{path}: rows {labels} != {PAPER_ROWS}")
    cols = PAPER_EVAL_LANGUAGES
    zs: dict[str, float] = {}
    delta: dict[tuple[str, str], float] = {}
    row_avg: dict[str, float] = {}
    col_avg: dict[str, float] = {}
    zs_avg = math.nan
    for line, rec in enumerate(records[1:], start=2):
        if len(rec) != len(PAPER_HEADER):
            raise DataError(f"{path}:{line}: {len(rec)} cells, expected {len(PAPER_HEADER)}")
        label = rec[0]
        values = {c: csv_number(rec[i + 1], f"{path}:{line}: column {c!r}") for i, c in enumerate(cols)}
        if label == "AVG":
            if rec[-1].strip():
                raise DataError(f"{path}:{line}: the bottom AVG row has no AVG cell in print")
            col_avg = values
            continue
        avg = csv_number(rec[-1], f"{path}:{line}: column 'AVG'")
        if label == "ZS":
            zs, zs_avg = values, avg
        else:
            row_avg[label] = avg
            delta.update({(label, c): v for c, v in values.items()})
    return PaperTable(
        number=number,
        model=entry.model,
        measure=entry.measure,
        split=entry.split,
        strategy=entry.strategy,
        pm_ft_figure=entry.pm_ft_figure,
        columns=cols,
        rows=PAPER_TRAIN_LANGUAGES,
        zs=zs,
        zs_avg=zs_avg,
        delta=delta,
        row_avg=row_avg,
        col_avg=col_avg,
        path=path,
    )


def normalise_model_name(name: str) -> str:
    """``CohereForAI/aya-expanse-8b`` and ``aya-expanse-8B`` compare equal: last path part, lower case."""
    return re.split(r"[/\\]", name.strip().rstrip("/"))[-1].lower()


def paper_model(name: str) -> str | None:
    """The paper's model name that ``name`` (display label, hub id or local path) stands for, if any."""
    key = normalise_model_name(name)
    for model in PAPER_MODELS:
        if key in (normalise_model_name(model), normalise_model_name(PAPER_MODEL_IDS[model])):
            return model
    return None


def find_paper_table(model: str, measure: str, split: str) -> PaperTable | None:
    """The printed X-FT table for a model (any spelling :func:`paper_model` knows), measure and set."""
    paper_name = paper_model(model)
    for entry in paper_index():
        if (entry.model, entry.measure, entry.split) == (paper_name, measure, split):
            return load_paper_table(entry.number)
    return None


def synthetic_samples(value: float, n: int, *, weighted: bool = False, spread: float = 0.1) -> list:
    """``n`` per-sample values whose lm-eval aggregate is exactly ``value`` (up to float rounding).

    Mean metrics get ``value * (1 ± spread)`` in symmetric pairs; weighted perplexities get
    ``[loglikelihood, count]`` pairs with ``exp(-Σll / Σcount) = value``.
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    if weighted:
        if value <= 0:
            raise ValueError(f"a perplexity must be positive, got {value}")
        counts = [3 + (i % 2) * 2 for i in range(n)]  # uneven sentence lengths, still exact
        return [[-math.log(value) * c, float(c)] for c in counts]
    offsets = [(1 if i % 2 == 0 else -1) * spread * (1 + i // 2) for i in range(n - n % 2)]
    offsets += [0.0] * (n % 2)
    return [value * (1 + o) for o in offsets]


def write_paper_results(
    out_dir: str | Path,
    numbers: Iterable[int] | None = None,
    *,
    n_samples: int = 4,
    metrics: dict[str, str] | None = None,
    perturb: dict[tuple[int, str, str], float] | None = None,
) -> list[Path]:
    """Run folders whose numbers are the paper's: one ZS and one X-FT run per language per model.

    The ZS run scores the printed ZS row; the X-FT run of language ``l`` scores ``ZS − Δ`` (so
    regenerating Δ gives the printed table back). ``perturb[(table, row, col)]`` adds to that Δ cell.
    Used by the repro round trip and to show what a complete results folder looks like.
    """
    metrics = DEFAULT_METRICS | dict(metrics or {})
    perturb = dict(perturb or {})
    wanted = set(numbers) if numbers is not None else set(table_numbers())
    tables = [load_paper_table(n) for n in sorted(wanted)]
    runs: dict[tuple[str, str], dict[str, dict[str, list]]] = {}
    for t in tables:
        metric = metrics[t.measure]
        weighted = pairs_per_sample(metric)
        for col in t.columns:
            task = task_name(t.measure, t.split, col)
            runs.setdefault((t.model, "ZS"), {})[task] = {
                metric: synthetic_samples(t.zs[col], n_samples, weighted=weighted)
            }
            for row in t.rows:
                delta = t.delta[(row, col)] + perturb.pop((t.number, row, col), 0.0)
                runs.setdefault((t.model, row), {})[task] = {
                    metric: synthetic_samples(t.zs[col] - delta, n_samples, weighted=weighted)
                }
    if perturb:
        raise ValueError(f"perturbed cells not in the chosen tables: {sorted(perturb)}")
    out = Path(out_dir)
    written = []
    for (model, row), samples in runs.items():
        slug = f"{normalise_model_name(model)}__{'zs' if row == 'ZS' else 'x-ft-' + row}"
        written.append(
            write_run(
                out / slug,
                model=PAPER_MODEL_IDS[model],
                model_name=model,
                strategy="zs" if row == "ZS" else "x-ft",
                train_langs=() if row == "ZS" else (row,),
                samples=samples,
                scorer={"backend": "perspective", "name": "paper-numbers", "note": "the paper's printed values"},
                timestamp="2025-01-01T00-00-00.000000",
            )
        )
    return written


def sync_package_copy(source: Path = SOURCE_DIR, target: Path = PACKAGE_DIR) -> list[Path]:
    """Copy the transcription (``index.csv`` and ``tableNN.csv``) into the package; returns what changed."""
    from xdet_tasks.io import atomic_write_bytes

    changed = []
    for path in sorted(source.glob("*.csv")):
        data = path.read_bytes()
        dest = target / path.name
        if not dest.is_file() or dest.read_bytes() != data:
            changed.append(atomic_write_bytes(dest, data))
    for stale in target.glob("*.csv"):
        if not (source / stale.name).is_file():
            stale.unlink()
            changed.append(stale)
    return changed


if __name__ == "__main__":
    done = sync_package_copy()
    print(f"{len(done)} file(s) updated in {PACKAGE_DIR}" if done else f"{PACKAGE_DIR} is up to date")
