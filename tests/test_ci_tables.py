"""The table check a lab's CI runs (``tox -e tables``, ``.github/workflows/xdet-tables.yml``): the commands
of the tox environment, run as written on committed results, pass on fresh tables and fail on stale ones."""

from __future__ import annotations

import configparser
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from xdet.tables.paper import write_paper_results

ROOT = Path(__file__).resolve().parents[1]
XDET = Path(sys.executable).with_name("xdet")


def _tox_commands(env: dict[str, str]) -> list[list[str]]:
    """``[testenv:tables]`` commands with ``{env:NAME:default}`` filled from ``env`` (else the default)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "tox.ini", encoding="utf-8")
    lines = [line for line in parser["testenv:tables"]["commands"].splitlines() if line.strip()]
    fill = lambda m: env.get(m.group(1), m.group(2) or "")  # noqa: E731
    return [shlex.split(re.sub(r"\{env:(\w+)(?::([^}]*))?\}", fill, line)) for line in lines]


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    program = {"xdet": [str(XDET)], "pytest": [sys.executable, "-m", "pytest"]}[argv[0]]
    return subprocess.run([*program, *argv[1:]], capture_output=True, text=True, timeout=600, cwd=ROOT)


@pytest.fixture(scope="module")
def committed(tmp_path_factory) -> tuple[Path, Path]:
    """A lab's repository state: results (here the paper's own numbers as runs) and the tables made from them."""
    root = tmp_path_factory.mktemp("lab")
    metrics = yaml.safe_load((ROOT / "repro" / "tolerances.yaml").read_text(encoding="utf-8"))
    write_paper_results(root / "results", [3, 14], n_samples=4,
                        metrics={m: metrics[m]["metric"] for m in ("toxicity", "perplexity")})
    proc = _run(["xdet", "tables", str(root / "results"), "--out", str(root / "tables")])
    assert proc.returncode == 0, proc.stderr
    return root / "results", root / "tables"


def test_the_tox_environment_passes_on_fresh_tables_and_fails_on_stale_ones(committed):
    results, tables = committed
    check, repro = _tox_commands({"XDET_RESULTS": str(results), "XDET_TABLES": str(tables)})
    assert check[:2] == ["xdet", "tables"] and "--check" in check and repro[:2] == ["pytest", "-p"]
    first = _run(check)
    assert first.returncode == 0, first.stdout + first.stderr
    second = _run(repro)
    assert second.returncode == 0, second.stdout[-3000:]
    assert re.search(r"\b\d+ passed", second.stdout) and "exact mode" in second.stdout

    csv_file = next(p for p in sorted(tables.glob("*toxicity*.csv")))
    text = csv_file.read_text(encoding="utf-8")
    csv_file.write_text(text.replace(text.splitlines()[2].split(",")[1], "0.0000", 1), encoding="utf-8")
    stale = _run(check)
    assert stale.returncode == 1 and f"{csv_file}: differs (row " in stale.stdout, stale.stdout + stale.stderr


def test_the_workflow_runs_the_tox_environment():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "xdet-tables.yml").read_text(encoding="utf-8"))
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    (step,) = [s for s in steps if s.get("run") == "tox -e tables"]
    assert set(step["env"]) >= {"XDET_RESULTS", "XDET_TABLES"}
