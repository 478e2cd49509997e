"""A persistent score cache shared by all backends: re-running an evaluated task costs no scorer calls.

One SQLite file, ``$XDET_CACHE_DIR/scores.sqlite3``, keyed by ``(backend, version, attribute,
language, sha256(text))``. The version is the backend's (a model/content hash for ``hf`` and
``local``, the API version for Perspective), so a new model never reads an old model's scores.
Texts themselves are not stored, only their hashes. A backend that rates a text in the context of
its prompt (``uses_context``: ``guard:``) is keyed by the hash of both (:func:`text_hash`), so the
same completion of two prompts is scored twice.

Concurrency and crashes: the database runs in WAL mode with a generous busy timeout, so several
processes (parallel lm-eval runs, xdist workers) can read and write it at once; each score is
committed as soon as the backend returns it (per response for streaming backends such as
Perspective, per small chunk otherwise), so a crash loses nothing already scored. ``None``
(unscored) is never cached: the next run retries it.

Where the cache folder is on a network filesystem (NFS, Lustre, GPFS, ...: a cluster's shared home or
project folder, detected by :mod:`xdet_tasks.scoring.filesystems`), where WAL does not work and SQLite's
locks cannot be trusted, the cache is instead one append-only file per process in ``scores.d/``,
merged on read (:mod:`xdet_tasks.scoring.cache_segments`); ``XDET_SCORER_CACHE_SHARED=1`` or ``0``
chooses that layout or the SQLite file regardless of the filesystem.

Disable with ``XDET_SCORER_CACHE=0``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xdet_tasks.io import SqliteFile, cache_dir, env_flag
from xdet_tasks.scoring.base import Scorer
from xdet_tasks.scoring.cache_segments import SegmentCache
from xdet_tasks.scoring.filesystems import MOUNTINFO, network_filesystem_of

log = logging.getLogger(__name__)

ENV_SCORER_CACHE = "XDET_SCORER_CACHE"
ENV_CACHE_SHARED = "XDET_SCORER_CACHE_SHARED"
DB_NAME = "scores.sqlite3"
SEGMENTS_DIR = "scores.d"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scores (
    backend   TEXT NOT NULL,
    version   TEXT NOT NULL,
    attribute TEXT NOT NULL,
    lang      TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    score     REAL NOT NULL CHECK (score >= 0.0 AND score <= 1.0),
    created   REAL NOT NULL,
    PRIMARY KEY (backend, version, attribute, lang, text_sha256)
) WITHOUT ROWID
"""


def _day(stamp: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(stamp))


def cache_enabled() -> bool:
    return env_flag(ENV_SCORER_CACHE, default=True)


def text_hash(text: str, context: str | None = None) -> str:
    """sha256 of ``text``; with a ``context``, of the pair (length-prefixed, so no two pairs collide)."""
    if context is None:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
    return hashlib.sha256(f"{len(context)}:{context}\0{text}".encode()).hexdigest()


def default_path() -> Path:
    return cache_dir() / DB_NAME


def shared_layout(folder: str | Path, mountinfo: Path = MOUNTINFO) -> str | None:
    """Why the cache in ``folder`` is kept as per-process segments, or ``None`` for the one SQLite file."""
    if os.environ.get(ENV_CACHE_SHARED, "").strip():
        return f"{ENV_CACHE_SHARED} is set" if env_flag(ENV_CACHE_SHARED) else None
    found = network_filesystem_of(folder, mountinfo)
    return f"{folder} is on {found.name} ({found.fstype})" if found else None


def open_cache(folder: str | Path | None = None) -> ScoreCache | SegmentCache:
    """The score cache of ``folder`` (default ``XDET_CACHE_DIR``): the SQLite file, or segments on a network filesystem."""
    where = Path(folder) if folder is not None else cache_dir()
    why = shared_layout(where)
    if why is None:
        return ScoreCache(where / DB_NAME)
    log.debug("score cache: one file per process in %s (%s)", where / SEGMENTS_DIR, why)
    return SegmentCache(where / SEGMENTS_DIR)


class ScoreCache(SqliteFile):
    """The SQLite table of scores. One connection per thread and process; safe across processes."""

    def __init__(self, path: str | Path | None = None, timeout: float = 60.0):
        super().__init__(Path(path) if path is not None else default_path(), _SCHEMA, timeout)

    def get_many(
        self, backend: str, version: str, attribute: str, lang: str, hashes: Sequence[str]
    ) -> dict[str, tuple[float, float]]:
        """``{text_sha256: (score, created)}`` for the hashes present."""
        rows = self.select_in(
            "SELECT text_sha256, score, created FROM scores WHERE backend=? AND version=? AND attribute=? "
            "AND lang=? AND text_sha256 IN", (backend, version, attribute, lang), hashes)
        return {h: (s, c) for h, s, c in rows}

    def put_many(
        self, backend: str, version: str, attribute: str, lang: str, items: Sequence[tuple[str, float]]
    ) -> None:
        """Commit ``(text_sha256, score)`` rows in one transaction (first writer of a key wins)."""
        if not items:
            return
        now = time.time()
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO scores VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(backend, version, attribute, lang, h, float(s), now) for h, s in items],
            )

    def count(self, backend: str | None = None) -> int:
        conn = self.connect()
        if backend is None:
            return conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
        return conn.execute("SELECT COUNT(*) FROM scores WHERE backend=?", (backend,)).fetchone()[0]


class CachedScorer(Scorer):
    """Wraps a backend: answers from the cache, sends only misses, stores each score as it arrives.

    It presents the backend's ``name``, ``version``, ``attribute`` and provenance, so results look the
    same with or without the cache; hit/miss counts are in :meth:`stats`.
    """

    def __init__(self, backend: Scorer, cache: ScoreCache | SegmentCache | None = None):
        self.backend = backend
        self.cache = cache or open_cache()
        self.name = backend.name
        self.version = backend.version
        self.attribute = backend.attribute
        self.dated_scores = backend.dated_scores
        self.hits = 0
        self.misses = 0
        self._dates: tuple[float, float] | None = None
        self._lock = threading.Lock()

    def __getattr__(self, item: str) -> Any:  # backend extras (text_notes, counts, ...)
        if item == "backend":
            raise AttributeError(item)
        return getattr(self.backend, item)

    def check_language(self, lang: str) -> None:
        self.backend.check_language(lang)

    def cache_language(self, lang: str) -> str:
        return self.backend.cache_language(lang)

    @property
    def uses_context(self) -> bool:  # type: ignore[override]
        return self.backend.uses_context

    def score(self, texts: Sequence[str], lang: str,
              contexts: Sequence[str | None] | None = None) -> list[float | None]:
        if not texts:
            return []
        lang_key = self.backend.cache_language(lang)  # may refuse the language before anything is sent
        key = (self.backend.name, self.backend.version, self.backend.attribute, lang_key)
        if not self.backend.uses_context or contexts is None:
            contexts = [None] * len(texts)
        hashes = [text_hash(t, c) for t, c in zip(texts, contexts, strict=True)]
        cached = self.cache.get_many(*key, hashes)
        results: list[float | None] = [None] * len(texts)
        missing: dict[str, list[int]] = {}
        for i, h in enumerate(hashes):
            if h in cached:
                results[i] = cached[h][0]
            else:
                missing.setdefault(h, []).append(i)
        with self._lock:
            self.hits += len(texts) - sum(len(v) for v in missing.values())
            self.misses += len(missing)
            if cached:
                self._note_dates([c for _, c in cached.values()])
        if missing:
            order = list(missing)  # one request per distinct text (and context)
            todo = [texts[missing[h][0]] for h in order]
            stream = (self.backend.score_stream(todo, lang, contexts=[contexts[missing[h][0]] for h in order])
                      if self.backend.uses_context else self.backend.score_stream(todo, lang))
            for j, value in stream:
                if value is None:
                    continue  # unscored: never cached, retried next run
                self.cache.put_many(*key, [(order[j], value)])
                with self._lock:
                    self._note_dates([time.time()])
                for i in missing[order[j]]:
                    results[i] = value
        return results

    def _note_dates(self, stamps: list[float]) -> None:
        low, high = min(stamps), max(stamps)
        if self._dates is not None:
            low, high = min(low, self._dates[0]), max(high, self._dates[1])
        self._dates = (low, high)

    def stats(self) -> dict[str, Any]:
        """Hit/miss counters of this process (not part of provenance: a re-run counts differently)."""
        with self._lock:
            return {"path": str(self.cache.path), "hits": self.hits, "misses": self.misses}

    def provenance(self) -> dict[str, Any]:
        """The backend's provenance; for backends whose scores are dated (a live API), the dates are
        those of the scores actually used, cached or fresh, so a re-run reports the same."""
        prov = self.backend.provenance()
        if self.backend.dated_scores:
            with self._lock:
                span = self._dates
            prov["scores_dated_utc"] = [_day(span[0]), _day(span[1])] if span else [None, None]
        return prov

    @property
    def ident(self) -> str:
        return self.backend.ident
