"""What the analysis reads: Δ matrices, language metadata and language distance matrices.

Everything is plain numpy so the statistics stay independent of how a table was produced (the paper's
transcription, our own eval runs, a user's CSV); adapters build :class:`DeltaMatrix` objects.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from xdet.tables.measures import MEASURES
from xdet_tasks.io import csv_number
from xdet_tasks.languages import RECORDS

_CODE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$")
_INDO_EUROPEAN = "indo-european"


def _as_float_array(value: object, shape: tuple[int, ...], what: str) -> np.ndarray:
    arr = np.array(value, dtype=float)  # a copy, so a caller mutating its array cannot change ours
    if arr.shape != shape:
        raise ValueError(f"{what}: shape {arr.shape}, expected {shape}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class AmountRow:
    """One data-amount row (P-FT 10/20/30 %, M-FT = 100 %): Δ per evaluation column."""

    label: str
    fraction: float
    delta: np.ndarray  # (cols,), NaN = missing
    replicates: np.ndarray | None = None  # (B, cols) paired bootstrap replicates of delta


@dataclass(frozen=True, eq=False)
class DeltaMatrix:
    """One table: Δ = ZS − FT for X-FT training languages (rows) × evaluation languages (cols).

    A positive toxicity Δ means less toxic after fine-tuning, a positive perplexity Δ a lower
    perplexity: larger is better for both, which is why every hypothesis can share one direction.
    ``replicates`` (B, rows, cols) are paired bootstrap replicates (the same prompt resample for every
    cell of a column), used for sample-level intervals when per-prompt data exist.
    """

    table: str
    model: str
    metric: str
    measure: str
    split: str
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    delta: np.ndarray
    replicates: np.ndarray | None = None
    amounts: tuple[AmountRow, ...] = field(default_factory=tuple)
    #: toxicity: the scorer (``backend@version``) of each column, where the source names it
    scorers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"{self.table} ({self.model}, {self.metric}, {self.split})"
        if self.measure not in MEASURES:
            raise ValueError(f"{where}: measure {self.measure!r} is not one of {MEASURES}")
        for name, langs in (("rows", self.rows), ("cols", self.cols)):
            if len(set(langs)) != len(langs):
                raise ValueError(f"{where}: duplicate language in {name}: {list(langs)}")
        object.__setattr__(self, "rows", tuple(self.rows))
        object.__setattr__(self, "cols", tuple(self.cols))
        shape = (len(self.rows), len(self.cols))
        object.__setattr__(self, "delta", _as_float_array(self.delta, shape, f"{where}: delta"))
        if self.replicates is not None:
            reps = np.array(self.replicates, dtype=float)
            if reps.ndim != 3 or reps.shape[1:] != shape or reps.shape[0] < 2:
                raise ValueError(
                    f"{where}: replicates shape {reps.shape}, expected (B>=2, {shape[0]}, {shape[1]})"
                )
            object.__setattr__(self, "replicates", _as_float_array(reps, reps.shape, f"{where}: replicates"))
        amounts = []
        for row in self.amounts:
            if not (math.isfinite(row.fraction) and row.fraction > 0):
                raise ValueError(f"{where}: amount row {row.label!r}: fraction {row.fraction!r} must be > 0")
            d = _as_float_array(row.delta, (len(self.cols),), f"{where}: amount row {row.label!r} delta")
            r = None
            if row.replicates is not None:
                r = np.array(row.replicates, dtype=float)
                if r.ndim != 2 or r.shape[1] != len(self.cols) or r.shape[0] < 2:
                    raise ValueError(
                        f"{where}: amount row {row.label!r}: replicates shape {r.shape}, "
                        f"expected (B>=2, {len(self.cols)})"
                    )
                r = _as_float_array(r, r.shape, f"{where}: amount row {row.label!r} replicates")
            amounts.append(AmountRow(row.label, float(row.fraction), d, r))
        object.__setattr__(self, "amounts", tuple(amounts))

    @property
    def languages(self) -> tuple[str, ...]:
        """Union of row and column languages, rows first: the set every label permutation acts on."""
        return self.rows + tuple(c for c in self.cols if c not in self.rows)

    @property
    def key(self) -> str:
        return f"{self.table}|{self.model}|{self.metric}|{self.split}"


# ---------------------------------------------------------------------------------------------
# Language metadata
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LanguageInfo:
    script: str
    indo_european: bool
    family: str = ""


def default_language_map() -> dict[str, LanguageInfo]:
    """The benchmark's own records (``xdet_tasks.languages``): ISO 15924 script, Glottolog family."""
    return {r.code: LanguageInfo(r.script, r.indo_european, r.family) for r in RECORDS}


def _info(path: Path, where: str, code: str, script: str, family: str) -> tuple[str, LanguageInfo]:
    for name, value in (("code", code), ("script", script), ("family", family)):
        if not value.strip():
            raise ValueError(f"{path}:{where}: field {name!r}: {value!r} is empty")
    if not _CODE.match(code.strip()):
        raise ValueError(
            f"{path}:{where}: field 'code': {code!r} is not a language code (e.g. 'de', 'zh-Hant')"
        )
    family = family.strip()
    return code.strip(), LanguageInfo(script.strip(), family.lower() == _INDO_EUROPEAN, family)


def _text(path: Path) -> io.StringIO:
    """A file's text for the csv and YAML readers; a binary file (e.g. a PNG given for a CSV) is named."""
    try:
        return io.StringIO(path.read_text(encoding="utf-8"), newline="")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a UTF-8 text file (byte {err.start}: {err.reason})") from None


def _csv_records(path: Path) -> Iterator[tuple[str, str, str, str]]:
    with _text(path) as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in ("code", "script", "family") if c not in header]
        if missing:
            raise ValueError(
                f"{path}:line 1: header {header} lacks column(s) {missing} (need code, script, family)"
            )
        reader.fieldnames = header
        for rec in reader:
            line = f"line {reader.line_num}"
            if None in rec or any(rec[c] is None for c in ("code", "script", "family")):
                raise ValueError(f"{path}:{line}: wrong number of fields: {list(rec.values())}")
            yield line, rec["code"], rec["script"], rec["family"]


def _scalar(node: yaml.Node, path: Path, field_name: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise ValueError(
            f"{path}:line {node.start_mark.line + 1}: field {field_name!r}: expected a plain value"
        )
    return "" if node.tag.endswith(":null") else str(node.value)


def _mapping(node: yaml.Node, path: Path) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        raise ValueError(f"{path}:line {node.start_mark.line + 1}: expected a mapping with script and family")
    out = {}
    for k, v in node.value:
        out[_scalar(k, path, "key")] = v
    return out


def _yaml_records(path: Path) -> Iterator[tuple[str, str, str, str]]:
    """Two shapes: a list of ``{code, script, family}`` or a mapping ``code: {script, family}``.

    Parsed as a node tree (not ``safe_load``) so that errors can cite the line of the bad value.
    """
    try:
        root = yaml.compose(_text(path).getvalue(), Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from None
    if root is None:
        return
    if isinstance(root, yaml.SequenceNode):
        entries = [(None, item) for item in root.value]
    elif isinstance(root, yaml.MappingNode):
        entries = [(k, v) for k, v in root.value]
    else:
        raise ValueError(
            f"{path}:line 1: expected a list of languages or a mapping code -> {{script, family}}"
        )
    for key, item in entries:
        fields = _mapping(item, path)
        line = f"line {item.start_mark.line + 1}"
        code = _scalar(key, path, "code") if key is not None else ""
        if key is None:
            if "code" not in fields:
                raise ValueError(f"{path}:{line}: field 'code' is missing")
            code = _scalar(fields["code"], path, "code")
        for name in ("script", "family"):
            if name not in fields:
                raise ValueError(f"{path}:{line}: field {name!r} is missing (language {code!r})")
        unknown = sorted(set(fields) - {"code", "script", "family", "name"})
        if unknown:
            raise ValueError(f"{path}:{line}: unknown field(s) {unknown} (language {code!r})")
        yield line, code, _scalar(fields["script"], path, "script"), _scalar(fields["family"], path, "family")


def load_language_map(path: str | Path | None = None) -> dict[str, LanguageInfo]:
    """Defaults from ``xdet_tasks.languages``, overridden/extended by a YAML or CSV file.

    A user file lets someone test the hypotheses under another script or family assignment (e.g.
    counting Hindi's Devanagari with another Brahmic script) without touching the benchmark records.
    """
    languages = default_language_map()
    if path is None:
        return languages
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: language file not found")
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        records = _yaml_records(path)
    elif suffix == ".csv":
        records = _csv_records(path)
    else:
        raise ValueError(f"{path}: language file must be .yaml, .yml or .csv, not {suffix or 'no suffix'!r}")
    seen: dict[str, str] = {}
    for where, code, script, family in records:
        code, info = _info(path, where, code, script, family)
        if code in seen:
            raise ValueError(f"{path}:{where}: field 'code': {code!r} already given at {seen[code]}")
        seen[code] = where
        languages[code] = info
    return languages


# ---------------------------------------------------------------------------------------------
# Language distances (``xdet represent`` writes them as CSV)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Distances:
    """Square language × language distance matrix (any dissimilarity; need not be symmetric)."""

    langs: tuple[str, ...]
    matrix: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.langs)
        if len(set(self.langs)) != n:
            raise ValueError(f"distance matrix: duplicate language in {list(self.langs)}")
        object.__setattr__(self, "langs", tuple(self.langs))
        object.__setattr__(self, "matrix", _as_float_array(self.matrix, (n, n), "distance matrix"))
        if not np.isfinite(self.matrix).all():
            raise ValueError("distance matrix: every entry must be a finite number")

    def index(self, lang: str) -> int:
        return self.langs.index(lang)


def read_distances(path: str | Path) -> Distances:
    """Read ``lang,<codes...>`` + one row per language (rows in any order, every header code once)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: distance file not found")
    with _text(path) as fh:
        records = [r for r in csv.reader(fh)]
    if not records or not records[0] or records[0][0].strip() != "lang":
        raise ValueError(f"{path}:line 1: header must start with 'lang' followed by the language codes")
    langs = [c.strip() for c in records[0][1:]]
    if not langs or len(set(langs)) != len(langs) or not all(langs):
        raise ValueError(f"{path}:line 1: header codes must be non-empty and unique, got {langs}")
    matrix = np.full((len(langs), len(langs)), np.nan)
    seen: set[str] = set()
    for line, rec in enumerate(records[1:], start=2):
        if not rec or not any(c.strip() for c in rec):
            continue
        lang = rec[0].strip()
        if lang not in langs:
            raise ValueError(f"{path}:line {line}: field 'lang': {lang!r} is not in the header {langs}")
        if lang in seen:
            raise ValueError(f"{path}:line {line}: field 'lang': {lang!r} appears twice")
        if len(rec) != len(langs) + 1:
            raise ValueError(f"{path}:line {line}: {len(rec)} fields, expected {len(langs) + 1}")
        seen.add(lang)
        for col, text in zip(langs, rec[1:], strict=True):
            matrix[langs.index(lang), langs.index(col)] = csv_number(text, f"{path}:line {line}: field {col!r}")
    missing = [c for c in langs if c not in seen]
    if missing:
        raise ValueError(f"{path}: no row for language(s) {missing}")
    return Distances(tuple(langs), matrix)
