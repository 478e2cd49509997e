"""Natural prompts: the records the RTP-LX and PTP loaders return, and the suite-independent helpers.

A suite's loader module (``Suite.loader`` in :mod:`xdet_tasks.suites`) turns one language of its data into
:class:`NaturalPrompt` records, reading only the fields a task needs (the prompt; the human toxicity
ratings only when asked for), so derived files that carry nothing but the prompt work too. Where
the data comes from is set by environment variables (``XDET_RTPLX_DIR``, ``XDET_PTP_SPLIT``, ...), or
by the matching ``lm_eval --metadata`` keys, which :func:`apply_metadata` turns into them.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from xdet_tasks.errors import DataError
from xdet_tasks.suites.records import check_suite


@dataclass(frozen=True)
class NaturalPrompt:
    """One prompt of a natural-prompt suite."""

    lang: str
    locale: str  # the data's own key for the language (RTP-LX file locale, PTP config)
    index: int  # position in its file or split
    source_index: str  # the data's own id of the row (RTP-LX ``Index``), else the position
    text: str
    #: the raters' Toxicity values (RTP-LX, 1-5), when annotations were asked for and exist
    ratings: tuple[int, ...] | None = None
    #: the release's aggregated Toxicity value, when annotations were asked for and exist
    rating: float | None = None


#: ``lm_eval --metadata`` keys and the environment variables they set (see :func:`apply_metadata`).
METADATA_ENV: dict[str, str] = {
    "rtplx_dir": "XDET_RTPLX_DIR",
    "rtplx_locales": "XDET_RTPLX_LOCALES",
    "rtplx_dataset": "XDET_RTPLX_DATASET",
    "ptp_split": "XDET_PTP_SPLIT",
    "ptp_dataset": "XDET_PTP_DATASET",
}


def apply_metadata(metadata: Mapping[str, Any]) -> None:
    """``--metadata`` source settings become the process's environment (an explicit variable wins), so
    everything else that reads the data in this process (the fingerprint, a scorer check) sees the same."""
    for key, var in METADATA_ENV.items():
        value = metadata.get(key)
        if value not in (None, "") and not os.environ.get(var):
            os.environ[var] = str(value)


def _loader(suite: str):
    record = check_suite(suite)
    if not record.loader:
        raise DataError(f"suite {suite!r} has no natural-prompt loader")
    return importlib.import_module(record.loader)


def load_prompts(suite: str, lang: str, *, annotations: bool = False) -> list[NaturalPrompt]:
    """The prompts of one language of a natural-prompt suite (source from the environment)."""
    return _loader(suite).load_prompts(lang, annotations=annotations)


def describe_source(suite: str) -> dict[str, str]:
    """Where a suite's data comes from, for provenance records."""
    return _loader(suite).describe_source()


def prompts_hash(prompts: Iterable[NaturalPrompt]) -> str:
    """A stable content hash of prompts (language, locale, id and text)."""
    h = hashlib.sha256()
    for p in prompts:
        for part in (p.lang, p.locale, p.source_index, p.text):
            h.update(part.encode("utf-8"))
            h.update(b"\x1f")
        h.update(b"\x1e")
    return h.hexdigest()
