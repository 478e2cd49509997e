"""Representation analysis, the computation (paper §A.4, Figs. 7-9): distances and silhouettes.

Each sentence is one vector (see :mod:`xdet.represent.embed`). Per language we take the centroid of
its vectors and compare languages with a language x language distance matrix (Figs. 7-8), for toxic
sentences, neutral sentences and both together. Silhouette scores (Fig. 9) say how well the
sentences cluster by language, overall and per language (``silhouette_samples`` averaged over one
language's sentences), and how well toxic and neutral sentences separate inside each language.
Pure numpy/scipy/scikit-learn on arrays: no model here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xdet_tasks.errors import XdetError

METRICS: tuple[str, ...] = ("cosine", "euclidean", "manhattan")
SCIPY_METRICS: dict[str, str] = {"cosine": "cosine", "euclidean": "euclidean", "manhattan": "cityblock"}
#: Sentence groups each analysis covers; ``all`` is toxic and neutral together.
GROUPS: tuple[str, ...] = ("toxic", "neutral", "all")


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
