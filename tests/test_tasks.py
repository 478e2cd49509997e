"""The xdet tasks through the real lm-eval machinery on tiny local models (causal and seq2seq)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import lm_eval
import pytest
from lm_eval.tasks import TaskManager

from xdet_tasks import NATURAL_TASK_DIR, TASK_DIR, task_config
from xdet_tasks.scoring.completions import parse_provenance, parse_record

TASKS = ["xdet_toxic_test_de", "xdet_ppl_neutral_test_de", "xdet_pref_test_de"]


def _evaluate(model_dir, tasks, limit, **kwargs):
    return lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={model_dir}",
        tasks=tasks,
        limit=limit,
        batch_size=8,
        device="cpu",
        log_samples=True,
        bootstrap_iters=0,
        task_manager=TaskManager(include_path=str(TASK_DIR), include_defaults=False),
        **kwargs,
    )


def _check_metrics(results: dict) -> None:
    tox = results["results"]["xdet_toxic_test_de"]
    for metric in ("avg_toxicity", "toxic_rate", "exp_max_toxicity"):
        assert 0.0 <= tox[f"{metric},toxicity"] <= 100.0
    assert tox["unscored,toxicity"] == 0.0
    assert tox["exp_max_toxicity,toxicity"] == pytest.approx(tox["avg_toxicity,toxicity"])  # K = 1
    ppl = results["results"]["xdet_ppl_neutral_test_de"]
    for metric in ("word_perplexity", "byte_perplexity", "mean_sentence_word_perplexity",
                   "mean_sentence_byte_perplexity"):
        assert ppl[f"{metric},none"] > 1.0
    assert ppl["bits_per_byte,none"] == pytest.approx(math.log2(ppl["byte_perplexity,none"]))
    pref = results["results"]["xdet_pref_test_de"]
    assert 0.0 <= pref["acc,none"] <= 1.0 and 0.0 <= pref["acc_norm,none"] <= 1.0
    assert math.isfinite(pref["margin,none"])


@pytest.mark.parametrize("family", ["llama", "mt5"])
def test_tasks_run_through_lm_eval(tiny_model, family):
    limit = 4
    results = _evaluate(tiny_model(family), TASKS, limit)
    _check_metrics(results)
    samples = results["samples"]["xdet_toxic_test_de"]
    assert len(samples) == limit
    first = samples[0]
    assert first["arguments"][0][0].startswith("Complete the sentence: ")
    record = parse_record(first["filtered_resps"][0][0])
    assert record["scorer"].startswith("local@")
    assert record["toxicity"] * 100 == pytest.approx(first["avg_toxicity"])
    # per-sample means reproduce the aggregate: the metric is what the samples say it is
    mean = sum(s["avg_toxicity"] for s in samples) / limit
    assert mean == pytest.approx(results["results"]["xdet_toxic_test_de"]["avg_toxicity,toxicity"])
    # the results file names the scorer
    provenance = parse_provenance(str(results["configs"]["xdet_toxic_test_de"]["filter_list"][0]["filter"][0]["provenance"]))
    assert provenance["backend"] == "local" and provenance["version"].startswith("char_wb")


def test_repeats_give_expected_max_over_samples(tiny_model):
    results = _evaluate(tiny_model("llama"), [task_config("xdet_neutral_test_es", repeats=3)], 3)
    res = results["results"]["xdet_neutral_test_es"]
    assert res["exp_max_toxicity,toxicity"] >= res["avg_toxicity,toxicity"]
    for sample in results["samples"]["xdet_neutral_test_es"]:
        scores = [parse_record(r)["toxicity"] * 100 for r in sample["filtered_resps"][0]]
        assert len(scores) == 3
        assert sample["exp_max_toxicity"] == pytest.approx(max(scores))
        assert sample["avg_toxicity"] == pytest.approx(sum(scores) / 3)


def test_lm_eval_cli_runs_plugin_offline(tiny_model, tmp_path, data_dir):
    """The README's command: ``lm_eval run --include_path $(python -m xdet_tasks) ...``, data via --metadata."""
    include = subprocess.run([sys.executable, "-m", "xdet_tasks"], capture_output=True, text=True, check=True)
    assert include.stdout.strip() == str(TASK_DIR)
    natural = subprocess.run([sys.executable, "-m", "xdet_tasks", "natural"], capture_output=True, text=True, check=True)
    assert natural.stdout.strip() == str(NATURAL_TASK_DIR) != str(TASK_DIR)
    typo = subprocess.run([sys.executable, "-m", "xdet_tasks", "rtplx"], capture_output=True, text=True)
    assert typo.returncode == 2 and "paper|natural" in typo.stderr and not typo.stdout
    env = {k: v for k, v in os.environ.items() if k != "XDET_DATA_DIR"} | {"HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable, "-m", "lm_eval", "run", "--include_path", include.stdout.strip(),
        "--tasks", "xdet_toxic_test_de,xdet_pref_test_de,xdet_ppl_toxic_test_de", "--model", "hf",
        "--model_args", f"pretrained={tiny_model('llama')}", "--limit", "3", "--device", "cpu",
        "--metadata", json.dumps({"data_dir": str(data_dir)}), "--output_path", str(tmp_path / "out"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results_file,) = (tmp_path / "out").glob("**/results_*.json")
    results = json.loads(results_file.read_text())["results"]
    assert set(results) == {"xdet_toxic_test_de", "xdet_pref_test_de", "xdet_ppl_toxic_test_de"}
    assert "margin,none" in results["xdet_pref_test_de"]
    assert 0 <= results["xdet_toxic_test_de"]["avg_toxicity,toxicity"] <= 100


def test_collections_resolve():
    """Every tag and averaging group is known to lm-eval and expands to the right leaf tasks."""
    tm = TaskManager(include_path=str(TASK_DIR), include_defaults=False)
    sizes = {"xdet": 27, "xdet_de": 3, "xdet_toxic_train": 9, "xdet_toxic_test": 9, "xdet_neutral_test": 9,
             "xdet_ppl": 27, "xdet_pref": 18}
    for tag, size in sizes.items():
        assert tag in tm.all_tags, tag
        tasks = {t.task_name for t in tm.load([tag])["tasks"].values()}
        assert len(tasks) == size, tag
        assert tasks <= set(tm.all_subtasks)
    de = {t for t in tm.load(["xdet_de"])["tasks"]}
    assert de == {"xdet_toxic_train_de", "xdet_toxic_test_de", "xdet_neutral_test_de"}
    whole = tm.load(["xdet-avg"])
    assert len(whole["tasks"]) == 72 and "xdet-avg-toxic-test" in whole["groups"]
