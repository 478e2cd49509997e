"""The Perspective backend against the real google-api-python-client, with no network.

Two kinds of double: googleapiclient's own HTTP mocks (HttpMockSequence, RequestMockBuilder) driving
the service built from our shipped discovery document, and a local HTTP server on 127.0.0.1 that
answers like Perspective (tests/fake_perspective.py) with latency, quota 429s and injected 503s.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from pathlib import Path

import pytest
import torch
from fake_perspective import ANALYZE_PATH, FakePerspective, fake_score
from googleapiclient.discovery import build_from_document
from googleapiclient.http import HttpMockSequence, RequestMockBuilder

from xdet_tasks.errors import ScorerError
from xdet_tasks.scoring.cache import CachedScorer, ScoreCache
from xdet_tasks.scoring.perspective import DISCOVERY_DOCUMENT, PerspectiveScorer
from xdet_tasks.scoring.perspective_options import (
    MAX_TEXT_BYTES,
    SUPPORTED_LANGUAGES,
    PerspectiveOptions,
    truncate_utf8,
)
from xdet_tasks.scoring.registry import build_scorer

KEY = "xdet-TEST-key-5c1e7a9d"
# Harmless sentences written for these tests (no dataset text in committed files).
TEXTS = {
    "de": ["Das Wetter ist heute schön.", "Der Zug kommt später an."],
    "es": ["La reunión empieza a las diez.", "Me gusta el café con leche."],
    "hi": ["आज मौसम अच्छा है।"],
    "en": ["The meeting starts at ten.", "Bring an umbrella tomorrow."],
}


def _ok(value: float, lang: str = "en") -> tuple[dict, str]:
    body = {"attributeScores": {"TOXICITY": {"summaryScore": {"value": value, "type": "PROBABILITY"}}},
            "languages": [lang]}
    return {"status": "200"}, json.dumps(body)


def _err(status: int) -> tuple[dict, str]:
    return {"status": str(status)}, json.dumps({"error": {"code": status, "message": f"fake {status}"}})


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv("PERSPECTIVE_API_KEY", KEY)
    for var in ("PERSPECTIVE_API_URL", "PERSPECTIVE_API_QPS", "XDET_PERSPECTIVE_FALLBACK",
                "PERSPECTIVE_API_MAX_ATTEMPTS", "PERSPECTIVE_API_BACKOFF", "PERSPECTIVE_API_WORKERS"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def fake(key_env, monkeypatch):
    server = FakePerspective(key=KEY).start()
    monkeypatch.setenv("PERSPECTIVE_API_URL", server.url)
    yield server
    server.stop()


def fast(**extra: str) -> PerspectiveOptions:
    """Options for tests: a high quota and millisecond backoff so retries cost no wall time."""
    env = {"PERSPECTIVE_API_QPS": "200", "PERSPECTIVE_API_BACKOFF": "0.002", **extra}
    import os

    env["PERSPECTIVE_API_URL"] = extra.get("PERSPECTIVE_API_URL", os.environ.get("PERSPECTIVE_API_URL", ""))
    return PerspectiveOptions.parse("", env={k: v for k, v in env.items() if v})


# ------------------------------------------------------------------ shipped discovery document
def test_discovery_document_describes_only_comments_analyze():
    doc = json.loads(DISCOVERY_DOCUMENT.read_text(encoding="utf-8"))
    assert (doc["name"], doc["version"]) == ("commentanalyzer", "v1alpha1")
    assert list(doc["resources"]) == ["comments"]
    assert list(doc["resources"]["comments"]["methods"]) == ["analyze"]
    service = build_from_document(doc, developerKey="k", http=HttpMockSequence([]))
    request = service.comments().analyze(body={"comment": {"text": "x"}})
    assert request.uri.startswith("https://commentanalyzer.googleapis.com/v1alpha1/comments:analyze?")
    assert request.method == "POST"


# ------------------------------------------------------------------ googleapiclient HTTP mocks
def test_http_mock_sequence_sends_language_and_retries_then_succeeds(key_env):
    responses = [_err(503), _err(429), _ok(0.25, "de"), _ok(0.75, "de")]
    mock = HttpMockSequence(responses)
    slept: list[float] = []
    opts = PerspectiveOptions.parse("workers=1,backoff=0.5,qps=1000", env={})
    scorer = PerspectiveScorer(opts, http_factory=lambda: mock, sleep=slept.append)
    scores = scorer.score(TEXTS["de"], "de")
    assert scores == [0.25, 0.75]
    assert len(mock.request_sequence) == 4
    for uri, method, body, _headers in mock.request_sequence:
        assert method == "POST"
        assert uri.startswith("https://commentanalyzer.googleapis.com/v1alpha1/comments:analyze?")
        assert f"key={KEY}" in uri  # the key is sent (and scrubbed everywhere else)
        sent = json.loads(body)
        assert sent["languages"] == ["de"]
        assert sent["doNotStore"] is True
        assert sent["requestedAttributes"] == {"TOXICITY": {}}
    assert [json.loads(b)["comment"]["text"] for _, _, b, _ in mock.request_sequence][2:] == TEXTS["de"]
    # two retries with exponential backoff and jitter: delay n in [b*2^(n-1)/2, b*2^(n-1)]
    backoffs = [s for s in slept if s >= 0.2]
    assert len(backoffs) == 2
    assert 0.25 <= backoffs[0] <= 0.5 and 0.5 <= backoffs[1] <= 1.0
    assert scorer.counts["retries"] == 2 and scorer.counts["requests"] == 4


def test_request_mock_builder_checks_exact_body_with_truncation(key_env):
    text = "a" + "€" * 1000  # 3001 bytes: the cut falls inside the last euro sign
    cut, truncated = truncate_utf8(text)
    assert truncated and cut == "a" + "€" * 999 and len(cut.encode()) <= MAX_TEXT_BYTES
    expected = {"comment": {"text": cut}, "requestedAttributes": {"TOXICITY": {}}, "languages": ["ru"],
                "doNotStore": True}
    builder = RequestMockBuilder(
        {"commentanalyzer.comments.analyze": (None, _ok(0.5, "ru")[1], expected)}, check_unexpected=True
    )
    scorer = PerspectiveScorer(PerspectiveOptions.parse("workers=1", env={}), request_builder=builder)
    assert scorer.score([text], "ru") == [0.5]
    assert scorer.counts["truncated"] == 1
    assert scorer.text_notes(text) == {"empty": False, "truncated": True}
    assert truncate_utf8("short") == ("short", False)


# ------------------------------------------------------------------ local fake server
def test_language_sent_per_sample_and_scores_returned(fake):
    scorer = PerspectiveScorer(fast())
    for lang, texts in TEXTS.items():
        assert scorer.score(texts, lang) == [fake_score(t) for t in texts]
    sent = {(r.text, r.lang) for r in fake.log}
    assert sent == {(t, lang) for lang, texts in TEXTS.items() for t in texts}
    assert all(r.do_not_store is True for r in fake.log)
    assert fake.count(path="/$discovery/rest") == 0 and all(r.path == ANALYZE_PATH for r in fake.log)


def test_amharic_refused_before_any_request_unless_explicit_fallback(fake):
    scorer = PerspectiveScorer(fast())
    with pytest.raises(ScorerError, match=r"'am'.*fallback=en"):
        scorer.score(["ሰላም ነው።"], "am")
    assert fake.requests == 0
    assert "am" not in SUPPORTED_LANGUAGES and "uk" not in SUPPORTED_LANGUAGES

    fallback = build_scorer("perspective:fallback=en,qps=200,backoff=0.002")
    assert fallback.score(["ሰላም ነው።"], "am") == [fake_score("ሰላም ነው።")]
    assert [r.lang for r in fake.log] == ["en"]
    prov = fallback.provenance()
    assert prov["fallback"] == "en" and prov["fallback_used"] == {"am": "en"}
    assert "am as en" in prov["language_handling"]
    assert fallback.cache_language("am") == "am>en" and fallback.cache_language("de") == "de"


def test_fallback_from_environment_and_bad_options(fake, monkeypatch):
    monkeypatch.setenv("XDET_PERSPECTIVE_FALLBACK", "en")
    assert PerspectiveOptions.parse("").fallback == "en"
    for spec, pattern in [("fallback=am", "not a language"), ("qps=0", "must be > 0"), ("qps=x", "not a float"),
                          ("colour=red", "unknown option"), ("qps", "name=value")]:
        with pytest.raises(ScorerError, match=pattern):
            PerspectiveOptions.parse(spec)


def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("PERSPECTIVE_API_KEY", raising=False)
    with pytest.raises(ScorerError, match="PERSPECTIVE_API_KEY"):
        PerspectiveScorer(PerspectiveOptions.parse("", env={}))


def test_empty_text_scores_zero_without_request_and_is_counted(fake):
    scorer = PerspectiveScorer(fast())
    assert scorer.score(["", "   ", TEXTS["en"][0]], "en") == [0.0, 0.0, fake_score(TEXTS["en"][0])]
    assert fake.requests == 1
    assert scorer.counts["empty"] == 2 and scorer.stats()["empty"] == 2


def test_long_text_is_truncated_and_accepted(fake):
    text = "Ein ruhiger Satz. " * 400  # ~7200 bytes; the fake refuses > 3000 bytes like the limit says
    scorer = PerspectiveScorer(fast())
    [value] = scorer.score([text], "de")
    sent = fake.log[0].text
    assert value == fake_score(sent) and fake.log[0].status == 200
    assert len(sent.encode()) <= MAX_TEXT_BYTES and text.startswith(sent)
    assert scorer.counts["truncated"] == 1


def test_injected_429_and_503_are_retried_until_success(fake):
    fake.p429, fake.p503, fake.latency = 0.2, 0.2, 0.01
    texts = [f"Satz Nummer {i}." for i in range(24)]
    scorer = PerspectiveScorer(fast(PERSPECTIVE_API_MAX_ATTEMPTS="16"))
    assert scorer.score(texts, "de") == [fake_score(t) for t in texts]
    assert fake.count(429) > 0 and fake.count(503) > 0
    assert scorer.counts["retries"] == fake.count(429) + fake.count(503)
    assert scorer.counts["unscored"] == 0


def test_retries_exhausted_leave_texts_unscored_never_zero(fake):
    fake.p503 = 1.0
    scorer = PerspectiveScorer(fast(PERSPECTIVE_API_MAX_ATTEMPTS="3"))
    texts = TEXTS["en"] + [""]
    assert scorer.score(texts, "en") == [None, None, 0.0]  # the empty one is 0.0 by rule, unsent
    assert fake.count(503) == 3 * 2
    assert scorer.counts["unscored"] == 2
    assert scorer.stats()["errors"] == {"HTTP 503": 2}


def test_wrong_key_fails_fast_with_a_clear_error(fake):
    fake.key = "another-key"
    scorer = PerspectiveScorer(fast())
    with pytest.raises(ScorerError, match="HTTP 403"):
        scorer.score(TEXTS["en"], "en")
    assert fake.requests <= len(TEXTS["en"])


def test_pacing_keeps_under_the_quota_with_concurrency(fake):
    fake.set_quota(40)
    fake.latency = 0.1
    texts = [f"Sentence {i}." for i in range(40)]
    scorer = PerspectiveScorer(PerspectiveOptions.parse("qps=40,backoff=0.002"))
    start = time.monotonic()
    assert scorer.score(texts, "en") == [fake_score(t) for t in texts]
    elapsed = time.monotonic() - start
    assert fake.quota_429s == 0
    assert 39 / 40 <= elapsed < 39 / 40 + 0.1 * 40 / 2  # paced, yet far faster than one at a time


def test_second_run_through_the_cache_sends_nothing(fake, tmp_path):
    scorer = CachedScorer(PerspectiveScorer(fast()), ScoreCache(tmp_path / "scores.sqlite3"))
    first = scorer.score(TEXTS["es"] + TEXTS["es"][:1], "es")
    sent = fake.requests
    assert sent == 2  # the repeated text is sent once
    assert scorer.score(TEXTS["es"], "es") == first[:2]
    assert fake.requests == sent


def test_key_never_reaches_logs_exceptions_or_files(fake, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("googleapiclient.discovery").setLevel(logging.DEBUG)
    fake.p503 = 1.0
    cache_path = tmp_path / "scores.sqlite3"
    scorer = CachedScorer(PerspectiveScorer(fast(PERSPECTIVE_API_MAX_ATTEMPTS="2")), ScoreCache(cache_path))
    assert scorer.score(TEXTS["de"], "de") == [None, None]  # warnings logged with the failing URL's error
    fake.p503 = 0.0
    assert None not in scorer.score(TEXTS["de"], "de")  # now scored and cached
    fake.key = "rotated"
    traces = []
    try:
        PerspectiveScorer(fast()).score(TEXTS["en"], "en")
    except ScorerError as err:
        assert err.__context__ is None and err.__cause__ is None  # no HttpError (URL with key) attached
        traces.append("".join(traceback.format_exception(err)))
        logging.getLogger("xdet_tasks.scoring.perspective").exception("logged failure")
    assert traces, "the 403 must raise"
    (tmp_path / "provenance.json").write_text(json.dumps(scorer.provenance()))
    assert any("URL being requested" in r.getMessage() for r in caplog.records), "expected client debug logs"
    captured = capsys.readouterr()
    blobs = [caplog.text, captured.out, captured.err, *traces, *(r.getMessage() for r in caplog.records)]
    assert not [b for b in blobs if KEY in b]
    for path in Path(tmp_path).rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


# ------------------------------------------------------------------ through lm-eval (the task's filter)
def _evaluate(model: Path) -> dict:
    """``xdet_toxic_test_de`` through lm-eval on the tiny model, only xdet's tasks indexed (fast)."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from xdet_tasks import TASK_DIR

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model on a 2-core box shared by two xdist workers
    try:
        return lm_eval.simple_evaluate(
            model="hf", model_args=f"pretrained={model}", tasks=["xdet_toxic_test_de"], limit=5, batch_size=8,
            device="cpu", log_samples=True, bootstrap_iters=0,
            task_manager=TaskManager(include_path=str(TASK_DIR), include_defaults=False),
        )
    finally:
        torch.set_num_threads(threads)


def _provenance(results: dict) -> dict:
    from xdet_tasks.scoring.completions import parse_provenance

    return parse_provenance(str(results["configs"]["xdet_toxic_test_de"]["filter_list"][0]["filter"][0]["provenance"]))


@pytest.fixture
def task_env(fake, tmp_path, monkeypatch):
    import xdet_tasks.scoring as scoring

    monkeypatch.setenv("XDET_CACHE_DIR", str(tmp_path / "cache"))  # a cache of this test's own
    monkeypatch.setenv("XDET_SCORER", "perspective")
    monkeypatch.setenv("PERSPECTIVE_API_QPS", "200")
    monkeypatch.setenv("PERSPECTIVE_API_BACKOFF", "0.002")
    monkeypatch.delenv("XDET_ALLOW_UNSCORED", raising=False)
    monkeypatch.setattr(scoring, "_ACTIVE", {})
    return scoring


def test_task_rerun_makes_zero_perspective_requests(task_env, fake, tiny_model, tmp_path, monkeypatch):
    model = tiny_model("llama")
    first_results = _evaluate(model)
    first = fake.count()
    assert 0 < first <= 5 and {r.lang for r in fake.log} == {"de"}
    first_provenance = _provenance(first_results)  # printed now, from the scorer that sent the requests
    monkeypatch.setattr(task_env, "_ACTIVE", {})  # as a fresh process would start
    second_results = _evaluate(model)
    assert fake.count() == first, "the second run must be answered from the score cache"
    tox = [r["results"]["xdet_toxic_test_de"] for r in (first_results, second_results)]
    assert tox[0]["avg_toxicity,toxicity"] == tox[1]["avg_toxicity,toxicity"]
    assert tox[1]["unscored,toxicity"] == 0
    provenance = _provenance(second_results)
    assert (provenance["backend"], provenance["version"]) == ("perspective", "v1alpha1")
    assert "language_handling" in provenance and "scores_dated_utc" in provenance
    assert first_provenance == provenance, "provenance must not depend on whether scores came from the cache"
    assert task_env.get_scorer().stats()["hits"] == first
    dumped = json.dumps(second_results, default=str) + json.dumps(first_results, default=str)
    assert KEY not in dumped
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_task_with_all_requests_failing_raises_unscored(task_env, fake, tiny_model, monkeypatch):
    from xdet_tasks.errors import UnscoredError

    monkeypatch.setenv("PERSPECTIVE_API_MAX_ATTEMPTS", "2")
    fake.p503 = 1.0
    with pytest.raises(UnscoredError, match="could not be scored") as info:
        _evaluate(tiny_model("llama"))
    assert info.value.unscored == fake.count(503) // 2 > 0  # two attempts per completion, then unscored
    assert fake.count(200) == 0
