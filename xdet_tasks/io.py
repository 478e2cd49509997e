"""Files and the outside world: atomic writes (nothing the project writes is ever left half-written), JSONL
reading, the cache folder, environment switches, and whether the Hugging Face hub can be reached.

A run that needs the hub (a hub model id, a hub dataset, a scorer preset) first uses a cached copy when
there is one; only when it must download does it ask :func:`unreachable`, so an offline machine gets
one clear line at once rather than minutes of retry warnings and a traceback.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ENV_CACHE_DIR = "XDET_CACHE_DIR"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Permissions of what we write, as any file the user creates would get (temp files start owner-only).
_MASK = _umask()
FILE_MODE = 0o666 & ~_MASK
DIR_MODE = 0o777 & ~_MASK


def env_flag(name: str, default: bool = False) -> bool:
    """An on/off environment switch: 1/true/yes/on or 0/false/no/off (any case); else ``default``."""
    value = os.environ.get(name, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return default


@contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set the given environment variables (``None``: leave as is) for the ``with`` block, then restore."""
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is not None:
                os.environ[k] = v
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def idle_cores() -> int:
    """CPU cores not busy with other work (at least 1): torch's spinning OpenMP threads on busy cores slow
    a small model ~10x on a shared machine, so CPU work takes only these."""
    cores = os.cpu_count() or 1
    try:
        busy = round(os.getloadavg()[0])
    except OSError:
        busy = 0
    return max(1, min(cores, cores - busy))


def cache_dir() -> Path:
    """``XDET_CACHE_DIR`` or the user cache directory (``~/.cache/xdet`` on Linux): the local scorer,
    the score cache and the demo's toy model live here."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        path = Path(env).expanduser()
    else:
        from platformdirs import user_cache_dir

        path = Path(user_cache_dir("xdet"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temp file beside ``path``, fsync it, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_symlink(link: str | Path, target: str | Path) -> Path:
    """Make ``link`` point at ``target`` (replacing what it pointed at) by renaming a new link over it."""
    link = Path(link)
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.link")
    tmp.unlink(missing_ok=True)
    os.symlink(Path(target).resolve(), tmp, target_is_directory=True)
    os.replace(tmp, link)
    return link


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def csv_number(text: str, where: str) -> float:
    """A finite number from a CSV cell; ``where`` (``file:line: column 'x'``) names it in the error."""
    from xdet_tasks.errors import DataError

    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise DataError(f"{where}: {text!r} is not finite")
    return value


def iter_jsonl(
    path: str | Path, error: type[Exception] = ValueError, what: str = "corrupt or truncated JSON line"
) -> Iterator[tuple[int, Any]]:
    """``(line number, record)`` for each non-blank line; a bad line raises ``error`` naming file:line."""
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as err:
                raise error(f"{path}:{lineno}: {what}: {err.msg}") from None


@contextmanager
def staged_dir(target: str | Path, *, replace: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``target`` that becomes ``target`` when the block succeeds.

    Readers see the whole folder or nothing; on any error, Ctrl-C included, the staging folder is
    removed. Names start with ``.`` and end in ``.partial`` so that a folder left by a killed process
    is recognisable and never read as a result. ``target`` must be absent or empty unless
    ``replace``, which swaps an existing folder out (and deletes it) once the new one is complete.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    os.chmod(staging, DIR_MODE)
    try:
        yield staging
        old = None
        if target.is_dir() and any(target.iterdir()) and replace:
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", suffix=".partial", dir=target.parent))
            os.replace(target, old / target.name)
        elif target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def remove_partials(parent: str | Path, name: str) -> None:
    """Delete what a killed :func:`staged_dir` for ``parent/name`` left behind."""
    for stale in Path(parent).glob(f".{name}.*.partial"):
        shutil.rmtree(stale, ignore_errors=True)


def unreachable(*offline_vars: str) -> str | None:
    """Why the hub cannot be reached (offline mode set, its host does not resolve), or ``None``.

    ``HF_HUB_OFFLINE`` always counts; a library's own switch (``TRANSFORMERS_OFFLINE``,
    ``HF_DATASETS_OFFLINE``) counts where the caller names it.
    """
    for var in ("HF_HUB_OFFLINE", *offline_vars):
        if env_flag(var):
            return f"{var} is set"
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None  # a proxy resolves the host for us: let the real request decide
    host = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return f"{host} cannot be resolved (no network)"
    return None


class SqliteFile:
    """One SQLite file shared by threads and processes (the score cache, the fluency cache).

    Each thread of each process gets its own connection (a forked child never reuses its parent's), in
    WAL mode with a busy timeout, so readers never block the writer and several processes of one machine
    write safely; :meth:`transaction` commits a batch whole or not at all.
    """

    def __init__(self, path: str | Path, schema: str, timeout: float = 60.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        self._local = threading.local()
        self.connect().execute(schema)

    def connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")  # persistent: once set, every opener gets WAL
        conn.execute("PRAGMA synchronous = NORMAL")  # durable against process crashes in WAL mode
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def select_in(self, query: str, params: Sequence[object], keys: Sequence[str]) -> Iterator[tuple]:
        """The rows of ``query`` (ending in ``IN``) over the distinct ``keys``, asked in chunks that stay
        under SQLite's bound-parameter limit; ``params`` bind the placeholders before the list."""
        unique = list(dict.fromkeys(keys))
        conn = self.connect()
        for start in range(0, len(unique), 500):
            part = unique[start:start + 500]
            yield from conn.execute(f"{query} ({','.join('?' * len(part))})", (*params, *part))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self.connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local = threading.local()
