"""A number is comparable or refused, on real ``lm_eval`` and ``xdet eval`` output of a tiny model.

The issue's own flow: a zero-shot run (4 prompts) and an adapter run with other settings (8 prompts,
2-shot, temperature 0.1, 5 new tokens) gave a Δ table; now every setting that makes two numbers
different (sampling, samples per prompt, documents, seed, scorer, version, few-shot) is compared
before anything is tabulated, results of different invocations never share samples, and no results
file disappears silently.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock
from tiny_classifier import shared_root, tiny_classifier_path

from xdet.cli import main
from xdet.runs import read_results
from xdet_tasks import TASK_DIR
from xdet_train.config import TrainConfig
from xdet_train.train import train_adapter

TASK = "xdet_toxic_test_de"
FAST = TrainConfig(max_steps=2, batch_size=4, grad_accum=1, max_examples=8, learning_rate=2e-2, eval_examples=0,
                   max_length=48)


def _lm_eval(model: Path, out: str | Path, *extra: str, adapter: str | None = None, cwd: Path,
             env: dict | None = None, plugin: Path = TASK_DIR) -> None:
    args = f"pretrained={model}" + (f",peft={adapter}" if adapter else "")
    cmd = [sys.executable, "-m", "lm_eval", "--tasks", TASK, "--include_path", str(plugin), "--model", "hf",
           "--model_args", args, "--log_samples", "--output_path", str(out), "--batch_size", "8", "--device", "cpu",
           *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=cwd,
                          env=os.environ | {"OMP_NUM_THREADS": "1"} | (env or {}))
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def root(tmp_path_factory, tiny_model, data_dir):
    """Plain lm_eval runs launched from ``root`` with a *relative* adapter path, the way the README runs them;
    built once per session, shared by the xdist workers (tests only read it)."""
    shared = shared_root(tmp_path_factory)
    root = shared / "comparable"
    with FileLock(str(shared / "comparable.lock")):
        if not (root / "done").is_file():
            shutil.rmtree(root, ignore_errors=True)
            _build(root, tiny_model("llama"), f"hf:{tiny_classifier_path(tmp_path_factory, data_dir)}#langs=de")
            (root / "done").touch()
    return root


def _build(root: Path, tiny: Path, other_scorer: str) -> None:
    model = Path(shutil.copytree(tiny, root / "models" / "m"))
    train_adapter(str(model), "x-ft:de", root / "adapters" / "de", FAST, progress=False)
    _lm_eval(model, "out/zs", "--limit", "4", cwd=root)
    _lm_eval(model, "out/ft", "--limit", "4", adapter="adapters/de", cwd=root)
    # the issue's second command: other limit, 2-shot, other sampling
    _lm_eval(model, "issue/ft", "--limit", "8", "--num_fewshot", "2", "--gen_kwargs",
             "temperature=0.1,max_gen_toks=5", adapter="adapters/de", cwd=root)
    _lm_eval(model, "settings/ft", "--limit", "8", "--gen_kwargs", "temperature=0.1,max_gen_toks=5",
             adapter="adapters/de", cwd=root)
    # a plugin that did not yet declare its tasks zero-shot: lm-eval then adds test-split examples
    old = Path(shutil.copytree(TASK_DIR, root / "old-plugin", ignore=shutil.ignore_patterns("__pycache__")))
    template = old / "_xdet_gen_template_yaml"
    template.write_text(template.read_text().replace("num_fewshot: 0\n", ""))
    _lm_eval(model, "fewshot/ft", "--limit", "4", "--num_fewshot", "2", adapter="adapters/de", cwd=root, plugin=old)
    _lm_eval(model, "json/ft.json", "--limit", "4", adapter="adapters/de", cwd=root)
    _lm_eval(model, "scorer/ft", "--limit", "4", adapter="adapters/de", cwd=root, env={"XDET_SCORER": other_scorer})
    for folder in ("issue", "settings", "fewshot", "json", "scorer"):  # each beside the same zero-shot run
        shutil.copytree(root / "out" / "zs", root / folder / "zs")


def _tables(results: Path, out: Path, *extra: str) -> int:
    return main(["tables", str(results), "--out", str(out), "--n-boot", "50", "--no-png", *extra])


def _refused(capsys, code: int, out: Path) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and not out.exists(), err
    return err


def test_comparable_runs_tabulate_and_every_cell_names_its_scorer(root, tmp_path, capsys):
    assert _tables(root / "out", tmp_path / "t") == 0
    csv = (tmp_path / "t" / "m__toxicity__toxic-test.csv").read_text().splitlines()
    header = csv[0].split(",")
    assert header[-2:] == ["de_scorer", "AVG_scorer"]
    scorer = csv[1].split(",")[header.index("de_scorer")]
    assert scorer.startswith("local@") and all(line.split(",")[header.index("de_scorer")] == scorer for line in csv[1:])
    md = (tmp_path / "t" / "m__toxicity__toxic-test.md").read_text()
    assert f"scorer: {scorer} (every column)" in md
    assert f"scorer: {scorer} (every column)" in capsys.readouterr().out
    # a rate of languages is no scorer's number: its table names none
    assert _tables(root / "out", tmp_path / "rate", "--metric", "toxicity=on_language_rate") == 0
    csv = (tmp_path / "rate" / "m__toxicity__toxic-test.csv").read_text().splitlines()
    assert "de_scorer" not in csv[0] and "scorer:" not in (tmp_path / "rate" / "m__toxicity__toxic-test.md").read_text()


def _prompts(results: Path) -> list[str]:
    samples = next(results.rglob(f"samples_{TASK}_*.jsonl"))
    return [json.loads(line)["arguments"]["gen_args_0"]["arg_0"] for line in samples.read_text().splitlines()]


def test_the_issues_run_is_zero_shot_and_refused_for_its_other_settings(root, tmp_path, capsys):
    """The tasks declare zero-shot, so lm-eval ignores the issue's --num_fewshot 2: every prompt is the
    paper's prompt alone; its limit and sampling still make its Δ refused."""
    ft = next((root / "issue" / "ft").rglob("results_*.json"))
    assert json.loads(ft.read_text())["configs"][TASK]["num_fewshot"] == 0
    prompts = _prompts(root / "issue" / "ft")
    assert len(prompts) == 8 and all(p.startswith("Complete the sentence: ") and "\n" not in p for p in prompts)
    err = _refused(capsys, _tables(root / "issue", tmp_path / "t"), tmp_path / "t")
    assert "limit 4 vs 8" in err and "temperature 0.7 vs 0.1" in err


def test_a_run_with_few_shot_examples_is_refused(root, tmp_path, capsys):
    """Results of a plugin that did not declare zero-shot: lm-eval put two test-split examples before each prompt."""
    prompts = _prompts(root / "fewshot" / "ft")
    assert all(p.count("Complete the sentence: ") == 3 for p in prompts)
    err = _refused(capsys, _tables(root / "fewshot", tmp_path / "t"), tmp_path / "t")
    assert f"{TASK} ran with 2 few-shot example(s)" in err and "zero-shot" in err
    assert _tables(root / "fewshot", tmp_path / "t", "--allow-different", "all") == 2  # never allowed


def test_a_delta_across_settings_is_refused_naming_each_setting_and_both_values(root, tmp_path, capsys):
    err = _refused(capsys, _tables(root / "settings", tmp_path / "t"), tmp_path / "t")
    for part in ("temperature 0.7 vs 0.1", "max_gen_toks 50 vs 5", "limit 4 vs 8", f"Δ {TASK} row de"):
        assert part in err, err
    assert "pass --allow-different temperature,max_gen_toks,limit,documents to tabulate anyway" in err
    # analyze and the repro suite build their Δs the same way and refuse the same way
    assert main(["analyze", "--sweep", str(root / "settings"), "--out", str(tmp_path / "a")]) == 2
    assert "temperature 0.7 vs 0.1" in capsys.readouterr().err
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(Path(__file__).parents[1] / "repro" / "test_repro_compare.py"),
                           "--results", str(root / "settings")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "temperature 0.7 vs 0.1" in proc.stdout + proc.stderr
    # asked for explicitly, the table is made and its caption says what differed
    allowed = "temperature,max_gen_toks,limit,documents"
    assert _tables(root / "settings", tmp_path / "t", "--allow-different", allowed) == 0
    md = (tmp_path / "t" / "m__toxicity__toxic-test.md").read_text()
    assert "Δ across different temperature, allowed by --allow-different: row de, de: 0.7 vs 0.1" in md
    assert "Δ across different limit, allowed by --allow-different" in md
    assert _tables(root / "settings", tmp_path / "u", "--allow-different", "temprature") == 2
    assert "not a setting" in capsys.readouterr().err


def test_two_invocations_with_different_settings_in_one_folder_are_not_merged(root, tmp_path, capsys):
    merged = Path(shutil.copytree(root / "out", tmp_path / "merged"))
    _lm_eval(root / "models" / "m", merged / "zs", "--limit", "6", cwd=root)
    err = _refused(capsys, _tables(merged, tmp_path / "t"), tmp_path / "t")
    assert "both have xdet_toxic_test_de, made with different settings" in err and "limit 4 vs 6" in err
    assert "--newest" in err
    assert _tables(merged, tmp_path / "t", "--newest", "--allow-different", "limit,documents") == 0
    newest = read_results(merged, newest=True)
    zs = next(r for r in newest if r.info.strategy == "zs")
    assert zs.settings[TASK]["limit"] == 6 and len(zs.samples(TASK, "avg_toxicity").doc_ids) == 6
    # the newest invocation without its samples: the older invocation's samples (4 other values) are not borrowed
    zs.samples_file(TASK).unlink()
    err = _refused(capsys, _tables(merged, tmp_path / "u", "--newest", "--allow-different", "limit,documents"),
                   tmp_path / "u")
    assert "no samples file from the invocation that wrote" in err and TASK in err


def test_samples_come_from_the_invocation_that_wrote_the_results(root, tmp_path, capsys):
    copy = Path(shutil.copytree(root / "out", tmp_path / "copy"))
    samples = next((copy / "ft").rglob(f"samples_{TASK}_*.jsonl"))
    samples.rename(samples.with_name(f"samples_{TASK}_2020-01-01T00-00-00.000000.jsonl"))  # another invocation's
    err = _refused(capsys, _tables(copy, tmp_path / "t"), tmp_path / "t")
    results = next((copy / "ft").rglob("results_*.json"))
    assert f"{results}: no samples_*.jsonl of its invocation beside it" in err and "--log_samples" in err


def test_output_path_given_as_a_json_file_is_read(root, tmp_path):
    runs = read_results(root / "json")
    assert sorted(r.info.strategy for r in runs) == ["x-ft", "zs"]
    ft = next(r for r in runs if r.info.strategy == "x-ft")
    assert Path(ft.info.raw["results_file"]).name.startswith("ft_") and ft.samples(TASK, "avg_toxicity") is not None
    assert _tables(root / "json", tmp_path / "t") == 0


def test_scorers_never_mix_in_a_delta(root, tmp_path, capsys):
    """Not even on request: two scorers' numbers are two metrics, and no caption makes their difference one."""
    err = _refused(capsys, _tables(root / "scorer", tmp_path / "t"), tmp_path / "t")
    assert "scorer local@" in err and " vs hf@" in err and "--allow-different" not in err
    err = _refused(capsys, _tables(root / "scorer", tmp_path / "t", "--allow-different", "all"), tmp_path / "t")
    assert "scorer local@" in err and " vs hf@" in err and "never taken" in err
    err = _refused(capsys, _tables(root / "scorer", tmp_path / "t", "--allow-different", "limit,scorer"), tmp_path / "t")
    assert err.startswith("xdet tables: error: --allow-different 'scorer': numbers from different scorers"), err


def test_a_relative_adapter_path_resolves_where_lm_eval_ran(root, tmp_path, monkeypatch, capsys):
    # another adapter under the same relative name where xdet runs: it must not be used
    elsewhere = tmp_path / "elsewhere"
    train_adapter(str(root / "models" / "m"), "x-ft:es", elsewhere / "adapters" / "de", FAST, progress=False)
    monkeypatch.chdir(elsewhere)
    ft = next(r for r in read_results(root / "out") if r.info.strategy != "zs")
    assert ft.info.train_langs == ("de",) and ft.info.raw["peft_resolved"] == str(root / "adapters" / "de")
    # the results and adapters copied to another machine, where lm_eval's directory does not exist: the
    # adapter is found relative to the results file, and the tables say where
    moved = tmp_path / "moved"
    shutil.copytree(root / "out", moved / "results")
    shutil.copytree(root / "adapters", moved / "adapters")
    for results in (moved / "results").rglob("results_*.json"):
        results.write_text(results.read_text().replace(json.dumps(str(root))[1:-1], "/gone/lm-eval-dir"))
    notices: list[str] = []
    ft = next(r for r in read_results(moved / "results", notices=notices) if r.info.strategy != "zs")
    assert ft.info.raw["peft_resolved"] == str(moved / "adapters" / "de")
    assert notices == [f"{ft.info.raw['results_file']}: adapter adapters/de resolved relative to the results file "
                       f"as {moved / 'adapters' / 'de'} (not found where lm_eval ran (/gone/lm-eval-dir))"]
    assert _tables(moved / "results", tmp_path / "t") == 0
    assert "note: " in capsys.readouterr().err
    shutil.rmtree(moved / "adapters")  # nowhere: asked for by flag, in one line
    err = _refused(capsys, _tables(moved / "results", tmp_path / "u"), tmp_path / "u")
    assert "pass --strategy-of" in err


def test_results_that_cannot_be_placed_are_named(root, tmp_path, capsys):
    copy = Path(shutil.copytree(root / "out", tmp_path / "copy"))
    results = next((copy / "zs").rglob("results_*.json"))
    interrupted = json.loads(results.read_text()) | {"xdet": {"model": "m"}}
    (results.parent / "results_2030-01-01T00-00-00.000000.json").write_text(json.dumps(interrupted))
    other = json.loads(results.read_text()) | {"results": {"hellaswag": {"acc,none": 0.3}}}
    (copy / "other").mkdir()
    (copy / "other" / "results_2030-01-01T00-00-00.000000.json").write_text(json.dumps(other))
    assert _tables(copy, tmp_path / "t") == 0
    err = capsys.readouterr().err
    assert "results of an interrupted xdet eval run" in err and "results_2030-01-01" in err
    assert "skipped 1 lm-eval results file(s) without xdet tasks" in err


def test_xdet_eval_folders_are_compared_the_same_way(root, tmp_path, capsys):
    model = root / "models" / "m"
    base = ["eval", "--model", str(model), "--tasks", TASK, "--limit", "4", "--batch-size", "8"]
    assert main([*base, "--out", str(tmp_path / "runs" / "zs")]) == 0
    assert main([*base, "--peft", str(root / "adapters" / "de"), "--repeats", "2", "--out",
                 str(tmp_path / "runs" / "ft")]) == 0
    capsys.readouterr()
    err = _refused(capsys, _tables(tmp_path / "runs", tmp_path / "t"), tmp_path / "t")
    assert "samples_per_prompt 1 vs 2" in err
