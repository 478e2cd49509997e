"""The score cache on a network filesystem: one append-only file per process, every file merged on read.

Jobs on several nodes share the cache folder of a cluster (a home or project directory over NFS,
Lustre, GPFS, ...), where SQLite's WAL mode does not work and its file locking cannot be trusted
(:mod:`xdet_tasks.scoring.filesystems`). Here no two processes ever write one file, no file is ever rewritten
and nothing is locked:

* each process appends the scores it computes to a segment of its own,
  ``scores.d/<host>-<pid>-<random>.jsonl``, created with ``O_EXCL``; one line per score
  (``[backend, version, attribute, lang, text_sha256, score, created]``), every batch in one
  ``write`` on a descriptor opened with ``O_APPEND``;
* readers take only complete lines (up to the last newline) that parse as such a record, so a line
  that a crash cut short, or that a reader on another node sees only partly, is skipped (and its
  text scored again), never read as a score; each reader remembers how far it has read every
  segment and reads only what was appended since;
* merging keeps the earliest score of a key, as the SQLite file keeps its first writer's.

A killed process loses nothing it has written (the kernel still has it); a crashed node loses what
its client had not yet written back, at most :data:`SYNC_EVERY_S` seconds of scores.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from xdet_tasks.io import DIR_MODE, FILE_MODE

SUFFIX = ".jsonl"
#: How often a writer flushes its segment to the file server (what other nodes can see, a node crash keeps).
SYNC_EVERY_S = 5.0
_SHA = re.compile(r"[0-9a-f]{64}")
Key = tuple[str, str, str, str]  # backend, version, attribute, lang


def parse_line(line: bytes) -> tuple[Key, str, float, float] | None:
    """One segment line as ``(key, text_sha256, score, created)``; ``None`` for anything else (a torn line)."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    if not (isinstance(row, list) and len(row) == 7 and all(isinstance(x, str) for x in row[:5])):
        return None
    score, created = row[5], row[6]
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in (score, created)):
        return None
    if not (0.0 <= score <= 1.0 and _SHA.fullmatch(row[4])):
        return None
    return (row[0], row[1], row[2], row[3]), row[4], float(score), float(created)


class SegmentCache:
    """The score table as a folder of per-process segments; the interface of :class:`~xdet_tasks.scoring.cache.ScoreCache`."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder)
        self.path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        self._rows: dict[Key, dict[str, tuple[float, float]]] = {}
        self._read: dict[str, tuple[int, int]] = {}  # segment name -> (inode, bytes consumed)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._own: str | None = None
        self._pid = os.getpid()
        self._synced = 0.0

    # ------------------------------------------------------------------------------------------ reading

    def _refresh(self) -> None:
        """Read what every other segment has gained since the last look."""
        try:
            names = sorted(p.name for p in self.path.iterdir() if p.name.endswith(SUFFIX))
        except FileNotFoundError:
            return
        for name in names:
            if name == self._own:
                continue
            try:
                with (self.path / name).open("rb") as fh:
                    inode = os.fstat(fh.fileno()).st_ino
                    seen_inode, offset = self._read.get(name, (inode, 0))
                    if seen_inode != inode:  # replaced (a segment name reused): read it anew
                        offset = 0
                    fh.seek(offset)
                    data = fh.read()
            except FileNotFoundError:  # removed by hand meanwhile
                continue
            end = data.rfind(b"\n") + 1  # an incomplete last line waits for the next look
            for line in data[:end].split(b"\n"):
                row = parse_line(line)
                if row is not None:
                    self._add(*row)
            self._read[name] = (inode, offset + end)

    def _add(self, key: Key, sha: str, score: float, created: float) -> bool:
        table = self._rows.setdefault(key, {})
        old = table.get(sha)
        if old is not None and old[1] <= created:
            return False
        table[sha] = (score, created)
        return old is None

    def get_many(
        self, backend: str, version: str, attribute: str, lang: str, hashes: Sequence[str]
    ) -> dict[str, tuple[float, float]]:
        """``{text_sha256: (score, created)}`` for the hashes present in any segment."""
        with self._lock:
            self._refresh()
            table = self._rows.get((backend, version, attribute, lang), {})
            return {h: table[h] for h in dict.fromkeys(hashes) if h in table}

    def count(self, backend: str | None = None) -> int:
        with self._lock:
            self._refresh()
            return sum(len(rows) for key, rows in self._rows.items() if backend is None or key[0] == backend)

    # ------------------------------------------------------------------------------------------ writing

    def _writer(self) -> int:
        if self._fd is not None and self._pid == os.getpid():
            return self._fd
        self._pid = os.getpid()  # a forked child writes a segment of its own
        host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"
        self._own = f"{host}-{self._pid}-{secrets.token_hex(4)}{SUFFIX}"
        self._fd = os.open(self.path / self._own, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, FILE_MODE)
        return self._fd

    def put_many(
        self, backend: str, version: str, attribute: str, lang: str, items: Sequence[tuple[str, float]]
    ) -> None:
        """Append ``(text_sha256, score)`` rows not known yet to this process's segment (first writer wins)."""
        if not items:
            return
        now = time.time()
        key = (backend, version, attribute, lang)
        with self._lock:
            lines = []
            for sha, score in items:
                if sha not in self._rows.get(key, {}):
                    lines.append(json.dumps([*key, sha, float(score), now], ensure_ascii=False) + "\n")
            if not lines:
                return
            fd = self._writer()
            data = "".join(lines).encode("utf-8")
            while data:  # a regular file takes it in one call unless the disk is full or a signal interrupts
                data = data[os.write(fd, data):]
            for sha, score in items:
                self._add(key, sha, float(score), now)
            if now - self._synced >= SYNC_EVERY_S:
                os.fsync(fd)
                self._synced = now

    def close(self) -> None:
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                os.fsync(self._fd)
                os.close(self._fd)
            self._fd = None
