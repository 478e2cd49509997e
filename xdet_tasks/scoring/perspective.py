"""The ``perspective`` backend: Perspective API's TOXICITY through google-api-python-client.

The service is built with ``googleapiclient.discovery.build_from_document`` from the discovery
document shipped next to this module (``perspective_discovery.json``, written by us, describing only
``comments.analyze``), so neither tests nor real runs fetch a discovery document over the network;
the only requests made are ``comments:analyze`` calls.

Spec and settings (the spec options win over the environment)::

    XDET_SCORER=perspective
    XDET_SCORER=perspective:fallback=en,qps=10

| option         | environment                     | default | meaning                                        |
|----------------|---------------------------------|---------|------------------------------------------------|
| (key)          | ``PERSPECTIVE_API_KEY``         | —       | API key; read only from the environment        |
| ``url``        | ``PERSPECTIVE_API_URL``         | Google  | service root URL (tests, proxies)              |
| ``qps``        | ``PERSPECTIVE_API_QPS``         | 1       | the project's quota in requests per second     |
| ``workers``    | ``PERSPECTIVE_API_WORKERS``     | auto    | concurrent requests in flight                  |
| ``attempts``   | ``PERSPECTIVE_API_MAX_ATTEMPTS``| 6       | tries per text before it is left unscored      |
| ``backoff``    | ``PERSPECTIVE_API_BACKOFF``     | 1.0     | first retry delay in seconds (doubles, jitter) |
| ``timeout``    | ``PERSPECTIVE_API_TIMEOUT``     | 30      | socket timeout per request in seconds          |
| ``fallback``   | ``XDET_PERSPECTIVE_FALLBACK``   | none    | score unsupported languages as this language   |

Languages Perspective does not support for TOXICITY (Amharic and Ukrainian among xdet's nine) are
refused before any request. ``fallback=en`` scores them as English instead, which the paper's code
did silently; here it is recorded in :meth:`PerspectiveScorer.provenance` (``fallback_used``).

The API key travels in the request URL (``?key=``), so it is scrubbed from every exception message
and log record this module and google-api-python-client produce, and never enters provenance.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from xdet_tasks.errors import ScorerError
from xdet_tasks.scoring.base import Scorer
from xdet_tasks.scoring.perspective_options import (
    ATTRIBUTE,
    ENV_FALLBACK,
    ENV_KEY,
    MAX_TEXT_BYTES,
    SUPPORTED_LANGUAGES,
    SUPPORTED_LANGUAGES_SOURCE,
    PerspectiveOptions,
    RateLimiter,
    install_scrubbing,
    scrub,
    truncate_utf8,
)

log = logging.getLogger(__name__)

API_VERSION = "v1alpha1"
DISCOVERY_DOCUMENT = Path(__file__).with_name("perspective_discovery.json")
#: HTTP statuses worth retrying: quota (429) and transient server errors.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Statuses that mean the key or project is wrong: every further request would fail the same way.
AUTH_STATUSES = frozenset({401, 403})


# --------------------------------------------------------------------------- the scorer
class _Malformed(Exception):
    """A 200 response without a usable TOXICITY summary score."""


@dataclass
class _Stats:
    requests: int = 0
    retries: int = 0
    empty: int = 0
    truncated: int = 0
    unscored: int = 0
    scored: int = 0
    errors: Counter = field(default_factory=Counter)
    fallback_used: dict[str, str] = field(default_factory=dict)
    first: str | None = None
    last: str | None = None


class PerspectiveScorer(Scorer):
    """TOXICITY probabilities from Perspective, paced to the quota, retried, never silently 0."""

    name = "perspective"
    version = API_VERSION
    attribute = ATTRIBUTE
    dated_scores = True

    def __init__(
        self,
        options: PerspectiveOptions | None = None,
        *,
        http_factory: Callable[[], Any] | None = None,
        request_builder: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        """``http_factory`` (one ``httplib2.Http``-like object per thread) and ``request_builder``
        exist for googleapiclient's test doubles; real use leaves them unset."""
        from googleapiclient.discovery import build_from_document

        self.options = options or PerspectiveOptions.parse()
        key = os.environ.get(ENV_KEY, "").strip()
        if not key:
            raise ScorerError(
                f"the perspective scorer needs an API key in the {ENV_KEY} environment variable "
                "(it is never read from files or arguments)"
            )
        install_scrubbing(key)
        self._sleep = sleep
        self._limiter = RateLimiter(self.options.qps, sleep=sleep)
        self._local = threading.local()
        self._http_factory = http_factory or self._default_http
        self._stats = _Stats()
        self._stats_lock = threading.Lock()
        document = json.loads(DISCOVERY_DOCUMENT.read_text(encoding="utf-8"))
        try:
            kwargs: dict[str, Any] = {"developerKey": key, "client_options": {"api_endpoint": self.options.root_url}}
            if request_builder is not None:
                kwargs["requestBuilder"] = request_builder
            self._service = build_from_document(document, http=self._http_factory(), **kwargs)
        except Exception as err:
            raise ScorerError(f"could not build the Perspective client: {scrub(str(err))}") from None

    @classmethod
    def from_spec(cls, arg: str) -> PerspectiveScorer:
        return cls(PerspectiveOptions.parse(arg))

    def _default_http(self) -> Any:
        import httplib2

        return httplib2.Http(timeout=self.options.timeout)

    def _http(self) -> Any:
        http = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = self._http_factory()
        return http

    # ---- language handling
    def request_language(self, lang: str) -> str:
        """The language sent for texts in ``lang``; raises before any request if it is unsupported."""
        if lang in SUPPORTED_LANGUAGES:
            return lang
        fallback = self.options.fallback
        if fallback is None:
            raise ScorerError(
                f"Perspective does not support {ATTRIBUTE} in language {lang!r} "
                f"(supported: {', '.join(sorted(SUPPORTED_LANGUAGES))}; source: {SUPPORTED_LANGUAGES_SOURCE}). "
                f"Use another scorer for {lang!r}, or score it as another language explicitly with "
                f"XDET_SCORER=perspective:fallback=en (or {ENV_FALLBACK}=en); that choice is recorded in "
                "the results' scorer provenance"
            )
        with self._stats_lock:
            if lang not in self._stats.fallback_used:
                log.warning("Perspective: scoring %r texts as %r (explicit fallback)", lang, fallback)
            self._stats.fallback_used[lang] = fallback
        return fallback

    def check_language(self, lang: str) -> None:
        self.request_language(lang)

    def cache_language(self, lang: str) -> str:
        """Cache key language: ``am>en`` when Amharic was scored as English, so the two never mix."""
        sent = self.request_language(lang)
        return lang if sent == lang else f"{lang}>{sent}"

    @staticmethod
    def text_notes(text: str) -> dict[str, bool]:
        """Per-sample flags for logged samples: ``empty`` (scored 0.0 unsent), ``truncated`` (cut to 3000 bytes)."""
        return {"empty": not text.strip(), "truncated": len(text.encode("utf-8")) > MAX_TEXT_BYTES}

    # ---- scoring
    def score(self, texts: Sequence[str], lang: str) -> list[float | None]:
        results: list[float | None] = [None] * len(texts)
        for index, value in self.score_stream(texts, lang):
            results[index] = value
        return results

    def score_stream(self, texts: Sequence[str], lang: str) -> Iterator[tuple[int, float | None]]:
        """``(index, score)`` pairs as responses arrive, so a cache can store each one at once."""
        sent = self.request_language(lang)  # refuses unsupported languages before any request
        jobs: list[tuple[int, str]] = []
        for index, text in enumerate(texts):
            if not text.strip():
                with self._stats_lock:
                    self._stats.empty += 1
                yield index, 0.0
                continue
            body_text, truncated = truncate_utf8(text)
            if truncated:
                with self._stats_lock:
                    self._stats.truncated += 1
            jobs.append((index, body_text))
        if not jobs:
            return
        pool = ThreadPoolExecutor(max_workers=min(self.options.pool_size, len(jobs)),
                                  thread_name_prefix="perspective")
        try:
            futures = {pool.submit(self._analyze, text, sent): index for index, text in jobs}
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _analyze(self, text: str, lang: str) -> float | None:
        from googleapiclient.errors import HttpError
        from httplib2 import HttpLib2Error

        body = {
            "comment": {"text": text},
            "requestedAttributes": {ATTRIBUTE: {}},
            "languages": [lang],
            "doNotStore": True,
        }
        last, kind = "no attempt", "network"
        refused = 0
        for attempt in range(1, self.options.attempts + 1):
            self._limiter.acquire()
            retry_after = 0.0
            with self._stats_lock:
                self._stats.requests += 1
                self._stats.retries += attempt > 1
            try:
                # num_retries stays at its default (0): retries are ours, paced by the limiter.
                response = self._service.comments().analyze(body=body).execute(http=self._http())
                value = self._summary(response)
                self._note_scored()
                return value
            except HttpError as err:
                status = int(getattr(err.resp, "status", 0) or 0)
                reason = scrub(str(getattr(err, "reason", "") or ""))
                last, kind = f"HTTP {status} {reason}".strip(), f"HTTP {status}"
                if status in AUTH_STATUSES:
                    refused = status
                    break  # raised below, outside this handler, so no exception carries the URL as context
                if status not in RETRY_STATUSES:
                    return self._unscored(kind, f"{last} (not retried)")
                if status == 429:
                    retry_after = _retry_after(err.resp)
            except (HttpLib2Error, OSError, TimeoutError) as err:
                last, kind = f"{type(err).__name__}: {scrub(str(err))}", "network"
            except _Malformed as err:
                return self._unscored("malformed response", f"malformed response ({err})")
            except ValueError as err:  # a body that is not JSON
                return self._unscored("malformed response", f"malformed response ({type(err).__name__})")
            if attempt == self.options.attempts:
                break
            delay = min(self.options.max_backoff, self.options.backoff * 2 ** (attempt - 1))
            delay = delay / 2 + random.uniform(0, delay / 2)  # "equal jitter": spread, but never ~0
            delay = max(delay, retry_after)
            if retry_after:
                self._limiter.pause(retry_after)
            log.debug("Perspective attempt %d failed (%s); retrying in %.2fs", attempt, last, delay)
            self._sleep(delay)
        if refused:
            raise ScorerError(
                f"Perspective refused the request ({last}); check {ENV_KEY} and that the Perspective API "
                "is enabled for its project"
            )
        return self._unscored(kind, f"{last} after {self.options.attempts} attempts")

    @staticmethod
    def _summary(response: Any) -> float:
        try:
            value = float(response["attributeScores"][ATTRIBUTE]["summaryScore"]["value"])
        except (KeyError, TypeError, ValueError):
            raise _Malformed("no attributeScores.TOXICITY.summaryScore.value") from None
        if not 0.0 <= value <= 1.0:
            raise _Malformed(f"score {value} outside [0, 1]")
        return value

    def _note_scored(self) -> None:
        today = datetime.now(timezone.utc).date().isoformat()
        with self._stats_lock:
            self._stats.scored += 1
            self._stats.first = self._stats.first or today
            self._stats.last = today

    def _unscored(self, kind: str, detail: str) -> None:
        with self._stats_lock:
            self._stats.unscored += 1
            self._stats.errors[kind] += 1
        log.warning("Perspective: a text is left unscored: %s", scrub(detail))
        return None

    @property
    def counts(self) -> dict[str, int]:
        with self._stats_lock:
            s = self._stats
            return {"requests": s.requests, "retries": s.retries, "scored": s.scored, "empty": s.empty,
                    "truncated": s.truncated, "unscored": s.unscored}

    def stats(self) -> dict[str, Any]:
        """Run-time counters (requests, retries, empty, truncated, unscored, errors): for logs, not results,
        since a re-run served from the cache sends nothing and would count differently."""
        with self._stats_lock:
            return {
                "requests": self._stats.requests, "retries": self._stats.retries, "scored": self._stats.scored,
                "empty": self._stats.empty, "truncated": self._stats.truncated,
                "unscored": self._stats.unscored, "errors": dict(self._stats.errors),
            }

    def provenance(self) -> dict[str, Any]:
        """Deterministic for the same texts: configuration and language handling, no run-time counters."""
        with self._stats_lock:
            fallback_used = dict(self._stats.fallback_used)
            dates = [self._stats.first, self._stats.last]
        handling = "languages=[<sample language>] sent with every request; unsupported languages refused"
        if fallback_used:
            handling = (
                "languages=[<sample language>] sent with every request; scored as another language: "
                + ", ".join(f"{src} as {dst}" for src, dst in sorted(fallback_used.items()))
            )
        return {
            **super().provenance(),
            "api": f"commentanalyzer {API_VERSION} (comments.analyze)",
            "api_version": API_VERSION,
            "scores_dated_utc": dates,
            "endpoint": _public_url(self.options.root_url),
            "language_handling": handling,
            "fallback": self.options.fallback,
            "fallback_used": fallback_used,
            "supported_languages_source": SUPPORTED_LANGUAGES_SOURCE,
            "max_text_bytes": MAX_TEXT_BYTES,
            "truncation": "texts over max_text_bytes are cut at a character boundary (see text_notes)",
            "empty_texts": "score 0.0 without a request",
            "do_not_store": True,
        }


def _retry_after(resp: Any) -> float:
    try:
        return max(0.0, float(resp.get("retry-after", 0)))
    except (TypeError, ValueError, AttributeError):
        return 0.0


def _public_url(url: str) -> str:
    """The endpoint without user info or query (a proxy URL may carry credentials)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return scrub(urlunsplit((parts.scheme, host, parts.path, "", "")))
