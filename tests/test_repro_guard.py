"""``pytest repro --results DIR`` must compare something: results that cover no paper table fail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from xdet.runs.writer import write_run
from xdet.tables.paper import write_paper_results

ROOT = Path(__file__).resolve().parents[1]


def _repro(results: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(ROOT / "repro"), "--results",
         str(results), *args],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )


def test_results_of_another_model_compare_nothing_and_fail(tmp_path):
    write_run(tmp_path / "results" / "zs", model="someone/other-model", strategy="zs",
              samples={"xdet_toxic_test_de": {"avg_toxicity": [10.0, 30.0]}})
    proc = _repro(tmp_path / "results", "-k", "cover")
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "0 cells compared with the paper" in proc.stdout
    assert "aya-expanse-8B" in proc.stdout and "someone/other-model" not in proc.stdout.split("found")[0]


def test_the_paper_own_numbers_pass(tmp_path):
    write_paper_results(tmp_path / "results", [3, 15], n_samples=2)
    proc = _repro(tmp_path / "results", "-k", "cover or test_table_within_tolerance", "-v")
    assert proc.returncode == 0, proc.stdout[-3000:]
    for test in ("test_results_cover_a_paper_table", "test_table_within_tolerance[3]", "test_table_within_tolerance[15]"):
        assert f"{test} PASSED" in proc.stdout, test
