"""Plain ``lm_eval`` output is a first-class input: the README's headline command for a zero-shot run and
two adapters gives the same tables as ``xdet eval`` folders of the same runs, and feeds ``xdet analyze``,
``pytest repro`` and the CI table check (``xdet tables --check``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xdet.cli import main
from xdet.runs import read_results
from xdet_tasks import TASK_DIR
from xdet_train.config import TrainConfig
from xdet_train.train import train_adapter

ROOT = Path(__file__).resolve().parents[1]
TASKS = "xdet_toxic_test_de,xdet_toxic_test_es,xdet_ppl_toxic_test_de,xdet_ppl_toxic_test_es"
LIMIT, BATCH = "4", "8"
SOURCES = ("de", "es")
FAST = TrainConfig(max_steps=4, batch_size=4, grad_accum=1, max_examples=8, learning_rate=2e-2, eval_examples=0,
                   max_length=48)


def _lm_eval(model: Path, adapter: Path | None, out: Path) -> None:
    """The README's headline command (a task subset, a small limit, the batch size xdet eval uses)."""
    args = f"pretrained={model}" + (f",peft={adapter}" if adapter else "")
    cmd = [sys.executable, "-m", "lm_eval", "--tasks", TASKS, "--include_path", str(TASK_DIR), "--model", "hf",
           "--model_args", args, "--log_samples", "--output_path", str(out), "--limit", LIMIT, "--batch_size", BATCH,
           "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model):
    """A tiny model named like one of the paper's (so the repro suite finds its tables), two X-FT
    adapters, and the same three runs written by plain lm_eval and by xdet eval."""
    root = tmp_path_factory.mktemp("lm-eval-output")
    model = Path(shutil.copytree(tiny_model("llama"), root / "models" / "bloom-7b1"))
    adapters = {lang: train_adapter(str(model), f"x-ft:{lang}", root / "adapters" / lang, FAST, progress=False)
                for lang in SOURCES}
    for name, adapter in (("zs", None), *adapters.items()):
        _lm_eval(model, adapter, root / "plain")
        argv = ["eval", "--model", str(model), "--tasks", TASKS, "--limit", LIMIT, "--batch-size", BATCH,
                "--out", str(root / "xdet" / name)] + (["--peft", str(adapter)] if adapter else [])
        assert main(argv) == 0
    return root


def _tables(results: Path, out: Path, *extra: str) -> Path:
    assert main(["tables", str(results), "--out", str(out), "--n-boot", "200", "--no-png", *extra]) == 0
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_plain_lm_eval_output_gives_the_same_tables_as_xdet_eval(runs, tmp_path):
    plain = read_results(runs / "plain")
    assert sorted((r.info.strategy, r.info.train_langs) for r in plain) == [("x-ft", ("de",)), ("x-ft", ("es",)),
                                                                           ("zs", ())]
    assert {r.info.model_name for r in plain} == {"bloom-7b1"}
    assert {(r.info.raw["scorer"] or {}).get("backend") for r in plain} == {"local"}
    ours = _files(_tables(runs / "xdet", tmp_path / "from-xdet"))
    theirs = _files(_tables(runs / "plain", tmp_path / "from-lm-eval"))
    assert len(ours) == 7 and ours == theirs  # toxicity and perplexity on toxic-test: CSV, md, tex; index


def test_analyze_and_the_repro_suite_read_plain_lm_eval_output(runs, tmp_path, capsys):
    capsys.readouterr()
    assert main(["analyze", "--sweep", str(runs / "plain"), "--out", str(tmp_path / "analysis"), "--n-perm", "50",
                 "--n-boot", "50"]) == 0
    assert "H3 in-language vs cross-lingual" in capsys.readouterr().out
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "repro" / "test_repro_compare.py"),
         "--results", str(runs / "plain"), "-k", "cover_a_paper_table or regenerated_tables"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert proc.returncode == 0 and "2 passed" in proc.stdout, proc.stdout[-3000:]


def _moved_adapter(runs: Path, dest: Path) -> Path:
    """The plain output as another machine sees it: the es adapter's path no longer exists."""
    copy = Path(shutil.copytree(runs / "plain", dest))
    for results in copy.rglob("results_*.json"):
        data = json.loads(results.read_text())
        peft = data["config"]["model_args"].get("peft")
        if peft and peft.endswith("/es"):
            data["config"]["model_args"]["peft"] = "/cluster/scratch/adapters/es"
            results.write_text(json.dumps(data))
            return results.parent
    raise AssertionError("no es adapter run found")


def test_an_adapter_that_is_not_here_is_asked_for_by_flag(runs, tmp_path, capsys):
    folder = _moved_adapter(runs, tmp_path / "copied")
    assert main(["tables", str(tmp_path / "copied"), "--out", str(tmp_path / "t1")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "/cluster/scratch/adapters/es" in err
    assert f"pass --strategy-of {folder}=<strategy" in err and not (tmp_path / "t1").exists()
    for key in (str(folder), "/cluster/scratch/adapters/es"):  # the folder, or the adapter path as lm_eval saw it
        out = _tables(tmp_path / "copied", tmp_path / f"t-{len(key)}", "--strategy-of", f"{key}=x-ft:es")
        assert _files(out) == _files(_tables(runs / "plain", tmp_path / "reference"))


def test_table_check_fails_on_stale_tables_and_passes_on_fresh_ones(runs, tmp_path, capsys):
    committed = _tables(runs / "plain", tmp_path / "committed")
    check = ["tables", str(runs / "plain"), "--out", str(committed), "--n-boot", "200", "--check"]
    assert main(check) == 0
    assert "match" in capsys.readouterr().out
    table = next(p for p in sorted(committed.glob("*.csv")) if p.name != "index.csv")
    lines = table.read_text().splitlines()
    cells = lines[2].split(",")  # the first Δ row
    cells[1] = "99.0000"
    table.write_text("\n".join([*lines[:2], ",".join(cells), *lines[3:]]) + "\n")
    (committed / "old-table.csv").write_text("row,de\n")
    before = _files(committed)
    assert main(check) == 1
    out = capsys.readouterr().out
    assert f"{table}: differs (row {cells[0]}, column {lines[0].split(',')[1]}: committed 99.0000, regenerated " in out
    assert "old-table.csv: stale" in out
    assert _files(committed) == before, "--check writes nothing"
