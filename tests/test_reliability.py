"""Reliability and security proofs against a local fake Perspective (issue 7, items 2-4).

* Faults: seeded 429/503/hung requests during a real ``xdet eval`` change nothing in the results;
  faults that outlast the retries give exit 2 with the unscored count, or (``XDET_ALLOW_UNSCORED=1``)
  a results file whose unscored prompts carry no toxicity value.
* Crash-safety of scoring: a scoring process SIGKILLed at seeded random moments and resumed ends with
  the same cache and scores as an uninterrupted run; each resumed run sends only what is missing.
* Secrets: a recognisable fake key, through every Perspective path, appears in no output and no file.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch
from fake_perspective import ANALYZE_PATH, FakePerspective, fake_score

import xdet_tasks.scoring as scoring
from xdet.cli import main
from xdet.runs.record import RUN_FILE
from xdet.runs.record import read_run_record as read_run
from xdet_tasks.errors import ScorerError
from xdet_tasks.scoring.cache import CachedScorer, ScoreCache, text_hash
from xdet_tasks.scoring.completions import parse_record
from xdet_tasks.scoring.perspective import PerspectiveScorer
from xdet_tasks.scoring.perspective_options import PerspectiveOptions

ROOT = Path(__file__).resolve().parents[1]
#: Random per session, so a leak cannot hide behind a value some file happens to contain.
KEY = "XDETFAKEKEY-" + secrets.token_hex(12)
TASK = "xdet_toxic_test_de"
LIMIT = 6
#: One spec for every run here: tiny backoff ceiling so a long streak of faults costs milliseconds.
SPEC = "perspective:max_backoff=0.05"
TOX_METRICS = ("avg_toxicity", "toxic_rate", "exp_max_toxicity", "unscored")


# ------------------------------------------------------------------ helpers
@pytest.fixture
def perspective_env(monkeypatch):
    """The fake key and fast client settings; nothing allowed unscored unless a test says so."""
    monkeypatch.setenv("PERSPECTIVE_API_KEY", KEY)
    monkeypatch.setenv("PERSPECTIVE_API_QPS", "200")
    monkeypatch.setenv("PERSPECTIVE_API_BACKOFF", "0.005")
    monkeypatch.setenv("PERSPECTIVE_API_TIMEOUT", "5")
    monkeypatch.setenv("PERSPECTIVE_API_WORKERS", "4")
    for var in ("XDET_ALLOW_UNSCORED", "XDET_PERSPECTIVE_FALLBACK", "PERSPECTIVE_API_MAX_ATTEMPTS",
                "XDET_SCORER_CACHE"):
        monkeypatch.delenv(var, raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model on a 2-core box shared by two xdist workers
    yield
    torch.set_num_threads(threads)


def xdet_eval(model: Path, out: Path, fake: FakePerspective, cache: Path, monkeypatch, *,
              verbose: bool = False, **env: str) -> int:
    """``xdet [-v] eval`` in-process as a fresh process would run it: its own cache, scorer and server."""
    monkeypatch.setenv("XDET_CACHE_DIR", str(cache))
    monkeypatch.setenv("PERSPECTIVE_API_URL", fake.url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(scoring, "_ACTIVE", {})  # the process-wide scorer is built anew
    argv = ["-v"] if verbose else []
    argv += ["eval", "--model", str(model), "--out", str(out), "--tasks", TASK, "--limit", str(LIMIT),
             "--seed", "7", "--scorer", SPEC]
    return main(argv)


def load_samples(run: Path) -> list[dict]:
    (path,) = run.glob(f"lm_eval/**/samples_{TASK}_*.jsonl")
    return sorted((json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()),
                  key=lambda s: s["doc_id"])


def records(sample: dict) -> list[dict]:
    """The scored-completion records of one sample line (``filtered_resps``, however nested)."""
    out: list[dict] = []
    stack = [sample["filtered_resps"]]
    while stack:
        item = stack.pop(0)
        if isinstance(item, list):
            stack[:0] = item
        else:
            out.append(parse_record(item))
    return out


def toxicity_view(run: Path) -> tuple[dict, list]:
    """Aggregates (``*,toxicity`` keys) and per-sample (completions, per-completion scores, metrics)."""
    info = read_run(run)
    assert info is not None, f"{run} holds no complete run"
    results = json.loads((run / info["results_file"]).read_text(encoding="utf-8"))["results"][TASK]
    aggregates = {k: v for k, v in results.items() if k.endswith(",toxicity")}
    per_sample = [
        (s["doc_id"], [(r["text"], r["toxicity"]) for r in records(s)], {m: s.get(m) for m in TOX_METRICS})
        for s in load_samples(run)
    ]
    return aggregates, per_sample


def scored_texts(fake: FakePerspective) -> set[str]:
    """Texts the fake answered 200 in time (a hung request's late answer reaches no one)."""
    return {r.text for r in fake.log if r.path == ANALYZE_PATH and r.status == 200 and not r.hung}


def assert_key_nowhere(root: Path, *outputs: str) -> None:
    """The key (or its random part) is in no captured text and in no file under ``root``."""
    secret_part = KEY.split("-", 1)[1]
    printed = [line for text in outputs for line in text.splitlines() if secret_part in line]
    assert not printed, f"the API key was printed or logged: {printed[:3]}"
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files, f"nothing written under {root}"
    leaks = [p for p in files if secret_part.encode() in p.read_bytes()]
    assert not leaks, f"the API key was written to {leaks}"


class FailFirstTexts:
    """``fault_for_text``: the first ``n`` distinct texts the server sees fail with 503 on every attempt."""

    def __init__(self, n: int):
        self.n, self.failing = n, set()
        self._lock = threading.Lock()

    def __call__(self, text: str) -> int | None:
        with self._lock:
            if text not in self.failing and len(self.failing) < self.n:
                self.failing.add(text)
            return 503 if text in self.failing else None


# ------------------------------------------------------------------ 2. faults
@pytest.mark.slow
def test_random_429_503_and_timeouts_leave_results_identical(perspective_env, tiny_model, tmp_path, monkeypatch,
                                                              capfd):
    model = tiny_model("llama")
    with FakePerspective(key=KEY) as clean:
        assert xdet_eval(model, tmp_path / "clean", clean, tmp_path / "cache-clean", monkeypatch) == 0
    # seed 21 draws 429, ok, hang, 503 first: every fault kind occurs whatever the thread interleaving
    with FakePerspective(key=KEY, p429=0.25, p503=0.25, p_hang=0.15, hang=0.8, seed=21) as faulty:
        rc = xdet_eval(model, tmp_path / "faulty", faulty, tmp_path / "cache-faulty", monkeypatch,
                       PERSPECTIVE_API_TIMEOUT="0.3", PERSPECTIVE_API_MAX_ATTEMPTS="60")
        assert rc == 0
        assert faulty.count(429) > 0 and faulty.count(503) > 0 and faulty.hung > 0, "faults were injected"
    clean_agg, clean_samples = toxicity_view(tmp_path / "clean")
    faulty_agg, faulty_samples = toxicity_view(tmp_path / "faulty")
    assert faulty_samples == clean_samples
    assert faulty_agg == clean_agg
    assert clean_agg["unscored,toxicity"] == 0 and clean_agg["avg_toxicity,toxicity"] is not None
    # the run record names when the scores were made, so it is written after scoring, not before
    record = read_run(tmp_path / "clean")
    assert record["scorer"]["scores_dated_utc"] and None not in record["scorer"]["scores_dated_utc"], record["scorer"]
    texts = {t for _, recs, _ in clean_samples for t, _ in recs if t.strip()}
    assert len(texts) >= 4
    # the faulty run really scored through the server (its cache was empty), every text in time once
    assert scored_texts(clean) == scored_texts(faulty) == texts
    for _, recs, _ in faulty_samples:
        assert all(tox == (fake_score(t) if t.strip() else 0.0) for t, tox in recs)
    out, err = capfd.readouterr()
    assert_key_nowhere(tmp_path, out, err)


@pytest.mark.slow
def test_faults_outlasting_retries_exit_2_or_report_unscored(perspective_env, tiny_model, tmp_path, monkeypatch,
                                                             capfd):
    model, cache = tiny_model("llama"), tmp_path / "cache"
    failing = FailFirstTexts(2)
    with FakePerspective(key=KEY, p503=0.2, seed=5, fault_for_text=failing) as fake:
        # 6 attempts: the random 503s (seeded) are outlasted, the two failing texts' faults are not
        rc = xdet_eval(model, tmp_path / "strict", fake, cache, monkeypatch, PERSPECTIVE_API_MAX_ATTEMPTS="6")
        first_log = list(fake.log)
        _, err = capfd.readouterr()
        assert rc == 2, err
        match = re.search(r"xdet eval: error: (\d+) of (\d+) completions could not be scored", err)
        assert match, err
        assert not (tmp_path / "strict" / RUN_FILE).exists(), "a failed run must not look complete"
        assert len(failing.failing) == 2
        assert all(r.status == 503 for r in first_log if r.text in failing.failing)

        # The same run allowed to finish: the unscored completions are reported, never as 0.
        rc = xdet_eval(model, tmp_path / "allowed", fake, cache, monkeypatch, PERSPECTIVE_API_MAX_ATTEMPTS="6",
                       XDET_ALLOW_UNSCORED="1")
        out, err2 = capfd.readouterr()
        assert rc == 0, err2
        assert re.search(rf"{match[1]} of {match[2]} completions could not be scored", err2), "not silent"
        # what the first run scored came from the cache: only the failing texts were sent again
        assert {r.text for r in fake.log[len(first_log):]} == failing.failing
    aggregates, samples = toxicity_view(tmp_path / "allowed")
    unscored = [(doc, recs, metrics) for doc, recs, metrics in samples if any(t is None for _, t in recs)]
    n_unscored = sum(t is None for _, recs, _ in samples for _, t in recs)
    assert n_unscored == int(match[1]) > 0 and int(match[2]) == LIMIT
    assert {text for _, recs, _ in samples for text, t in recs if t is None} == failing.failing
    assert aggregates["unscored,toxicity"] == n_unscored
    for _doc, recs, metrics in unscored:
        assert metrics["unscored"] == sum(t is None for _, t in recs)
        assert all(metrics[m] is None for m in ("avg_toxicity", "toxic_rate", "exp_max_toxicity"))
    scored = [metrics["avg_toxicity"] for _, recs, metrics in samples if all(t is not None for _, t in recs)]
    assert scored and len(scored) + len(unscored) == LIMIT
    assert aggregates["avg_toxicity,toxicity"] == pytest.approx(sum(scored) / len(scored))
    for _, recs, _ in samples:
        assert all(tox is None or tox == (fake_score(t) if t.strip() else 0.0) for t, tox in recs)
    assert_key_nowhere(tmp_path, err, out, err2)


# ------------------------------------------------------------------ 3. crash-safety of scoring
_SCORER_PROCESS = textwrap.dedent(
    """
    import json, sys
    from xdet_tasks.scoring.cache import CachedScorer, ScoreCache
    from xdet_tasks.scoring.perspective import PerspectiveScorer

    texts = json.loads(open(sys.argv[2], encoding="utf-8").read())
    scorer = CachedScorer(PerspectiveScorer(), ScoreCache(sys.argv[1]))
    print("ready", flush=True)
    print(json.dumps(scorer.score(texts, "de")), flush=True)
    """
)


def _snapshot(db: Path) -> dict[str, float]:
    """``{text_sha256: score}`` of the cache, after checking the file is sound and keys are unique."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT backend, version, attribute, lang, text_sha256, score FROM scores").fetchall()
    finally:
        conn.close()
    assert {r[:4] for r in rows} <= {("perspective", "v1alpha1", "TOXICITY", "de")}
    snapshot = {r[4]: r[5] for r in rows}
    assert len(snapshot) == len(rows), "duplicated cache rows"
    return snapshot


@pytest.mark.slow
def test_scoring_killed_at_random_points_resumes_to_the_uninterrupted_result(perspective_env, tmp_path):
    texts = [f"Satz Nummer {i} über das Wetter in Stadt {i % 17}." for i in range(300)]
    texts += texts[:10] + ["", "   "]  # duplicates are sent once; empty texts are 0.0 without a request
    batch = tmp_path / "texts.json"
    batch.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    expected = {text_hash(t): (fake_score(t) if t.strip() else 0.0) for t in texts}

    with FakePerspective(key=KEY) as fake:  # the uninterrupted reference, in this process
        opts = PerspectiveOptions.parse("workers=8,qps=1000,backoff=0.005", env={"PERSPECTIVE_API_URL": fake.url})
        reference = CachedScorer(PerspectiveScorer(opts), ScoreCache(tmp_path / "reference.sqlite3"))
        reference_scores = reference.score(texts, "de")
        reference.cache.close()
    assert reference_scores == [expected[text_hash(t)] for t in texts]
    assert _snapshot(tmp_path / "reference.sqlite3") == expected

    db = tmp_path / "resumed.sqlite3"
    env = {**os.environ, "PERSPECTIVE_API_KEY": KEY, "PERSPECTIVE_API_QPS": "500", "PERSPECTIVE_API_WORKERS": "2",
           "PERSPECTIVE_API_BACKOFF": "0.005", "PERSPECTIVE_API_MAX_ATTEMPTS": "20"}
    rng = random.Random(1234)
    kills, progressed, attempt, final = 0, 0, 0, None
    while final is None:
        attempt += 1
        assert attempt <= 40, "the scoring never completed"
        before = _snapshot(db) if db.exists() else {}
        # latency makes ~100 texts/s: a kill lands mid-batch; seeded 503s put some kills inside retries
        with FakePerspective(key=KEY, latency=0.02, p503=0.1, seed=attempt) as fake:
            proc = subprocess.Popen(
                [sys.executable, "-c", _SCORER_PROCESS, str(db), str(batch)], cwd=ROOT, text=True,
                env=env | {"PERSPECTIVE_API_URL": fake.url}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )
            try:
                assert proc.stdout.readline().strip() == "ready"
                if kills < 12:
                    time.sleep(rng.uniform(0.0, 0.3))
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGKILL)
                stdout, _ = proc.communicate(timeout=120)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            sent = {text_hash(r.text) for r in fake.log if r.path == ANALYZE_PATH}
        after = _snapshot(db)
        # nothing committed is lost or changed, nothing wrong is stored, and only misses were sent
        assert before.items() <= after.items()
        assert all(expected[h] == v for h, v in after.items())
        assert sent.isdisjoint(before), "a resumed run re-sent texts already in the cache"
        if proc.returncode == -signal.SIGKILL:
            kills += 1
            progressed += 0 < len(after) - len(before) and len(after) < len(expected)
        else:
            assert proc.returncode == 0
            final = json.loads(stdout.strip().splitlines()[-1])
            assert sent == set(expected) - set(before) - {text_hash(""), text_hash("   ")}
    assert kills >= 10 and progressed >= 5, (kills, progressed)
    assert final == reference_scores
    assert _snapshot(db) == _snapshot(tmp_path / "reference.sqlite3")
    assert_key_nowhere(tmp_path)


# ------------------------------------------------------------------ 4. secrets
@pytest.mark.slow
def test_key_appears_in_no_output_or_file_on_any_perspective_path(perspective_env, tiny_model, tmp_path,
                                                                  monkeypatch, capfd):
    model = tiny_model("llama")
    outputs: list[str] = []

    def run(name: str, fake: FakePerspective, **env: str) -> int:
        rc = xdet_eval(model, tmp_path / name, fake, tmp_path / f"cache-{name}", monkeypatch, verbose=True, **env)
        outputs.extend(capfd.readouterr())
        return rc

    with FakePerspective(key=KEY, p429=0.3, p503=0.3, seed=3) as fake:  # success after retries, -v
        assert run("retries", fake, PERSPECTIVE_API_MAX_ATTEMPTS="40") == 0
        assert fake.count(429) and fake.count(503) and fake.count(200)
    debug = outputs[-1]
    assert "URL being requested: POST" in debug and "key=<redacted>" in debug, "request URLs are logged, scrubbed"
    assert fake.count(path="/$discovery/rest") == 0 and all(r.path == ANALYZE_PATH for r in fake.log)

    with FakePerspective(key=KEY, p503=1.0) as fake:  # retries exhausted
        assert run("exhausted", fake, PERSPECTIVE_API_MAX_ATTEMPTS="2") == 2
    assert "could not be scored" in outputs[-1] and "HTTP 503" in outputs[-1]
    with FakePerspective(key=KEY, fault_for_text=lambda text: 400) as fake:  # refused request, not retried
        assert run("refused", fake, XDET_ALLOW_UNSCORED="1") == 0
    assert "HTTP 400" in outputs[-1] and "not retried" in outputs[-1]
    for status, fake in ((403, FakePerspective(key="another-" + KEY[::-1])),  # wrong key
                         (401, FakePerspective(key=KEY, fault_for_text=lambda text: 401))):
        with fake:
            assert run(f"auth{status}", fake) == 2
        assert f"Perspective refused the request (HTTP {status}" in outputs[-1]

    # the same refusal raised through the Python API: the whole traceback, chained exceptions included
    import traceback

    from xdet.evaluate import run_eval

    with FakePerspective(key="rotated") as fake:
        monkeypatch.setenv("PERSPECTIVE_API_URL", fake.url)
        monkeypatch.setattr(scoring, "_ACTIVE", {})
        with pytest.raises(ScorerError) as info:
            run_eval(str(model), tmp_path / "api", tasks=[TASK], limit=2, scorer=SPEC)
    trace = "".join(traceback.format_exception(info.value))
    assert "HTTP 403" in trace
    outputs.append(trace)
    outputs.extend(capfd.readouterr())
    assert_key_nowhere(tmp_path, *outputs)


def test_key_appears_nowhere_after_a_sweep_and_a_scorer_agreement(perspective_env, tiny_model, tmp_path,
                                                                   monkeypatch, capfd):
    """The other commands that talk to Perspective: ``xdet -v sweep`` and ``xdet -v scorer agree``."""
    monkeypatch.setenv("XDET_CACHE_DIR", str(tmp_path / "cache"))
    with FakePerspective(key=KEY, p429=0.2, seed=5) as fake:
        monkeypatch.setenv("PERSPECTIVE_API_URL", fake.url)
        monkeypatch.setattr(scoring, "_ACTIVE", {})
        sweep = ["-v", "sweep", "--model", str(tiny_model("llama")), "--out", str(tmp_path / "sweep"),
                 "--strategies", "zs", "--eval-langs", "de", "--families", "gen", "--limit", "3",
                 "--scorer", SPEC, "--n-boot", "20", "--no-progress", "--no-tables"]
        assert main(sweep) == 0
        (samples,) = (tmp_path / "sweep" / "runs").glob(f"**/samples_{TASK}_*.jsonl")
        monkeypatch.setattr(scoring, "_ACTIVE", {})
        agree = ["-v", "scorer", "agree", SPEC, "local", "--samples", str(samples), "--json", str(tmp_path / "agree.json")]
        assert main(agree) == 0
        assert fake.count(200) > 0
    report = json.loads((tmp_path / "agree.json").read_text())
    assert report["a"]["backend"] == "perspective" and report["b"]["backend"] == "local"
    assert_key_nowhere(tmp_path, *capfd.readouterr())
