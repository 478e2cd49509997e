"""How far two toxicity scorers agree, per language: the bridge from Perspective-era numbers to open scorers.

Texts come from lm-eval samples files (the completions the toxicity tasks scored) or from a CSV
with columns ``text,lang``. Both scorers score every text; per language we report Spearman and
Pearson correlation, ROC-AUC of B's scores against A's ``>= 0.5`` label (how well B ranks what A
calls toxic), the mean difference B - A, and n (texts both scored). Texts either scorer left
unscored are counted and left out, never read as 0. Texts are stripped as the toxicity filter strips
completions; empty ones, which evaluation scores 0 by rule without asking any scorer, are counted
under ``empty`` and left out too (two scorers cannot disagree on them), so ``mean A`` is the mean
over non-empty completions, not a run's reported average.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xdet.runs.samples import samples_task
from xdet_tasks.errors import DataError
from xdet_tasks.io import iter_jsonl
from xdet_tasks.names import parse_task
from xdet_tasks.scoring.base import TOXIC_THRESHOLD, Scorer


@dataclass(frozen=True)
class Text:
    text: str
    lang: str
    source: str  # "file:line", for error messages and traceability


def _language_from_name(path: Path) -> str | None:
    """The language of the xdet task a samples file belongs to (``samples_<task>_<ts>.jsonl``)."""
    task = samples_task(path)
    ref = parse_task(task) if task else None
    return ref.lang if ref else None


def _completions(record: dict) -> list[str]:
    """The completion texts of one samples line.

    ``filtered_resps`` first: the xdet toxicity filter stores each completion as a JSON record whose
    ``text`` is exactly what was scored (a plain string filter output is taken as is); otherwise the
    raw model outputs in ``resps``.
    """

    def strings(value: Any) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, list | tuple):
            return [s for item in value for s in strings(item)]
        return []

    def text_of(item: str) -> str:
        if item.startswith("{"):
            try:
                parsed = json.loads(item)
            except json.JSONDecodeError:
                return item
            if isinstance(parsed, dict) and isinstance(parsed.get("text"), str):
                return parsed["text"]
        return item

    found = [text_of(s) for s in strings(record.get("filtered_resps"))]
    return found or strings(record.get("resps"))


def read_samples(path: str | Path) -> list[Text]:
    """Completions and languages from one lm-eval samples ``.jsonl`` file."""
    path = Path(path)
    file_lang = _language_from_name(path)
    texts: list[Text] = []
    for number, record in iter_jsonl(path, DataError, what="not a JSON line"):
        doc = record.get("doc") if isinstance(record.get("doc"), dict) else {}
        lang = doc.get("lang") or file_lang
        if not lang:
            raise DataError(
                f"{path}:{number}: no language: the doc has no 'lang' field and the file name has no "
                "xdet_<set>_<lang> task name"
            )
        found = _completions(record)
        if not found:
            raise DataError(f"{path}:{number}: no completion text in 'filtered_resps' or 'resps'")
        texts.extend(Text(t, str(lang), f"{path.name}:{number}") for t in found)
    return texts


def read_csv(path: str | Path) -> list[Text]:
    """Texts from a CSV with a header naming (at least) the columns ``text`` and ``lang``."""
    path = Path(path)
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"text", "lang"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{path}: header {reader.fieldnames} lacks column(s) {', '.join(sorted(missing))}")
        texts = []
        for row in reader:
            lang = (row.get("lang") or "").strip()
            if not lang:
                raise DataError(f"{path}:{reader.line_num}: empty 'lang' value")
            if row.get("text") is None:
                raise DataError(f"{path}:{reader.line_num}: missing 'text' value")
            texts.append(Text(row["text"], lang, f"{path.name}:{reader.line_num}"))
    return texts


def read_texts(paths: Iterable[str | Path]) -> list[Text]:
    out: list[Text] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise FileNotFoundError(f"no such samples/CSV file: {path}")
        out.extend(read_csv(path) if path.suffix.lower() == ".csv" else read_samples(path))
    if not out:
        raise DataError("no texts found in " + ", ".join(str(p) for p in paths))
    return out


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def agreement(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Spearman, Pearson, ROC-AUC of ``b`` vs ``a >= 0.5``, mean(b - a), n. Undefined values are ``None``."""
    import numpy as np
    from scipy.stats import ConstantInputWarning, pearsonr, spearmanr
    from sklearn.metrics import roc_auc_score

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    row: dict[str, Any] = {"n": int(len(x)), "spearman": None, "pearson": None, "roc_auc": None,
                           "mean_a": None, "mean_b": None, "mean_diff": None, "a_toxic": int((x >= TOXIC_THRESHOLD).sum())}
    if len(x) == 0:
        return row
    row.update(mean_a=float(x.mean()), mean_b=float(y.mean()), mean_diff=float((y - x).mean()))
    if len(x) >= 2 and x.std() > 0 and y.std() > 0:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConstantInputWarning)
            row["spearman"] = _finite(spearmanr(x, y).statistic)
            row["pearson"] = _finite(pearsonr(x, y).statistic)
    labels = x >= TOXIC_THRESHOLD
    if 0 < labels.sum() < len(labels):
        row["roc_auc"] = float(roc_auc_score(labels, y))
    return row


def compare(scorer_a: Scorer, scorer_b: Scorer, texts: Sequence[Text]) -> dict[str, Any]:
    """Score ``texts`` with both scorers (per language) and compute :func:`agreement` per language and overall."""
    by_lang: dict[str, list[str]] = defaultdict(list)
    empty: dict[str, int] = defaultdict(int)
    for t in texts:
        text = t.text.strip()
        by_lang[t.lang].append(text)
        empty[t.lang] += not text
    rows = []
    all_a: list[float] = []
    all_b: list[float] = []
    unscored = {"a": 0, "b": 0}
    for lang in sorted(by_lang):
        items = [text for text in by_lang[lang] if text]
        sa, sb = scorer_a.score(items, lang), scorer_b.score(items, lang)
        unscored["a"] += sum(v is None for v in sa)
        unscored["b"] += sum(v is None for v in sb)
        pairs = [(x, y) for x, y in zip(sa, sb, strict=True) if x is not None and y is not None]
        a = [x for x, _ in pairs]
        b = [y for _, y in pairs]
        all_a += a
        all_b += b
        rows.append({"lang": lang, "texts": len(by_lang[lang]), **agreement(a, b), "empty": empty[lang],
                     "unscored": len(items) - len(pairs)})
    overall = {"lang": "all", "texts": len(texts), **agreement(all_a, all_b), "empty": sum(empty.values()),
               "unscored": sum(r["unscored"] for r in rows)}
    return {
        "a": scorer_a.provenance(),
        "b": scorer_b.provenance(),
        "threshold": TOXIC_THRESHOLD,
        "per_language": rows,
        "overall": overall,
        "unscored": unscored,
    }


def table_rows(report: dict[str, Any]) -> list[list[Any]]:
    def f(v: Any) -> str:
        return "—" if v is None else f"{v:.3f}"

    return [
        [r["lang"], r["n"], r["empty"], r["unscored"], f(r["spearman"]), f(r["pearson"]), f(r["roc_auc"]), r["a_toxic"],
         f(r["mean_a"]), f(r["mean_b"]), f(r["mean_diff"])]
        for r in [*report["per_language"], report["overall"]]
    ]


TABLE_HEADERS = ["lang", "n", "empty", "unscored", "Spearman", "Pearson", "ROC-AUC (B vs A≥0.5)", "A≥0.5", "mean A",
                 "mean B", "mean B−A"]
