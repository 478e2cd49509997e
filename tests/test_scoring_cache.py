"""The persistent score cache: hits skip the backend, None is never stored, processes share it safely.

Both layouts: the SQLite file (a local filesystem) and per-process segments (a network filesystem).
"""

from __future__ import annotations

import json
import os
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
from xdet_tasks.scoring.cache import (
    DB_NAME,
    SEGMENTS_DIR,
    CachedScorer,
    ScoreCache,
    open_cache,
    shared_layout,
    text_hash,
)
from xdet_tasks.scoring.cache_segments import SegmentCache

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


LAYOUTS = ("sqlite", "segments")


def _open(folder: Path, layout: str) -> ScoreCache | SegmentCache:
    return ScoreCache(folder / DB_NAME) if layout == "sqlite" else SegmentCache(folder / SEGMENTS_DIR)


@pytest.fixture(params=LAYOUTS)
def cache(request, tmp_path) -> ScoreCache | SegmentCache:
    return _open(tmp_path, request.param)


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
    if isinstance(cache, ScoreCache):
        conn = sqlite3.connect(cache.path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()
    cache.close()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files
    for path in files:
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
    from xdet_tasks.scoring.cache import open_cache
    cache = open_cache(sys.argv[1])  # the layout: XDET_SCORER_CACHE_SHARED
    start = int(sys.argv[2])
    Path(sys.argv[1], f"ready{start}").touch()
    while not Path(sys.argv[1], "go").exists():  # all start writing at the same moment
        time.sleep(0.005)
    for i in range(start, start + 300):
        cache.put_many("proc", "v", "TOXICITY", "en", [(f"{i:064x}", (i % 100) / 100)])
    # every writer sees what the others wrote (the last writer sees all of it)
    seen = len(cache.get_many("proc", "v", "TOXICITY", "en", [f"{i:064x}" for i in range(600)]))
    print(seen)
    """
)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_several_processes_write_at_once_without_losing_rows(tmp_path, layout):
    folder = tmp_path / "cache"
    _open(folder, layout).close()
    starts = (0, 150, 300)  # overlapping ranges: keys 150..449 are written twice
    env = os.environ | {"XDET_SCORER_CACHE_SHARED": "1" if layout == "segments" else "0"}
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(folder), str(start)], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for start in starts
    ]
    deadline = time.monotonic() + 60
    while not all((folder / f"ready{s}").exists() for s in starts) and time.monotonic() < deadline:
        time.sleep(0.01)
    (folder / "go").touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert max(int(out) for out, _ in outs) == 600 and all(int(out) >= 300 for out, _ in outs), outs
    cache = _open(folder, layout)
    assert cache.count("proc") == 600
    stored = cache.get_many("proc", "v", "TOXICITY", "en", [f"{i:064x}" for i in range(600)])
    assert {h: score for h, (score, _) in stored.items()} == {f"{i:064x}": (i % 100) / 100 for i in range(600)}
    if layout == "sqlite":
        conn = sqlite3.connect(folder / DB_NAME)
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        conn.close()
    else:  # one segment per process, none written by two
        assert len(list((folder / SEGMENTS_DIR).glob("*.jsonl"))) == len(starts)


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

    from xdet_tasks.scoring.cache import open_cache
    CachedScorer(Streaming(), open_cache(sys.argv[1])).score([f"text {i}" for i in range(20)], "en")
    """
)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_crash_mid_run_keeps_every_score_already_returned(tmp_path, layout):
    env = os.environ | {"XDET_SCORER_CACHE_SHARED": "1" if layout == "segments" else "0"}
    proc = subprocess.run([sys.executable, "-c", _CRASHER, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 3, proc.stderr
    cache = _open(tmp_path, layout)
    assert cache.count("stream") == 5
    assert set(cache.get_many("stream", "v", "TOXICITY", "en", [text_hash(f"text {i}") for i in range(20)])) == {
        text_hash(f"text {i}") for i in range(5)
    }


def test_segments_skip_torn_and_foreign_lines_and_read_a_line_once_it_is_complete(tmp_path):
    folder = tmp_path / SEGMENTS_DIR
    cache = SegmentCache(folder)
    good = [json.dumps(["b", "v", "TOXICITY", "de", f"{i:064x}", i / 10, 100.0 + i]) for i in range(4)]
    bad = [
        "\0" * 40,  # a hole a crashed node's client left
        json.dumps(["b", "v", "TOXICITY", "de", f"{9:064x}", 1.5, 1.0]),  # no score is above 1
        json.dumps(["b", "v", "TOXICITY", "de", "not-a-hash", 0.5, 1.0]),
        json.dumps(["b", "v", "TOXICITY", "de", f"{8:064x}", 0.5]),  # a field short
        good[3][: len(good[3]) // 2],  # cut short mid-line, then the next line written after it
    ]
    tail = good[2][:-5]  # the last line, not complete yet
    (folder / "other-1-aaaa.jsonl").write_bytes(("\n".join([good[0], *bad, good[1]]) + "\n" + tail).encode())
    wanted = [f"{i:064x}" for i in (0, 1, 2, 8, 9)]
    assert {h: s for h, (s, _) in cache.get_many("b", "v", "TOXICITY", "de", wanted).items()} == {
        f"{0:064x}": 0.0, f"{1:064x}": 0.1}
    with (folder / "other-1-aaaa.jsonl").open("ab") as fh:  # the writer completes its line
        fh.write((good[2][-5:] + "\n").encode())
    assert set(cache.get_many("b", "v", "TOXICITY", "de", wanted)) == {f"{i:064x}" for i in (0, 1, 2)}
    assert cache.count() == 3


def test_segments_keep_the_earliest_score_of_a_key(tmp_path):
    folder = tmp_path / SEGMENTS_DIR
    folder.mkdir()
    key = ["b", "v", "TOXICITY", "de", "a" * 64]
    (folder / "a-late.jsonl").write_text(json.dumps([*key, 0.9, 200.0]) + "\n")  # read first (by name), created later
    (folder / "b-early.jsonl").write_text(json.dumps([*key, 0.2, 100.0]) + "\n")
    assert SegmentCache(folder).get_many(*key[:4], ["a" * 64]) == {"a" * 64: (0.2, 100.0)}
    SegmentCache(folder).put_many(*key[:4], [("a" * 64, 0.5)])  # written later: it does not win either
    assert len(list(folder.iterdir())) == 3
    assert SegmentCache(folder).get_many(*key[:4], ["a" * 64]) == {"a" * 64: (0.2, 100.0)}


def test_the_layout_follows_the_cache_folders_filesystem(tmp_path, monkeypatch):
    monkeypatch.delenv("XDET_SCORER_CACHE_SHARED", raising=False)
    folder = tmp_path / "cache"
    folder.mkdir()
    mountinfo = tmp_path / "mountinfo"
    for fstype, shared in (("nfs4", True), ("lustre", True), ("ext4", False), ("tmpfs", False)):
        mountinfo.write_text(f"27 1 254:0 / / rw - ext4 /dev/vda rw\n"
                             f"99 27 0:50 / {tmp_path} rw - {fstype} server:/export rw\n")
        assert (shared_layout(folder, mountinfo) is not None) is shared, fstype
    assert "NFS v4" in shared_layout(folder, _mountinfo(tmp_path, "nfs4"))
    monkeypatch.setenv("XDET_SCORER_CACHE_SHARED", "1")
    assert isinstance(open_cache(folder), SegmentCache) and not (folder / DB_NAME).exists()
    monkeypatch.setenv("XDET_SCORER_CACHE_SHARED", "0")  # the switch wins over the filesystem
    assert shared_layout(folder, _mountinfo(tmp_path, "nfs4")) is None
    assert isinstance(open_cache(folder), ScoreCache)
    monkeypatch.delenv("XDET_SCORER_CACHE_SHARED")
    assert isinstance(open_cache(folder), ScoreCache)  # this machine's real mounts are all local


def _mountinfo(tmp_path: Path, fstype: str) -> Path:
    path = tmp_path / f"mountinfo-{fstype}"
    path.write_text(f"27 1 254:0 / / rw - ext4 /dev/vda rw\n99 27 0:50 / {tmp_path} rw - {fstype} srv:/x rw\n")
    return path
