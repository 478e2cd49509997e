"""The persistent score cache: hits skip the backend, None is never stored, processes share it safely."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

import xdet_tasks.scoring as scoring
from xdet_tasks.scoring.base import Scorer
from xdet_tasks.scoring.cache import CachedScorer, ScoreCache, text_hash

ROOT = Path(__file__).resolve().parents[1]


class CountingBackend(Scorer):
    """A backend double: scores by text length, leaves texts containing "?" unscored, counts calls."""

    name = "counting"

    def __init__(self, version: str = "v1"):
        self.version = version
        self.calls: list[list[str]] = []

    def score(self, texts: Sequence[str], lang: str) -> list[float | None]:
        self.calls.append(list(texts))
        return [None if "?" in t else min(1.0, len(t) / 100) for t in texts]


@pytest.fixture
def cache(tmp_path) -> ScoreCache:
    return ScoreCache(tmp_path / "scores.sqlite3")


def test_second_call_makes_zero_backend_calls(cache):
    backend = CountingBackend()
    scorer = CachedScorer(backend, cache)
    texts = ["one", "two words", "one"]
    first = scorer.score(texts, "de")
    assert backend.calls == [["one", "two words"]]  # duplicates sent once
    assert scorer.score(texts, "de") == first
    assert len(backend.calls) == 1
    assert scorer.stats()["hits"] == 3 and scorer.stats()["misses"] == 2
    assert scorer.provenance() == CountingBackend().provenance() and scorer.ident == "counting@v1"


def test_none_is_never_cached_and_is_retried(cache):
    backend = CountingBackend()
    scorer = CachedScorer(backend, cache)
    assert scorer.score(["fine", "unsure?"], "en") == [0.04, None]
    assert scorer.score(["fine", "unsure?"], "en") == [0.04, None]
    assert backend.calls == [["fine", "unsure?"], ["unsure?"]]
    assert cache.count() == 1


def test_key_separates_language_version_and_backend(cache):
    a, b = CountingBackend("v1"), CountingBackend("v2")
    CachedScorer(a, cache).score(["same text"], "de")
    CachedScorer(a, cache).score(["same text"], "es")
    CachedScorer(b, cache).score(["same text"], "de")
    assert len(a.calls) == 2 and len(b.calls) == 1
    assert cache.count("counting") == 3
    found = cache.get_many("counting", "v1", "TOXICITY", "de", [text_hash("same text")])
    assert found[text_hash("same text")][0] == pytest.approx(0.09)


def test_database_is_wal_and_stores_no_text(cache, tmp_path):
    CachedScorer(CountingBackend(), cache).score(["a distinctive sentence"], "en")
    conn = sqlite3.connect(cache.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    cache.close()
    for path in tmp_path.iterdir():
        assert b"a distinctive sentence" not in path.read_bytes()


def test_get_scorer_wraps_in_the_cache_unless_disabled(monkeypatch):
    from lm_eval.api.registry import Registry

    from xdet_tasks.scoring import registry

    monkeypatch.setattr(scoring, "_ACTIVE", {})
    monkeypatch.setattr(registry, "BACKENDS", Registry("test scorer backend", base_cls=Scorer))
    registry.register_backend("counting", CountingBackend)
    cached = scoring.get_scorer("counting")
    assert isinstance(cached, CachedScorer) and scoring.get_scorer("counting") is cached
    monkeypatch.setattr(scoring, "_ACTIVE", {})
    monkeypatch.setenv("XDET_SCORER_CACHE", "0")
    assert isinstance(scoring.get_scorer("counting"), CountingBackend)


_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from xdet_tasks.scoring.cache import ScoreCache
    cache = ScoreCache(sys.argv[1])
    start = int(sys.argv[2])
    Path(sys.argv[1] + f".ready{start}").touch()
    while not Path(sys.argv[1] + ".go").exists():  # both start writing at the same moment
        time.sleep(0.005)
    for i in range(start, start + 300):
        cache.put_many("proc", "v", "TOXICITY", "en", [(f"h{i:05d}", (i % 100) / 100)])
    print("done")
    """
)


def test_two_processes_write_at_once_without_losing_rows(tmp_path):
    db = tmp_path / "scores.sqlite3"
    ScoreCache(db).close()
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(db), str(start)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for start in (0, 150)  # overlapping ranges: both write keys 150..299
    ]
    deadline = time.monotonic() + 30
    while not all(Path(f"{db}.ready{s}").exists() for s in (0, 150)) and time.monotonic() < deadline:
        time.sleep(0.01)
    Path(f"{db}.go").touch()
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    cache = ScoreCache(db)
    assert cache.count("proc") == 450
    stored = cache.get_many("proc", "v", "TOXICITY", "en", [f"h{i:05d}" for i in range(450)])
    assert {h: score for h, (score, _) in stored.items()} == {f"h{i:05d}": (i % 100) / 100 for i in range(450)}
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()


_CRASHER = textwrap.dedent(
    """
    import os, sys
    from xdet_tasks.scoring.base import Scorer
    from xdet_tasks.scoring.cache import CachedScorer, ScoreCache

    class Streaming(Scorer):
        name, version = "stream", "v"
        def score(self, texts, lang):
            raise AssertionError("the cache must use score_stream")
        def score_stream(self, texts, lang):
            for i, t in enumerate(texts):
                if i == 5:
                    os._exit(3)  # the process dies mid-run, no cleanup
                yield i, 0.5

    CachedScorer(Streaming(), ScoreCache(sys.argv[1])).score([f"text {i}" for i in range(20)], "en")
    """
)


def test_a_crash_mid_run_keeps_every_score_already_returned(tmp_path):
    db = tmp_path / "scores.sqlite3"
    proc = subprocess.run([sys.executable, "-c", _CRASHER, str(db)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 3, proc.stderr
    cache = ScoreCache(db)
    assert cache.count("stream") == 5
    assert set(cache.get_many("stream", "v", "TOXICITY", "en", [text_hash(f"text {i}") for i in range(20)])) == {
        text_hash(f"text {i}") for i in range(5)
    }
