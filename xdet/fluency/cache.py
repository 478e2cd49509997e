"""The fluency cache: a completion scored once under a reference model is never scored again.

One SQLite file, ``$XDET_CACHE_DIR/fluency.sqlite3`` (beside the score cache), keyed by the reference's
identity (a hash of its config, weight and tokenizer files and its dtype: a new revision of a model is
another reference, whatever it is called), the conditioning version and window
(:data:`xdet.fluency.compute.CONDITIONING`), and sha256 of the prompt and completion; texts
are not stored. Each batch is committed as soon as the model has scored it, so Ctrl-C loses at
most the batch in flight and a rerun scores only what is missing. WAL mode and a busy timeout let
several processes share it, as the score cache does.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path

from xdet.runs.fluency import Scored
from xdet_tasks.io import SqliteFile, cache_dir

DB_NAME = "fluency.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS fluency (
    reference TEXT NOT NULL,
    pair_sha256 TEXT NOT NULL,
    nll REAL NOT NULL,
    tokens INTEGER NOT NULL CHECK (tokens > 0),
    truncated INTEGER NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (reference, pair_sha256)
) WITHOUT ROWID
"""

def pair_key(context: str, completion: str) -> str:
    """sha256 of the prompt and the completion, unambiguously joined (a JSON pair)."""
    return hashlib.sha256(json.dumps([context, completion], ensure_ascii=False).encode("utf-8")).hexdigest()


class FluencyCache(SqliteFile):
    """The SQLite table of scored completions; one connection per thread and process."""

    def __init__(self, path: str | Path | None = None, timeout: float = 60.0):
        super().__init__(Path(path) if path is not None else cache_dir() / DB_NAME, _SCHEMA, timeout)
        self.hits = 0
        self.misses = 0

    def get_many(self, reference: str, keys: Sequence[str]) -> dict[str, Scored]:
        """The cached value of each key present (hits and misses are counted per distinct key asked)."""
        unique = list(dict.fromkeys(keys))
        rows = self.select_in("SELECT pair_sha256, nll, tokens, truncated FROM fluency WHERE reference=? "
                              "AND pair_sha256 IN", (reference,), unique)
        found = {key: Scored(nll, tokens, bool(cut)) for key, nll, tokens, cut in rows}
        self.hits += sum(key in found for key in unique)
        self.misses += sum(key not in found for key in unique)
        return found

    def put_many(self, reference: str, items: Sequence[tuple[str, Scored]]) -> None:
        """Commit scored pairs in one transaction (the first writer of a key wins)."""
        if not items:
            return
        now = time.time()
        with self.transaction() as conn:
            conn.executemany("INSERT OR IGNORE INTO fluency VALUES (?, ?, ?, ?, ?, ?)",
                             [(reference, key, float(s.nll), s.tokens, int(s.truncated), now)
                              for key, s in items if s.nll is not None])

    def count(self, reference: str | None = None) -> int:
        conn = self.connect()
        if reference is None:
            return conn.execute("SELECT COUNT(*) FROM fluency").fetchone()[0]
        return conn.execute("SELECT COUNT(*) FROM fluency WHERE reference=?", (reference,)).fetchone()[0]
