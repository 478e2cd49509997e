"""PolygloToxicityPrompts (Jain et al., COLM 2024) from the hub copy, as prompts.

``ToxicityPrompts/PolygloToxicityPrompts`` (AI2 ImpACT Low Risk licence) has, per language, a config
``ptp-<lang>`` with splits ``full`` (25K prompts) and ``small`` (5K), columns ``text, meta_data,
perspective, toxicity, toxicity_bucket, prompt, continuation, prompt_perspective,
continuation_perspective``, and a config ``wildchat-<lang>`` with split ``wildchat`` (1K user turns of
WildChat), columns ``prompt, prompt_toxicity, toxicity_bucket, prompt_perspective, meta_data``; the
README's ``configs`` map them to ``ptp-<lang>/full-*``, ``ptp-<lang>/small-*`` and
``wildchat-<lang>/wildchat-*`` parquet files. Only ``prompt`` is read.

``XDET_PTP_SPLIT`` (``lm_eval --metadata '{"ptp_split": ...}'``, ``xdet eval --ptp-split``) chooses
``small`` (the default of the authors' generation script, ``--ds_config ptp_small``), ``full`` or
``wildchat``. ``XDET_PTP_DATASET`` (a hub id or a local folder in the same layout) and
``XDET_PTP_REVISION`` choose the copy.
"""

from __future__ import annotations

import os

from xdet_tasks.errors import DataError
from xdet_tasks.suites.natural import NaturalPrompt
from xdet_tasks.suites.records import PTP, SUITES, check_language

ENV_SPLIT = "XDET_PTP_SPLIT"
ENV_DATASET = "XDET_PTP_DATASET"
ENV_REVISION = "XDET_PTP_REVISION"
HUB_DATASET = SUITES[PTP].hub
#: our split name -> (config prefix, hub split)
SPLITS: dict[str, tuple[str, str]] = {"small": ("ptp", "small"), "full": ("ptp", "full"),
                                      "wildchat": ("wildchat", "wildchat")}
DEFAULT_SPLIT = "small"


def chosen_split(split: str | None = None) -> str:
    split = split or os.environ.get(ENV_SPLIT) or DEFAULT_SPLIT
    if split not in SPLITS:
        raise DataError(f"PTP split {split!r} ({ENV_SPLIT} or --ptp-split): expected one of {', '.join(SPLITS)}")
    return split


def _source() -> tuple[str, str | None]:
    return os.environ.get(ENV_DATASET) or HUB_DATASET, os.environ.get(ENV_REVISION) or None


def load_prompts(lang: str, *, annotations: bool = False, split: str | None = None) -> list[NaturalPrompt]:
    """The prompts of ``lang`` in the chosen split; PTP carries no human ratings (``annotations`` refused)."""
    from xdet_tasks.suites.hub import load_hub_dataset

    check_language(lang, PTP)
    if annotations:
        raise DataError("PolygloToxicityPrompts has no human toxicity annotations (only Perspective scores)")
    split = chosen_split(split)
    prefix, hub_split = SPLITS[split]
    config = f"{prefix}-{lang}"
    dataset, revision = _source()
    ds = load_hub_dataset(dataset, revision=revision, name=config, split=hub_split,
                          what=f"PolygloToxicityPrompts {dataset!r}",
                          way_out=f"point {ENV_DATASET} at a local copy in the hub's layout")
    if "prompt" not in ds.column_names:
        raise DataError(f"{dataset} config {config!r} split {hub_split!r}: column 'prompt' missing "
                        f"(columns: {', '.join(ds.column_names)})")
    out = []
    for i, text in enumerate(ds["prompt"]):
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{dataset} config {config!r} split {hub_split!r} row {i}: field 'prompt' is empty")
        out.append(NaturalPrompt(lang, config, i, str(i), text))
    if not out:
        raise DataError(f"{dataset} config {config!r} split {hub_split!r}: no prompts")
    return out


def describe_source() -> dict[str, str]:
    dataset, revision = _source()
    return {"source": "hub", "dataset": dataset, "revision": revision or "main", "split": chosen_split()}
