"""Perspective API settings, the languages it scores, pacing, and keeping its key out of every output.

Split from :mod:`xdet_tasks.scoring.perspective` (the scorer) so that this part, which needs no
Google client library, can be read and tested on its own. See the scorer's docstring for the table of
options and environment variables.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xdet_tasks.errors import ScorerError

DEFAULT_ROOT_URL = "https://commentanalyzer.googleapis.com/"
ATTRIBUTE = "TOXICITY"

ENV_KEY = "PERSPECTIVE_API_KEY"
ENV_URL = "PERSPECTIVE_API_URL"
ENV_QPS = "PERSPECTIVE_API_QPS"
ENV_WORKERS = "PERSPECTIVE_API_WORKERS"
ENV_ATTEMPTS = "PERSPECTIVE_API_MAX_ATTEMPTS"
ENV_BACKOFF = "PERSPECTIVE_API_BACKOFF"
ENV_TIMEOUT = "PERSPECTIVE_API_TIMEOUT"
ENV_FALLBACK = "XDET_PERSPECTIVE_FALLBACK"

#: Perspective's per-request text limit in bytes of UTF-8, as its 2024 documentation gives it.
MAX_TEXT_BYTES = 3000

#: Languages Perspective scores the TOXICITY attribute in. The one place this list lives.
SUPPORTED_LANGUAGES_SOURCE = (
    "https://developers.perspectiveapi.com/s/about-the-api-attributes-and-languages "
    "(TOXICITY row, as published in 2024)"
)
SUPPORTED_LANGUAGES: frozenset[str] = frozenset(
    {
        "ar", "cs", "de", "en", "es", "fr", "hi", "hi-Latn", "id", "it",
        "ja", "ko", "nl", "pl", "pt", "ru", "sv", "zh",
    }
)


_REDACTED = "<redacted>"
_KEY_PARAM = re.compile(r"(?i)([?&](?:key|api_key)=)[^&\s'\"#]+")


# --------------------------------------------------------------------------- key scrubbing
_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()


def scrub(text: str) -> str:
    """``text`` with every known API key and every ``key=`` URL parameter replaced by ``<redacted>``."""
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    env_key = os.environ.get(ENV_KEY)
    if env_key:
        secrets.append(env_key)
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return _KEY_PARAM.sub(r"\1" + _REDACTED, text)


class _ScrubFilter(logging.Filter):
    """Rewrites log records (message, args and traceback) so that no API key reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the logging machinery
            return True
        record.msg, record.args = scrub(message), ()
        if record.exc_info:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


#: Loggers that can see request URLs (googleapiclient logs "URL being requested: POST ...?key=").
_SCRUBBED_LOGGERS = (
    __name__,
    "googleapiclient",
    "googleapiclient.discovery",
    "googleapiclient.http",
    "googleapiclient.model",
    "googleapiclient._helpers",
    "googleapiclient.discovery_cache",
    "httplib2",
    "urllib3.connectionpool",
)
_FILTER = _ScrubFilter()


def install_scrubbing(key: str) -> None:
    with _SECRETS_LOCK:
        _SECRETS.add(key)
    for name in _SCRUBBED_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


# --------------------------------------------------------------------------- options
@dataclass(frozen=True)
class PerspectiveOptions:
    """Client settings, from the spec (``perspective:k=v,...``) over the environment over defaults."""

    root_url: str = DEFAULT_ROOT_URL
    qps: float = 1.0
    workers: int = 0  # 0: enough to keep the quota busy at up to ~1 s latency
    attempts: int = 6
    backoff: float = 1.0
    max_backoff: float = 32.0
    timeout: float = 30.0
    fallback: str | None = None

    @property
    def pool_size(self) -> int:
        return self.workers or max(2, min(64, math.ceil(self.qps) + 2))

    @classmethod
    def parse(cls, arg: str = "", env: dict[str, str] | None = None) -> PerspectiveOptions:
        env = dict(os.environ if env is None else env)
        raw: dict[str, str] = {}
        for name, var in (
            ("url", ENV_URL), ("qps", ENV_QPS), ("workers", ENV_WORKERS), ("attempts", ENV_ATTEMPTS),
            ("backoff", ENV_BACKOFF), ("timeout", ENV_TIMEOUT), ("fallback", ENV_FALLBACK),
        ):
            if env.get(var, "").strip():
                raw[name] = env[var].strip()
        for item in filter(None, (part.strip() for part in arg.split(","))):
            name, eq, value = item.partition("=")
            if not eq or not value.strip():
                raise ScorerError(f"XDET_SCORER=perspective:{arg}: option {item!r} is not of the form name=value")
            raw[name.strip()] = value.strip()
        known = {"url", "qps", "workers", "attempts", "backoff", "max_backoff", "timeout", "fallback"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ScorerError(
                f"XDET_SCORER=perspective:{arg}: unknown option(s) {', '.join(unknown)}; "
                f"expected {', '.join(sorted(known))}"
            )

        def number(name: str, kind: type, low: float) -> Any:
            if name not in raw:
                return getattr(cls, name)
            try:
                value = kind(raw[name])
            except ValueError:
                raise ScorerError(f"perspective option {name}={raw[name]!r} is not a {kind.__name__}") from None
            if not value >= low:
                raise ScorerError(f"perspective option {name}={raw[name]!r} must be >= {low}")
            return value

        fallback = raw.get("fallback")
        if fallback in ("", "none", "off"):
            fallback = None
        if fallback is not None and fallback not in SUPPORTED_LANGUAGES:
            raise ScorerError(
                f"perspective fallback={fallback!r} is not a language Perspective supports for {ATTRIBUTE} "
                f"({', '.join(sorted(SUPPORTED_LANGUAGES))}; source: {SUPPORTED_LANGUAGES_SOURCE})"
            )
        root = raw.get("url", DEFAULT_ROOT_URL)
        if not re.match(r"^https?://", root):
            raise ScorerError(f"{ENV_URL}={scrub(root)!r}: expected an http(s):// root URL")
        qps = number("qps", float, 0.0)
        if qps <= 0:
            raise ScorerError(f"perspective option qps={raw['qps']!r} must be > 0")
        return cls(
            root_url=root.rstrip("/") + "/",
            qps=qps,
            workers=number("workers", int, 0),
            attempts=number("attempts", int, 1),
            backoff=number("backoff", float, 0.0),
            max_backoff=number("max_backoff", float, 0.0),
            timeout=number("timeout", float, 0.001),
            fallback=fallback,
        )


# --------------------------------------------------------------------------- pacing
class RateLimiter:
    """Spaces request starts ``1/qps`` apart across all threads, so no one-second window exceeds the quota.

    Spacing rather than bursting keeps the quota busy while concurrent requests hide the latency,
    and :meth:`pause` lets a 429 (with its ``Retry-After``) hold back every thread, not just one.
    """

    def __init__(self, qps: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.interval = 1.0 / qps
        self._clock, self._sleep = clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            self._sleep(slot - now)

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._next = max(self._next, self._clock() + seconds)


def truncate_utf8(text: str, limit: int = MAX_TEXT_BYTES) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` UTF-8 bytes at a character boundary, and whether it was cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, False
    return data[:limit].decode("utf-8", errors="ignore"), True
