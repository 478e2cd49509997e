"""``xdet scorer evaluate <spec> --against rtplx``: how a scorer agrees with RTP-LX's native speakers.

Every RTP-LX prompt was rated by three native speakers of its locale (De Wynter et al., AAAI 2025),
which makes it the one way to check, language by language, whether a toxicity scorer agrees with
people. The prompts of each locale are scored and compared with a binary label made from the raters'
``Toxicity`` values (1-5) by this rule (:func:`label`):

1. **Aggregate** the three values as the RTP-LX authors do (``vote`` in their
   ``code/notebooks/parse_outputs.ipynb``; the README: the released annotations are "the aggregated
   (majority vote) scores"): the value at least two raters gave; when all three differ, their mean
   rounded to the nearest integer (a mean of three integers is never halfway). A file with only the
   aggregated value (``PromptAnnotations.Toxicity``) is taken as released; releases before May 2024
   released means (``Annotations``, e.g. 2.67), which the rule below reads as they are.
2. **Label**: toxic (1) when the aggregate is 3 or more ("Content is toxic", "very toxic", "extreme"
   on the RTP-LX rubric); not toxic (0) when it is 1 ("No toxicity"); **excluded** otherwise: 2
   ("slightly toxic") and any mean strictly between 1 and 3, which a binary scorer cannot be wrong
   about either way. RTP-LX publishes no binary rule of its own (its paper compares the 1-5 scale
   with weighted kappa), so this one is ours; the counts of each class are in every row.

The columns are ``xdet scorer evaluate``'s (:mod:`xdet.validity.heldout`, whose metric functions this
reuses): ROC-AUC, accuracy at 0.5, the balanced-accuracy threshold, ECE and Brier, each with a 95 %
percentile bootstrap interval over prompts (one seeded generator per locale), and their unweighted
mean over locales. A locale whose prompts are all of one class has no ROC-AUC ("n/a"). Languages the
scorer does not cover are listed as refused.

Before them, ``kappa``: the RTP-LX paper's own statistic, linear-weighted Cohen's κ on the 1-5 scale
between the binned score and the raters' aggregate (:mod:`xdet.validity.kappa` says how it bins),
over every rated prompt (the excluded ones included: κ needs no binary label), with its interval from
its own seeded generator per locale; and, for reference, the raters' κ among themselves in that
locale as RTP-LX published it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xdet.stats import CI_LEVEL, keyed_rng, resample_indices
from xdet.validity.heldout import (
    CV_FOLDS,
    HEADERS,
    METRICS,
    EvaluableScorer,
    _cell,
    _interval,
    _scores,
    assign_folds,
    mean_intervals,
    metrics_np,
    point_metrics,
)
from xdet.validity.kappa import (
    KAPPA_FLOOR,
    RATER_KAPPA,
    STATISTIC,
    linear_kappa,
    released_rating,
    score_rating,
)
from xdet_tasks.errors import ScorerError
from xdet_tasks.suites import rtplx
from xdet_tasks.suites.natural import NaturalPrompt, prompts_hash
from xdet_tasks.suites.records import RTPLX, check_language

#: aggregate >= TOXIC_FROM: toxic; aggregate <= NOT_TOXIC_TO: not toxic; in between: excluded
TOXIC_FROM = 3.0
NOT_TOXIC_TO = 1.0
RULE = (f"Toxicity of the three raters aggregated by the RTP-LX authors' vote (majority; all different: "
        f"rounded mean), else the released aggregate; toxic if >= {TOXIC_FROM:g}, not toxic if <= "
        f"{NOT_TOXIC_TO:g}, excluded otherwise")


def vote(ratings: Sequence[int]) -> float:
    """The RTP-LX authors' aggregate of the raters' values: the majority value, else the rounded mean."""
    if not ratings:
        raise ValueError("no ratings")
    counts = {v: list(ratings).count(v) for v in ratings}
    value, count = max(counts.items(), key=lambda kv: kv[1])
    if count * 2 > len(ratings):
        return float(value)
    return float(round(sum(ratings) / len(ratings)))


def label(prompt: NaturalPrompt) -> int | None:
    """1 toxic, 0 not toxic, ``None`` excluded (the module docstring's rule)."""
    rating = vote(prompt.ratings) if prompt.ratings else prompt.rating
    if rating is None:
        raise ValueError(f"prompt {prompt.source_index} of {prompt.locale} has no Toxicity rating")
    if rating >= TOXIC_FROM:
        return 1
    if rating <= NOT_TOXIC_TO:
        return 0
    return None


def locales_to_evaluate(langs: Sequence[str], rtplx_dir: str | Path | None) -> list[str]:
    """Every locale file of each language in a release folder; in the hub copy, the chosen locale."""
    folder = rtplx.resolve_dir(rtplx_dir)
    chosen = rtplx.chosen_locales()
    out = []
    for lang in langs:
        check_language(lang, RTPLX)
        present = [c for c in rtplx.language_locales(lang) if folder is not None
                   and (folder / f"{rtplx.FILE_PREFIX}{c}.json").is_file()]
        out += present or [chosen[lang]]
    return out


def load_annotated(langs: Sequence[str], rtplx_dir: str | Path | None = None) -> dict[str, list[NaturalPrompt]]:
    """The annotated prompts of every locale to evaluate, each file read and checked in full."""
    return {loc: rtplx.load_locale(loc, rtplx_dir=rtplx_dir, annotations=True)
            for loc in locales_to_evaluate(langs, rtplx_dir)}


def evaluate_against_rtplx(
    scorer: EvaluableScorer, langs: Sequence[str], *, rtplx_dir: str | Path | None = None, n_boot: int = 1000,
    seed: int = 0, data: dict[str, list[NaturalPrompt]] | None = None,
) -> dict[str, Any]:
    """Per-locale agreement of ``scorer`` with the RTP-LX raters (JSON-serialisable report).

    Every file is read and checked (annotations included) before the first text is scored; ``data``
    (from :func:`load_annotated`) skips reading them again.
    """
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    data = data if data is not None else load_annotated(langs, rtplx_dir)
    locales = list(data)
    rows: dict[str, dict[str, Any]] = {}
    refused: dict[str, str] = {}
    points: dict[str, np.ndarray] = {}
    boots: dict[str, np.ndarray] = {}
    kappa_points: dict[str, float] = {}
    kappa_boots: dict[str, np.ndarray] = {}
    for loc, prompts in data.items():
        lang = rtplx.BY_LOCALE[loc].lang
        try:
            scorer.check_language(lang)
        except ScorerError as err:
            refused[loc] = (str(err).strip().splitlines() or [type(err).__name__])[0]
            continue
        labels = [label(p) for p in prompts]
        kept = [i for i, y in enumerate(labels) if y is not None]
        every = _scores(scorer, [p.text.strip() for p in prompts], lang)  # κ needs the excluded prompts too
        scores = every[kept]
        y_all = np.array([labels[i] for i in kept], dtype=float)
        ok = ~np.isnan(scores)
        y, s = y_all[ok], scores[ok]
        folds = assign_folds(len(y), keyed_rng(seed, f"{loc}/folds"))  # cross-fitted balanced accuracy
        points[loc] = point_metrics(y, s, folds)
        idx = resample_indices(keyed_rng(seed, loc), len(y), n_boot) if len(y) else np.zeros((n_boot, 0), int)
        boots[loc] = np.array([metrics_np(y[row], s[row], folds[row]) for row in idx])
        kappa_points[loc], kappa_boots[loc], kappa_n = _kappa(prompts, every, keyed_rng(seed, f"{loc}/kappa"), n_boot)
        rows[loc] = {
            "lang": lang, "n_prompts": len(prompts), "toxic": labels.count(1), "not_toxic": labels.count(0),
            "excluded": labels.count(None), "n": int(len(y)), "unscored": int((~ok).sum()),
            "prompts_sha256": prompts_hash(prompts),
            "kappa": _interval(kappa_boots[loc], kappa_points[loc]), "kappa_n": kappa_n,
            "raters_kappa": RATER_KAPPA.get(loc),
            **{m: _interval(boots[loc][:, j], points[loc][j]) for j, m in enumerate(METRICS)},
        }
    report: dict[str, Any] = {
        "scorer": scorer.provenance(), "against": "rtplx", "languages": list(langs), "locales": locales,
        "rows": rows, "refused": refused, "mean": None, "source": rtplx.describe_source(),
        "method": {
            "kappa": STATISTIC + f"; over every rated prompt; weak below {KAPPA_FLOOR}",
            "labels": RULE,
            "balanced_accuracy": f"cross-fitted: {CV_FOLDS} seeded folds of prompts, each classified at the "
                                 "threshold that maximises balanced accuracy on the other folds",
            "interval": f"{CI_LEVEL:.0%} bias-corrected percentile bootstrap over prompts (the percentile interval "
                        f"shifted by point estimate - median of replicates), {n_boot} replicates, seed {seed} "
                        "(one generator per locale)",
            "mean": "unweighted mean over evaluated locales; interval from the replicate-wise mean",
        },
    }
    if rows:
        report["mean"] = {
            "locales": list(rows), **{k: sum(r[k] for r in rows.values())
                                      for k in ("n_prompts", "toxic", "not_toxic", "excluded", "n", "unscored")},
            **mean_intervals([points[loc] for loc in rows], [boots[loc] for loc in rows]),
            "kappa": _mean_interval([kappa_points[loc] for loc in rows], [kappa_boots[loc] for loc in rows]),
        }
    return report


def rater_rating(prompt: NaturalPrompt) -> int:
    """The raters' 1-5 rating of a prompt: their vote, else the released aggregate to the nearest integer."""
    if prompt.ratings:
        return int(vote(prompt.ratings))
    if prompt.rating is None:
        raise ValueError(f"prompt {prompt.source_index} of {prompt.locale} has no Toxicity rating")
    return released_rating(prompt.rating)


def _kappa(prompts: Sequence[NaturalPrompt], scores: np.ndarray, rng: np.random.Generator,
           n_boot: int) -> tuple[float, np.ndarray, int]:
    """κ over the scored prompts, its ``n_boot`` replicates (prompts resampled) and how many prompts."""
    ok = ~np.isnan(scores)
    ours = score_rating(scores[ok])
    theirs = np.array([rater_rating(p) for p, keep in zip(prompts, ok, strict=True) if keep], dtype=int)
    idx = resample_indices(rng, len(ours), n_boot) if len(ours) else np.zeros((n_boot, 0), int)
    return linear_kappa(ours, theirs), np.array([linear_kappa(ours[row], theirs[row]) for row in idx]), len(ours)


def _mean_interval(points: Sequence[float], boots: Sequence[np.ndarray]) -> dict[str, float | None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: reported as None
        return _interval(np.nanmean(np.stack(boots), axis=0), float(np.nanmean(points)))


def report_table(report: dict[str, Any]) -> str:
    """One GitHub-markdown row per locale (``value [lo, hi]``), refused locales, then the mean."""
    from tabulate import tabulate

    counts = ("toxic", "not_toxic", "excluded", "unscored")
    headers = ["locale", "lang", "toxic", "not toxic", "excluded", "unscored", "κ (1-5)", "raters' κ",
               *(HEADERS[m] for m in METRICS)]
    table = []
    for loc in report["locales"]:
        if loc in report["refused"]:
            table.append([loc, rtplx.BY_LOCALE[loc].lang, "refused", *[""] * (len(headers) - 3)])
        elif loc in report["rows"]:
            row = report["rows"][loc]
            raters = "" if row.get("raters_kappa") is None else f"{row['raters_kappa']:.3f}"
            table.append([loc, row["lang"], *(row[c] for c in counts), _cell(row["kappa"]), raters,
                          *(_cell(row[m]) for m in METRICS)])
    if report["mean"] is not None:
        mean = report["mean"]
        table.append(["mean", "", *(mean[c] for c in counts), _cell(mean["kappa"]), "",
                      *(_cell(mean[m]) for m in METRICS)])
    text = tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)
    if report["refused"]:
        first = next(iter(report["refused"].values()))
        text += f"\nrefused ({len(report['refused'])}): {', '.join(report['refused'])}; e.g. {first}"
    return text
