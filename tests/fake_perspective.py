"""A local stand-in for Perspective's ``comments:analyze`` endpoint, for tests and the benchmark.

It listens on 127.0.0.1 on a free port, answers in Perspective's response format, and can add
latency, enforce a per-second quota (HTTP 429 past it, as a token bucket of one second's worth of
requests), inject 429/503 failures and hung requests (answered only after ``hang`` seconds, past a
client's timeout) from a seeded random generator, fail chosen texts on every attempt
(``fault_for_text``), and refuse what the real service refuses (a wrong key, unsupported languages,
texts over the byte limit). Every request is counted and logged (language, text, status) so tests
can assert on what the client actually sent.

The score of a text is a deterministic function of its bytes, so repeated runs agree.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ANALYZE_PATH = "/v1alpha1/comments:analyze"
#: ``fault_for_text`` result (and internal decision) for a request answered only after ``hang`` seconds.
HUNG = 0


def fake_score(text: str) -> float:
    """A deterministic pseudo-toxicity in [0, 1) derived from the text's hash."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big") / 2**32


@dataclass
class Logged:
    path: str
    status: int
    lang: str | None = None
    text: str | None = None
    do_not_store: bool | None = None
    time: float = 0.0
    hung: bool = False  # answered only after ``FakePerspective.hang`` seconds


@dataclass
class FakePerspective:
    """Configure, ``start()``, point ``PERSPECTIVE_API_URL`` at :attr:`url`, then ``stop()``."""

    key: str = "test-key"
    latency: float = 0.0
    qps: float | None = None  # quota; None = unlimited
    p429: float = 0.0  # injected, independent of the quota
    p503: float = 0.0
    fail_first: int = 0  # the first N requests get 503 (then normal service)
    p_hang: float = 0.0  # injected after p429 and p503 (one draw decides all three): a late answer
    hang: float = 1.0  # seconds a hung request waits before it is answered (normally)
    #: per-text fault on every attempt: an HTTP status to answer with, or HUNG; None = normal service
    fault_for_text: Callable[[str], int | None] | None = None
    seed: int = 0
    max_bytes: int = 3000
    languages: frozenset[str] = frozenset(
        {"ar", "cs", "de", "en", "es", "fr", "hi", "hi-Latn", "id", "it", "ja", "ko", "nl", "pl", "pt", "ru",
         "sv", "zh"}
    )
    log: list[Logged] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)
        self._tokens = float(self.qps or 0)
        self._refilled = time.monotonic()
        self._server: ThreadingHTTPServer | None = None
        self._quota_429s = 0

    def set_quota(self, qps: float | None) -> None:
        """Change the quota; the bucket starts full (one second's worth of requests)."""
        with self._lock:
            self.qps = qps
            self._tokens = float(qps or 0)
            self._refilled = time.monotonic()

    # ---- counters
    @property
    def requests(self) -> int:
        """All HTTP requests received (any path, any outcome)."""
        with self._lock:
            return len(self.log)

    def count(self, status: int | None = None, path: str = ANALYZE_PATH) -> int:
        with self._lock:
            return sum(1 for r in self.log if r.path == path and (status is None or r.status == status))

    @property
    def hung(self) -> int:
        """Requests answered late (after ``hang`` seconds)."""
        with self._lock:
            return sum(1 for r in self.log if r.hung)

    @property
    def quota_429s(self) -> int:
        """429s caused by exceeding the quota (not the injected ones)."""
        with self._lock:
            return self._quota_429s

    # ---- lifecycle
    @property
    def url(self) -> str:
        assert self._server is not None, "call start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> FakePerspective:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 - e.g. a discovery fetch: counted, refused
                fake._record(Logged(path=urlsplit(self.path).path, status=404, time=time.monotonic()))
                self._reply(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, payload, headers = fake._answer(self.path, raw)
                self._reply(status, payload, headers)

            def _reply(self, status: int, payload: dict, headers: dict | None = None) -> None:
                data = json.dumps(payload).encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout, killed)
                    self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True, name="fake-perspective").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakePerspective:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- behaviour
    def _record(self, entry: Logged) -> None:
        with self._lock:
            self.log.append(entry)

    def _take_token(self) -> bool:
        if not self.qps:
            return True
        now = time.monotonic()
        self._tokens = min(float(self.qps), self._tokens + (now - self._refilled) * self.qps)
        self._refilled = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def _answer(self, raw_path: str, raw: bytes) -> tuple[int, dict, dict]:
        arrived = time.monotonic()
        parts = urlsplit(raw_path)
        entry = Logged(path=parts.path, status=0, time=arrived)
        try:
            body = json.loads(raw.decode("utf-8") or "{}")
            entry.text = body.get("comment", {}).get("text")
            entry.lang = (body.get("languages") or [None])[0]
            entry.do_not_store = body.get("doNotStore")
        except (ValueError, AttributeError):
            body = None
        with self._lock:
            over_quota = not self._take_token()
            if over_quota:
                self._quota_429s += 1
            injected = self._rng.random()
            first = len([r for r in self.log if r.path == ANALYZE_PATH]) < self.fail_first
        forced = self.fault_for_text(entry.text) if self.fault_for_text and entry.text is not None else None
        status, payload, headers = self._decide(parts, body, over_quota, injected, first, forced)
        if status == HUNG:  # a slow service: the answer comes, but after the client's timeout
            entry.hung = True
            time.sleep(self.hang)
            status, payload, headers = self._decide(parts, body, False, 1.0, False, None)
        if self.latency:
            time.sleep(self.latency)
        entry.status = status
        self._record(entry)
        return status, payload, headers

    def _decide(self, parts, body, over_quota: bool, injected: float, first: bool,
                forced: int | None = None) -> tuple[int, dict, dict]:
        def error(code: int, status: str, message: str) -> tuple[int, dict, dict]:
            return code, {"error": {"code": code, "message": message, "status": status}}, {}

        if parts.path != ANALYZE_PATH:
            return error(404, "NOT_FOUND", f"no such method {parts.path}")
        if parse_qs(parts.query).get("key") != [self.key]:
            return error(403, "PERMISSION_DENIED", "API key not valid. Please pass a valid API key.")
        if over_quota:
            code, payload, _ = error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Analysis requests'")
            return code, payload, {}
        if first:
            return error(503, "UNAVAILABLE", "The service is currently unavailable.")
        if forced == HUNG:
            return HUNG, {}, {}
        if forced is not None:  # the message echoes the request (key included), as some servers do
            return error(forced, "UNAVAILABLE" if forced == 503 else "FORCED",
                         f"forced failure {forced} for {parts.path}?{parts.query}")
        if injected < self.p429:
            return error(429, "RESOURCE_EXHAUSTED", "injected rate limit")
        if injected < self.p429 + self.p503:
            return error(503, "UNAVAILABLE", "injected unavailability")
        if injected < self.p429 + self.p503 + self.p_hang:
            return HUNG, {}, {}
        if not isinstance(body, dict) or not isinstance(body.get("comment", {}).get("text"), str):
            return error(400, "INVALID_ARGUMENT", "comment.text is required")
        text = body["comment"]["text"]
        if not text.strip():
            return error(400, "INVALID_ARGUMENT", "COMMENT_EMPTY: Comment must be non-empty.")
        if len(text.encode("utf-8")) > self.max_bytes:
            return error(400, "INVALID_ARGUMENT", f"COMMENT_TOO_LONG: Comment must be at most {self.max_bytes} bytes")
        if set(body.get("requestedAttributes") or {}) != {"TOXICITY"}:
            return error(400, "INVALID_ARGUMENT", "only TOXICITY is served here")
        langs = body.get("languages") or []
        if not langs:
            return error(400, "INVALID_ARGUMENT", "this fake requires explicit languages")
        if langs[0] not in self.languages:
            return error(400, "INVALID_ARGUMENT",
                         f"LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE: Attribute TOXICITY does not support request "
                         f"languages: {langs[0]}")
        value = fake_score(text)
        return 200, {
            "attributeScores": {
                "TOXICITY": {
                    "spanScores": [{"begin": 0, "end": len(text),
                                    "score": {"value": value, "type": "PROBABILITY"}}],
                    "summaryScore": {"value": value, "type": "PROBABILITY"},
                }
            },
            "languages": langs,
            "detectedLanguages": langs,
        }, {}
