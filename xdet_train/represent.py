"""Representation analysis (paper §A.4, Figs. 7-9): how fine-tuning moves languages in embedding space.

Each sentence becomes one vector pooled from the model's hidden states (seq2seq models: the
encoder's). Per language we take the centroid of its vectors and compare languages with a
language x language distance matrix (Figs. 7-8), for toxic sentences, neutral sentences and both
together. Silhouette scores (Fig. 9) say how well the sentences cluster by language, overall and
per language (``silhouette_samples`` averaged over one language's sentences), and how well toxic
and neutral sentences separate inside each language.

With an adapter the same analysis runs on the base model and on base + adapter, and the
difference (after - before) shows the shift fine-tuning caused.

Output folder (every file written atomically, ``summary.json`` last)::

    <out>/base/distance_{toxic,neutral,all}.csv|png, silhouette.csv|png
    <out>/adapter/...                      # only with --peft, same files
    <out>/diff/distance_{toxic,neutral,all}_diff.csv|png, silhouette_diff.csv   # adapter - base
    <out>/summary.json                     # schema xdet-represent/1

``split`` picks which pairs are read: ``train`` (300 per language, the paper's toxic-train and
neutral-train sets; the default), ``test`` (100), or ``all`` (both, as in Fig. 9). The paper's set
names are accepted too and pick their pairs (``toxic-train`` -> ``train``): both halves of each
pair are always analysed, so the set's kind does not narrow anything.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from xdet_tasks.data import LANGUAGES, SETS, SPLITS, check_language, describe_source, load_pairs
from xdet_tasks.io import atomic_write_bytes, atomic_write_json
from xdet_train.errors import XdetError

log = logging.getLogger(__name__)

SCHEMA = "xdet-represent/1"
POOLINGS: tuple[str, ...] = ("mean", "last", "first")
METRICS: tuple[str, ...] = ("cosine", "euclidean", "manhattan")
SCIPY_METRICS: dict[str, str] = {"cosine": "cosine", "euclidean": "euclidean", "manhattan": "cityblock"}
#: Sentence groups each analysis covers; ``all`` is toxic and neutral together.
GROUPS: tuple[str, ...] = ("toxic", "neutral", "all")
SPLIT_CHOICES: tuple[str, ...] = (*SPLITS, "all", *SETS)
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")


def pair_splits(split: str) -> tuple[str, ...]:
    """The pair splits (``train``/``test``) a ``--split`` value reads."""
    if split in SPLITS:
        return (split,)
    if split == "all":
        return SPLITS
    if split in SETS:
        return (SETS[split][0],)
    raise XdetError(f"unknown split {split!r}; expected one of {', '.join(SPLIT_CHOICES)}")


# ---------------------------------------------------------------------------------------------
# Pure computation on embeddings
# ---------------------------------------------------------------------------------------------


@dataclass
class Analysis:
    """Distances and silhouettes of one model's sentence embeddings."""

    langs: list[str]
    metric: str
    #: group -> language x language distances between centroids (symmetric, zero diagonal)
    distances: dict[str, np.ndarray]
    #: group -> silhouette score of the clustering by language (all sentences of the group)
    silhouette: dict[str, float]
    #: group -> language -> mean silhouette of that language's sentences
    silhouette_per_lang: dict[str, dict[str, float]]
    #: language -> silhouette of toxic vs neutral within the language; "overall" pools all languages
    toxic_vs_neutral: dict[str, float]
    n_pairs: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "langs": self.langs,
            "metric": self.metric,
            "n_pairs": self.n_pairs,
            "distances": {g: self.distances[g].round(6).tolist() for g in GROUPS},
            "silhouette": {g: round(self.silhouette[g], 6) for g in GROUPS},
            "silhouette_per_lang": {
                g: {lang: round(v, 6) for lang, v in self.silhouette_per_lang[g].items()} for g in GROUPS
            },
            "toxic_vs_neutral": {k: round(v, 6) for k, v in self.toxic_vs_neutral.items()},
        }


def centroid_distances(
    embeddings: np.ndarray, labels: Sequence[str], langs: Sequence[str], metric: str = "cosine"
) -> np.ndarray:
    """Distances between the centroids of each language's embeddings, in ``langs`` order."""
    if metric not in METRICS:
        raise XdetError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    from scipy.spatial.distance import cdist

    labels_arr = np.asarray(labels)
    x = np.asarray(embeddings, dtype=np.float64)
    centroids = []
    for lang in langs:
        rows = x[labels_arr == lang]
        if len(rows) == 0:
            raise XdetError(f"no embeddings for language {lang!r}")
        centroids.append(rows.mean(axis=0))
    # scipy computes each pair directly (sklearn's euclidean shortcut loses ~1e-7 on equal points).
    stacked = np.stack(centroids)
    dist = cdist(stacked, stacked, metric=SCIPY_METRICS[metric])
    # A distance is symmetric and zero to itself; remove floating-point noise in both.
    dist = (dist + dist.T) / 2
    np.fill_diagonal(dist, 0.0)
    return dist


def cluster_silhouette(
    embeddings: np.ndarray, labels: Sequence[str], groups: Sequence[str], metric: str = "cosine"
) -> tuple[float, dict[str, float]]:
    """Silhouette of the clustering given by ``labels``: overall, and averaged per label in ``groups``."""
    from sklearn.metrics import silhouette_samples

    labels_arr = np.asarray(labels)
    x = np.asarray(embeddings, dtype=np.float64)
    n_labels = len(set(labels_arr.tolist()))
    if not 2 <= n_labels <= len(x) - 1:
        raise XdetError(
            f"silhouette needs 2 <= clusters <= samples - 1; got {n_labels} clusters over {len(x)} "
            "sentences (use more languages or a larger --limit)"
        )
    samples = silhouette_samples(x, labels_arr, metric=metric)
    per_group = {g: float(samples[labels_arr == g].mean()) for g in groups}
    return float(samples.mean()), per_group


def analyze(
    toxic: Mapping[str, np.ndarray], neutral: Mapping[str, np.ndarray], metric: str = "cosine"
) -> Analysis:
    """Distance matrices and silhouettes from per-language toxic and neutral embeddings.

    ``toxic[lang]`` and ``neutral[lang]`` are ``(n, d)`` arrays; ``langs`` follow ``toxic``'s order.
    """
    if metric not in METRICS:
        raise XdetError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    langs = list(toxic)
    if len(langs) < 2:
        raise XdetError(f"representation analysis compares languages: need at least 2, got {langs}")
    if list(neutral) != langs:
        raise XdetError(f"toxic languages {langs} differ from neutral languages {list(neutral)}")
    by_group: dict[str, tuple[np.ndarray, list[str]]] = {}
    for group in GROUPS:
        parts, labels = [], []
        for lang in langs:
            arrays = [toxic[lang], neutral[lang]] if group == "all" else [(toxic if group == "toxic" else neutral)[lang]]
            for arr in arrays:
                parts.append(np.asarray(arr, dtype=np.float64))
                labels.extend([lang] * len(arr))
        by_group[group] = (np.concatenate(parts), labels)

    distances, silhouette, per_lang = {}, {}, {}
    for group, (x, labels) in by_group.items():
        distances[group] = centroid_distances(x, labels, langs, metric)
        silhouette[group], per_lang[group] = cluster_silhouette(x, labels, langs, metric)

    tvn: dict[str, float] = {}
    all_x, all_kinds = [], []
    for lang in langs:
        x = np.concatenate([toxic[lang], neutral[lang]]).astype(np.float64)
        kinds = ["toxic"] * len(toxic[lang]) + ["neutral"] * len(neutral[lang])
        tvn[lang] = cluster_silhouette(x, kinds, ["toxic"], metric)[0]
        all_x.append(x)
        all_kinds.extend(kinds)
    tvn["overall"] = cluster_silhouette(np.concatenate(all_x), all_kinds, ["toxic"], metric)[0]
    return Analysis(
        langs=langs, metric=metric, distances=distances, silhouette=silhouette,
        silhouette_per_lang=per_lang, toxic_vs_neutral=tvn,
        n_pairs={lang: len(toxic[lang]) for lang in langs},
    )


# ---------------------------------------------------------------------------------------------
# Embeddings from a model
# ---------------------------------------------------------------------------------------------


@dataclass
class LoadedModel:
    """A transformers model (possibly with an adapter injected) and the module that yields hidden states."""

    hf: Any
    tokenizer: Any
    seq2seq: bool
    device: str

    @property
    def body(self) -> Any:
        # The encoder for seq2seq; the bare transformer (no LM head) for causal models. LoRA layers
        # are injected into these modules in place, so the adapter's effect is included.
        return self.hf.get_encoder() if self.seq2seq else self.hf.base_model


def _pick_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype not in DTYPES:
        raise XdetError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def load_model(model: str | Path, *, device: str | None = None, dtype: str = "auto") -> LoadedModel:
    """Load a hub id or local path with the Auto classes (the LM class, so adapters' key names match)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch_dtype = _pick_dtype(dtype, device)
    try:
        config = AutoConfig.from_pretrained(str(model))
        tokenizer = AutoTokenizer.from_pretrained(str(model))
    except (OSError, ValueError) as err:
        raise XdetError(f"cannot load model {str(model)!r}: {err}") from None
    seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    try:
        hf = auto.from_pretrained(str(model), dtype=torch_dtype)
    except (OSError, ValueError) as err:
        raise XdetError(f"cannot load model {str(model)!r} as {auto.__name__}: {err}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # Right padding keeps every real token at the positions it has unpadded, so a sentence's
    # vector does not depend on what else is in its batch.
    tokenizer.padding_side = "right"
    hf.to(device).eval()
    return LoadedModel(hf=hf, tokenizer=tokenizer, seq2seq=seq2seq, device=device)


def apply_adapter(loaded: LoadedModel, peft: str | Path) -> None:
    """Inject a PEFT adapter into ``loaded`` in place (its ``body`` then includes the adapter)."""
    from peft import PeftModel

    local = Path(peft).expanduser()
    if local.exists() and not (local / "adapter_config.json").is_file():
        raise XdetError(f"{local}: not a PEFT adapter directory (no adapter_config.json)")
    try:
        wrapped = PeftModel.from_pretrained(loaded.hf, str(peft))
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise XdetError(f"cannot load adapter {str(peft)!r}: {err}") from None
    wrapped.eval()


def _pool(hidden: Any, mask: Any, pooling: str) -> Any:
    import torch

    if pooling == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    if pooling == "last":
        idx = (positions * mask).argmax(1)  # last position whose mask is 1
    else:
        idx = mask.argmax(1)  # first position whose mask is 1
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]


def embed(
    loaded: LoadedModel,
    texts: Sequence[str],
    *,
    layer: int = -1,
    pooling: str = "mean",
    batch_size: int = 16,
    max_length: int = 128,
    desc: str = "embedding",
) -> np.ndarray:
    """One vector per text: ``hidden_states[layer]`` (0 = embeddings, -1 = last layer) pooled over tokens."""
    import torch
    from tqdm.auto import tqdm

    if pooling not in POOLINGS:
        raise XdetError(f"unknown pooling {pooling!r}; expected one of {', '.join(POOLINGS)}")
    if batch_size < 1:
        raise XdetError(f"batch size must be >= 1, got {batch_size}")
    # Batch similar lengths together (less padding), then restore the input order.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: np.ndarray | None = None
    body = loaded.body
    with torch.inference_mode():
        for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch"):
            idx = order[start : start + batch_size]
            enc = loaded.tokenizer(
                [texts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                return_tensors="pt",
            ).to(loaded.device)
            states = body(
                input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], output_hidden_states=True
            ).hidden_states
            if not -len(states) <= layer < len(states):
                raise XdetError(
                    f"layer {layer} out of range: this model has {len(states)} hidden states "
                    f"(0 = embeddings .. {len(states) - 1} = last layer; negative counts from the end)"
                )
            vecs = _pool(states[layer], enc["attention_mask"], pooling).float().cpu().numpy()
            if out is None:
                out = np.empty((len(texts), vecs.shape[1]), dtype=np.float32)
            out[idx] = vecs
    if out is None:
        raise XdetError("no sentences to embed")
    return out


def _embed_langs(
    loaded: LoadedModel, sentences: Mapping[str, tuple[list[str], list[str]]], *, desc: str, **kwargs: Any
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Embed every language's toxic and neutral sentences in one batched pass."""
    texts: list[str] = []
    spans: list[tuple[str, str, int, int]] = []
    for lang, (toxic, neutral) in sentences.items():
        for kind, group in (("toxic", toxic), ("neutral", neutral)):
            spans.append((lang, kind, len(texts), len(texts) + len(group)))
            texts.extend(group)
    vectors = embed(loaded, texts, desc=desc, **kwargs)
    result: dict[str, dict[str, np.ndarray]] = {"toxic": {}, "neutral": {}}
    for lang, kind, a, b in spans:
        result[kind][lang] = vectors[a:b]
    return result["toxic"], result["neutral"]


# ---------------------------------------------------------------------------------------------
# Output files
# ---------------------------------------------------------------------------------------------


def _matrix_csv(matrix: np.ndarray, langs: Sequence[str]) -> bytes:
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


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


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
    return _png(fig)


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
    return _png(fig)


def _analysis_files(a: Analysis, prefix: str, label: str) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for group in GROUPS:
        stem = f"{prefix}/distance_{group}"
        files[f"{stem}.csv"] = _matrix_csv(a.distances[group], a.langs)
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
        files[f"diff/distance_{group}_diff.csv"] = _matrix_csv(diff, before.langs)
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
    from xdet_train.train import MANIFEST_NAME, check_adapter_base

    if (Path(peft).expanduser() / MANIFEST_NAME).is_file():
        return check_adapter_base(peft, model)
    return None


def load_sentences(
    langs: Sequence[str], split: str, *, limit: int | None = None, data_dir: str | Path | None = None
) -> dict[str, tuple[list[str], list[str]]]:
    """``lang -> (toxic, neutral)`` sentences of the pairs ``split`` selects, the first ``limit`` per language."""
    splits = pair_splits(split)
    out: dict[str, tuple[list[str], list[str]]] = {}
    for lang in langs:
        pairs = [p for s in splits for p in load_pairs(lang, s, data_dir=data_dir)]
        if limit is not None:
            pairs = pairs[:limit]
        out[lang] = ([p.toxic for p in pairs], [p.neutral for p in pairs])
    return out


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
    manifest = _adapter_manifest(peft, model) if peft is not None else None
    sentences = load_sentences(langs, split, limit=limit, data_dir=data_dir)
    embed_kwargs = {"layer": layer, "pooling": pooling, "batch_size": batch_size, "max_length": max_length}

    loaded = load_model(model, device=device, dtype=dtype)
    model_label = Path(str(model)).name or str(model)
    runs: dict[str, Analysis] = {}
    toxic, neutral = _embed_langs(loaded, sentences, desc="base model", **embed_kwargs)
    runs["base"] = analyze(toxic, neutral, metric)
    files = _analysis_files(runs["base"], "base", model_label)
    diff_summary = None
    if peft is not None:
        apply_adapter(loaded, peft)
        adapter_label = f"{model_label} + {Path(str(peft)).name or peft}"
        toxic, neutral = _embed_langs(loaded, sentences, desc="with adapter", **embed_kwargs)
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


def _parse_langs(values: Sequence[str]) -> list[str]:
    langs = [code.strip() for value in values for code in value.split(",") if code.strip()]
    return langs or list(LANGUAGES)


def _run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    summary = represent(
        args.model, peft=args.peft, langs=_parse_langs(args.langs), split=args.split, out_dir=args.out,
        layer=args.layer, pooling=args.pooling, metric=args.metric, batch_size=args.batch_size,
        data_dir=args.data_dir, limit=args.limit, max_length=args.max_length, device=args.device,
        dtype=args.dtype,
    )
    from tabulate import tabulate

    for name, run in summary["runs"].items():
        langs = run["langs"]
        print(f"[{name}] {summary['metric']} distance between language centroids (toxic + neutral):")
        print(tabulate([[lang, *row] for lang, row in zip(langs, run["distances"]["all"], strict=True)],
                       headers=["", *langs], floatfmt=".3f"))
        sil = run["silhouette"]
        print(f"[{name}] language silhouette: toxic {sil['toxic']:+.3f}  neutral {sil['neutral']:+.3f}  "
              f"all {sil['all']:+.3f}; toxic vs neutral (pooled) {run['toxic_vs_neutral']['overall']:+.3f}")
    print(f"wrote {len(summary['files']) + 1} files to {summary['out_dir']} (summary.json)")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "represent",
        help="language distance matrices and silhouette scores of sentence representations (paper §A.4)",
        description=(
            "Embed each language's toxic and neutral sentences with a model (and optionally an adapter), "
            "then write language x language centroid distance matrices, silhouette scores and plots "
            "(paper Figs. 7-9). With --peft: the base run, the adapter run and their difference."
        ),
    )
    p.add_argument("--model", required=True, help="hub id or local path of the base model")
    p.add_argument("--peft", default=None, help="PEFT adapter directory or hub id (adds after/diff outputs)")
    p.add_argument("--langs", nargs="+", default=[], metavar="LANG",
                   help=f"languages (space or comma separated; default all nine: {' '.join(LANGUAGES)})")
    p.add_argument("--split", default="train", choices=SPLIT_CHOICES,
                   help="which pairs to read: train (default; the paper's toxic-/neutral-train), test, or all; "
                        "a paper set name picks its pairs (toxic-train = train). Both halves are analysed.")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--layer", type=int, default=-1,
                   help="hidden-state index (0 = embeddings, -1 = last layer; default -1)")
    p.add_argument("--pooling", default="mean", choices=POOLINGS, help="token pooling (default mean)")
    p.add_argument("--metric", default="cosine", choices=METRICS, help="distance metric (default cosine)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=128, help="truncate sentences to this many tokens")
    p.add_argument("--limit", type=int, default=None, help="first N pairs per language (for speed)")
    p.add_argument("--data-dir", default=None, help="released split files (default: XDET_DATA_DIR, else the hub)")
    p.add_argument("--device", default=None, help="torch device (default cuda if available, else cpu)")
    p.add_argument("--dtype", default="auto", choices=DTYPES,
                   help="model dtype (auto: bfloat16 on cuda, float32 on cpu)")
    p.set_defaults(func=_run)
