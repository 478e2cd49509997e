"""Representation analysis, end to end: embed (base, then base + adapter), analyse, write the folder.

Output folder (every file written atomically, ``summary.json`` last)::

    <out>/base/distance_{toxic,neutral,all}.csv|png, silhouette.csv|png
    <out>/adapter/...                      # only with --peft, same files
    <out>/diff/distance_{toxic,neutral,all}_diff.csv|png, silhouette_diff.csv   # adapter - base
    <out>/summary.json                     # schema xdet-represent/1
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from xdet.figures import png_bytes
from xdet.represent.compute import GROUPS, METRICS, Analysis, analyze
from xdet.represent.embed import (
    POOLINGS,
    apply_adapter,
    embed_languages,
    load_model,
    load_sentences,
    pair_splits,
)
from xdet_tasks.errors import XdetError
from xdet_tasks.io import atomic_write_bytes, atomic_write_json
from xdet_tasks.suites.paradetox import describe_source
from xdet_tasks.suites.records import LANGUAGES, check_language
from xdet_train.manifest import MANIFEST_NAME, check_adapter_base
from xdet_train.model import load_model_config

SCHEMA = "xdet-represent/1"


def matrix_csv(matrix: np.ndarray, langs: Sequence[str]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["lang", *langs])
    for lang, row in zip(langs, matrix, strict=True):
        writer.writerow([lang, *(f"{v:.6f}" for v in row)])
    return buf.getvalue().encode("utf-8")


def _silhouette_rows(a: Analysis) -> list[list[Any]]:
    rows = [["overall", *(a.silhouette[g] for g in GROUPS), a.toxic_vs_neutral["overall"]]]
    for lang in a.langs:
        rows.append([lang, *(a.silhouette_per_lang[g][lang] for g in GROUPS), a.toxic_vs_neutral[lang]])
    return rows


SILHOUETTE_HEADER = ["lang", "language_toxic", "language_neutral", "language_all", "toxic_vs_neutral"]


def _silhouette_csv(rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(SILHOUETTE_HEADER)
    for row in rows:
        writer.writerow([row[0], *(f"{v:.6f}" for v in row[1:])])
    return buf.getvalue().encode("utf-8")


def _heatmap(matrix: np.ndarray, langs: Sequence[str], title: str, diverging: bool = False) -> bytes:
    """An annotated language x language heatmap, in the style of the paper's Figs. 7-8."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(langs)
    fig, ax = plt.subplots(figsize=(1.0 + 0.62 * n, 0.6 + 0.55 * n))
    if diverging:
        bound = float(np.abs(matrix).max()) or 1.0
        image = ax.imshow(matrix, cmap="RdBu_r", vmin=-bound, vmax=bound)
    else:
        lo, hi = float(matrix.min()), float(matrix.max())
        image = ax.imshow(matrix, cmap="viridis", vmin=lo, vmax=hi if hi > lo else lo + 1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), labels=langs)
    ax.set_yticks(range(n), labels=langs)
    ax.set_title(title, fontsize=9)
    for i in range(n):
        for j in range(n):
            r, g, b, _ = image.cmap(image.norm(matrix[i, j]))
            colour = "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7, color=colour)
    return png_bytes(fig, dpi=120, bbox_inches="tight")


def _silhouette_chart(a: Analysis, title: str) -> bytes:
    """Per-language silhouette bars (like the paper's Fig. 9) and toxic-vs-neutral per language."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(a.langs)
    x = np.arange(n)
    fig, (left, right) = plt.subplots(1, 2, figsize=(4 + 0.9 * n, 3.6), sharey=True)
    width = 0.27
    for k, group in enumerate(GROUPS):
        values = [a.silhouette_per_lang[group][lang] for lang in a.langs]
        left.bar(x + (k - 1) * width, values, width, label=f"{group} ({a.silhouette[group]:+.3f})")
    left.set_title("clustering by language (overall in legend)", fontsize=9)
    left.legend(fontsize=7)
    right.bar(x, [a.toxic_vs_neutral[lang] for lang in a.langs], 0.6, color="tab:red")
    right.set_title(f"toxic vs neutral within language (pooled {a.toxic_vs_neutral['overall']:+.3f})", fontsize=9)
    for ax in (left, right):
        ax.set_xticks(x, labels=a.langs)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_ylim(-1, 1)
    left.set_ylabel(f"silhouette ({a.metric})")
    fig.suptitle(title, fontsize=10)
    return png_bytes(fig, dpi=120, bbox_inches="tight")


def _analysis_files(a: Analysis, prefix: str, label: str) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for group in GROUPS:
        stem = f"{prefix}/distance_{group}"
        files[f"{stem}.csv"] = matrix_csv(a.distances[group], a.langs)
        files[f"{stem}.png"] = _heatmap(
            a.distances[group], a.langs, f"{label}: {a.metric} distance between language centroids ({group})"
        )
    files[f"{prefix}/silhouette.csv"] = _silhouette_csv(_silhouette_rows(a))
    files[f"{prefix}/silhouette.png"] = _silhouette_chart(a, f"{label}: silhouette scores")
    return files


def _diff_files(before: Analysis, after: Analysis, label: str) -> tuple[dict[str, bytes], dict[str, Any]]:
    files: dict[str, bytes] = {}
    summary: dict[str, Any] = {"distances": {}}
    for group in GROUPS:
        diff = after.distances[group] - before.distances[group]
        summary["distances"][group] = diff.round(6).tolist()
        files[f"diff/distance_{group}_diff.csv"] = matrix_csv(diff, before.langs)
        files[f"diff/distance_{group}_diff.png"] = _heatmap(
            diff, before.langs, f"{label}: change in {before.metric} distance, after - before ({group})",
            diverging=True,
        )
    rows = [
        [b[0], *(y - x for x, y in zip(b[1:], a[1:], strict=True))]
        for b, a in zip(_silhouette_rows(before), _silhouette_rows(after), strict=True)
    ]
    files["diff/silhouette_diff.csv"] = _silhouette_csv(rows)
    summary["silhouette"] = {row[0]: dict(zip(SILHOUETTE_HEADER[1:], (round(v, 6) for v in row[1:]), strict=True)) for row in rows}
    return files, summary


# ---------------------------------------------------------------------------------------------
# API and CLI
# ---------------------------------------------------------------------------------------------


def _adapter_manifest(peft: str | Path, model: str | Path) -> dict[str, Any] | None:
    """An ``xdet train`` adapter's manifest, checked against ``model``; ``None`` for plain PEFT adapters."""
    if (Path(peft).expanduser() / MANIFEST_NAME).is_file():
        return check_adapter_base(peft, model)
    return None


def represent(
    model: str | Path,
    peft: str | Path | None = None,
    langs: Sequence[str] = LANGUAGES,
    split: str = "train",
    out_dir: str | Path = "represent",
    layer: int = -1,
    pooling: str = "mean",
    metric: str = "cosine",
    batch_size: int = 16,
    data_dir: str | Path | None = None,
    *,
    limit: int | None = None,
    max_length: int = 128,
    device: str | None = None,
    dtype: str = "auto",
) -> dict[str, Any]:
    """Run the analysis (base model, and base + adapter when ``peft`` is given); write and return the summary."""
    langs = list(dict.fromkeys(langs))
    for lang in langs:
        check_language(lang)
    if len(langs) < 2:
        raise XdetError(f"representation analysis compares languages: need at least 2, got {langs}")
    if pooling not in POOLINGS:
        raise XdetError(f"unknown pooling {pooling!r}; expected one of {', '.join(POOLINGS)}")
    if metric not in METRICS:
        raise XdetError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    if limit is not None and limit < 2:
        raise XdetError(f"--limit must be >= 2 (silhouettes need two sentences per cluster), got {limit}")
    pair_splits(split)
    config = load_model_config(str(model))  # a wrong path or an unreachable hub fails here
    manifest = _adapter_manifest(peft, model) if peft is not None else None
    sentences = load_sentences(langs, split, limit=limit, data_dir=data_dir)
    embed_kwargs = {"layer": layer, "pooling": pooling, "batch_size": batch_size, "max_length": max_length}

    loaded = load_model(model, config=config, device=device, dtype=dtype)
    model_label = Path(str(model)).name or str(model)
    runs: dict[str, Analysis] = {}
    toxic, neutral = embed_languages(loaded, sentences, desc="base model", **embed_kwargs)
    runs["base"] = analyze(toxic, neutral, metric)
    files = _analysis_files(runs["base"], "base", model_label)
    diff_summary = None
    if peft is not None:
        apply_adapter(loaded, peft)
        adapter_label = f"{model_label} + {Path(str(peft)).name or peft}"
        toxic, neutral = embed_languages(loaded, sentences, desc="with adapter", **embed_kwargs)
        runs["adapter"] = analyze(toxic, neutral, metric)
        files.update(_analysis_files(runs["adapter"], "adapter", adapter_label))
        diff_files, diff_summary = _diff_files(runs["base"], runs["adapter"], adapter_label)
        files.update(diff_files)

    summary: dict[str, Any] = {
        "schema": SCHEMA,
        "model": str(model),
        "peft": str(peft) if peft is not None else None,
        "langs": langs,
        "split": split,
        "pair_splits": list(pair_splits(split)),
        "limit": limit,
        "layer": layer,
        "pooling": pooling,
        "metric": metric,
        "max_length": max_length,
        "adapter_manifest": manifest,
        "encoder_only": loaded.seq2seq,
        "data": describe_source(data_dir),
        "runs": {name: a.to_json() for name, a in runs.items()},
        "diff": diff_summary,
        "files": sorted(files),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    # Everything is computed before the first write, so a failure leaves no partial output.
    out = Path(out_dir)
    for rel, data in files.items():
        atomic_write_bytes(out / rel, data)
    atomic_write_json(out / "summary.json", summary)
    summary["out_dir"] = str(out)
    return summary
