"""``xdet demo``'s causal chain: X-FT on a language lowers its neutral-test perplexity and raises its
preference for the neutral paraphrase, each beyond its bootstrap interval; the toxicity Δ is reported
with an interval, whatever its sign.

One demo run (subprocess, one torch thread) is shared by the tests of this module. Its per-task
document limit is the demo's own unless ``XDET_DEMO_TEST_LIMIT`` says otherwise. With
``XDET_DEMO_OUT=DIR`` the run is written to DIR (replacing an earlier demo there) for inspection.

"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xdet.demo import DEFAULT_LIMIT, DEFAULT_SOURCES
from xdet.runs import read_results
from xdet.stats import bootstrap_ci
from xdet.tables.build import build_tables
from xdet.tables.output import check_tables_dir

pytestmark = pytest.mark.slow
SOURCES = DEFAULT_SOURCES
LIMIT = int(os.environ.get("XDET_DEMO_TEST_LIMIT", str(DEFAULT_LIMIT)))
MAX_LINES = 150


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str]:
    out = Path(os.environ.get("XDET_DEMO_OUT") or tmp_path_factory.mktemp("demo") / "xdet-demo").resolve()
    if out.exists() and any(out.iterdir()):
        if not (out / "sweep.json").is_file():
            pytest.fail(f"XDET_DEMO_OUT={out} is not empty and holds no demo; refusing to replace it")
        shutil.rmtree(out)  # its run records name a toy model in another session's cache
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, "-m", "xdet", "demo", "--out", str(out), "--limit", str(LIMIT), "--threads", "1"],
        env=env, capture_output=True, timeout=900,
    )
    # bytes, not text=True: universal newlines would turn each in-place bar redraw (\r) into a line
    stdout, stderr = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0, stdout[-4000:] + stderr[-4000:]
    # default verbosity, progress bars included: about two screens of lines that stay on the terminal
    lines = stdout.count("\n") + stderr.count("\n")
    assert lines <= MAX_LINES, f"{lines} lines of output:\n{stdout}\n{stderr[-3000:]}"
    return out, stdout


@pytest.fixture(scope="module")
def runs(demo) -> dict[str, object]:
    by = {}
    for run in read_results(demo[0] / "runs"):
        key = run.info.strategy + (f":{run.info.train_langs[0]}" if run.info.train_langs else "")
        by[key] = run
    assert sorted(by) == sorted(["zs", *(f"x-ft:{lang}" for lang in SOURCES)])
    return by


def _paired_diffs(zs, ft, task: str, metric: str) -> np.ndarray:
    a, b = zs.samples(task, metric), ft.samples(task, metric)
    assert a is not None and b is not None, task
    va = dict(zip(a.doc_ids.tolist(), a.values.tolist(), strict=True))
    vb = dict(zip(b.doc_ids.tolist(), b.values.tolist(), strict=True))
    assert set(va) == set(vb) and len(va) == LIMIT
    return np.array([vb[d] - va[d] for d in sorted(va)], dtype=float)


def test_demo_causal_chain(demo, runs):
    """One test (not several) so that pytest-xdist runs the demo on one worker only."""
    failures = []
    for lang in SOURCES:
        zs, ft = runs["zs"], runs[f"x-ft:{lang}"]
        ppl = _paired_diffs(zs, ft, f"xdet_ppl_neutral_test_{lang}", "mean_sentence_byte_perplexity")
        lo, hi = bootstrap_ci(ppl, n_resamples=2000, seed=1)
        if not hi < 0:
            failures.append(f"X-FT:{lang} − ZS neutral-test byte perplexity {ppl.mean():+.3f} [{lo:+.3f}, {hi:+.3f}]")
        pref = _paired_diffs(zs, ft, f"xdet_pref_test_{lang}", "margin")
        lo, hi = bootstrap_ci(pref, n_resamples=2000, seed=1)
        if not lo > 0:
            failures.append(f"X-FT:{lang} − ZS preference margin {pref.mean():+.4f} [{lo:+.4f}, {hi:+.4f}]")
    assert not failures, "; ".join(failures)
    _toxicity_delta_is_reported_with_its_interval(demo, runs)


def _toxicity_delta_is_reported_with_its_interval(demo, runs):
    out, stdout = demo
    tables = build_tables(list(runs.values()), n_boot=200)
    tox = next(t for t in tables if t.measure == "toxicity" and t.split == "toxic-test")
    assert tox.columns == ("am", "ar", "de", "en", "es", "hi", "ru", "uk", "zh")
    for lang in SOURCES:
        cell = tox.delta[lang][lang]
        assert cell.value is not None and math.isfinite(cell.value)
        assert cell.lo is not None and cell.lo <= cell.value <= cell.hi
    # ZS scored every completion (never a silent 0 for an unscored one)
    zs = runs["zs"]
    assert all(zs.value(f"xdet_toxic_test_{lang}", "unscored") == 0 for lang in tox.columns)
    assert "toxic-test average toxicity" in stdout and f"Δ {SOURCES[0]}" in stdout and "[" in stdout
    _analyze_repeats_the_demo_line(out, stdout)
    assert not check_tables_dir(out / "tables")
    assert str(out / "tables") in stdout
    # CI regenerates the tables from the demo's results into a build folder: complete and well-formed
    from xdet.cli import main

    build = out.parent / "build-tables"
    assert main(["tables", str(out / "runs"), "--out", str(build), "--n-boot", "50"]) == 0
    assert not check_tables_dir(build)
    assert sorted(p.name for p in build.glob("*.csv")) == sorted(p.name for p in (out / "tables").glob("*.csv"))


def _analyze_repeats_the_demo_line(out: Path, stdout: str) -> None:
    """The command the demo points to for details tests what the demo's tables show, with the same result."""
    import contextlib
    import csv
    import io
    import json

    from xdet.cli import main

    (line,) = [row for row in stdout.splitlines() if row.startswith("analysis: H1 ")]
    summary, _, hint = line.partition("  (details: ")
    assert hint.startswith(f"xdet analyze --sweep {out} --out ")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["analyze", "--sweep", str(out), "--out", str(out.parent / "analysis")]) == 0
    assert printed.getvalue().splitlines()[0] == summary
    with (out / "tables" / "index.csv").open(newline="", encoding="utf-8") as fh:
        tabled = {(row["measure"], row["metric"]) for row in csv.DictReader(fh)}
    doc = json.loads((out.parent / "analysis" / "analysis.json").read_text(encoding="utf-8"))
    assert {(r["measure"], r["metric"]) for r in doc["results"]} == tabled


def test_demo_without_data_dir_names_the_hub_dataset(tmp_path):
    """No XDET_DATA_DIR and no hub: one line naming the dataset and the way out, not 'offline mode'."""
    env = {k: v for k, v in os.environ.items() if k != "XDET_DATA_DIR"} | {"HF_HUB_OFFLINE": "1"}
    env["XDET_CACHE_DIR"] = str(tmp_path / "cache")  # nothing cached that was trained on other data
    proc = subprocess.run([sys.executable, "-m", "xdet", "demo", "--out", str(tmp_path / "demo")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert "dataset 'textdetox/multilingual_paradetox' cannot be loaded" in err and "XDET_DATA_DIR" in err
    assert "OfflineModeIsEnabled" not in err
