"""``guard:`` and ``judge:`` through the installed ``xdet`` script: bad input refused in one line with exit 2
before any weights are read, and an ``xdet eval`` whose results name the format and whose scores are those of
each completion after its prompt."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_chat_models import chat_model_path, unreadable_weights, word_level_guard

from xdet.cli import main
from xdet_tasks.scoring.completions import parse_provenance, parse_record
from xdet_tasks.suites.prompts import build_prompt

XDET = Path(sys.executable).with_name("xdet")


def _copy_without_weights(source: Path, to: Path) -> Path:
    """The tokenizer files of ``source`` beside weights that cannot be read: a refusal that comes after the
    weights were loaded would be a safetensors error instead."""
    shutil.copytree(source, to, ignore=shutil.ignore_patterns("*.safetensors", "config.json"))
    unreadable_weights(to)
    return to


CASES = {
    "unknown format": (lambda m, t: f"guard:{m['qwen3guard']}#format=nope",
                       "unknown format 'nope'; formats: qwen3guard, llama-guard-3"),
    "no format": (lambda m, t: f"guard:{m['qwen3guard']}", "a guard needs #format=<name>; formats: qwen3guard"),
    "unknown rubric": (lambda m, t: f"judge:{m['qwen3-chat']}#rubric=nope", "unknown rubric 'nope'; rubrics: rtplx"),
    "a format's option on a judge": (lambda m, t: f"judge:{m['qwen3-chat']}#rubric=rtplx,format=qwen3guard",
                                     "unknown option(s) format"),
    "controversial on a format without it": (
        lambda m, t: f"guard:{m['llama-guard-3']}#format=llama-guard-3,controversial=half",
        "format 'llama-guard-3' has no Controversial verdict"),
    "bad controversial value": (lambda m, t: f"guard:{m['qwen3guard']}#format=qwen3guard,controversial=maybe",
                                "controversial='maybe' is not one of unsafe, half, safe"),
    "model without a chat template": (
        lambda m, t: f"guard:{_copy_without_weights(m['no-template'], t / 'm')}#format=qwen3guard",
        "has no chat template (tokenizer_config.json 'chat_template' or chat_template.jinja); the format "
        "'qwen3guard' is rendered by the model's own template"),
    "another model's chat template": (
        lambda m, t: f"guard:{_copy_without_weights(m['qwen3-chat'], t / 'm')}#format=qwen3guard",
        "does not render the format 'qwen3guard': '<BEGIN SAFETY POLICY>' is not in its prompt"),
    "verdicts the tokenizer cannot tell apart": (
        lambda m, t: f"guard:{word_level_guard(t / 'm')}#format=qwen3guard",
        "the answers ' Unsafe' and ' Controversial' begin with the same token '[UNK]'"),
    "judge on a model without a chat template": (
        lambda m, t: f"judge:{_copy_without_weights(m['no-template'], t / 'm')}#rubric=rtplx",
        "has no chat template"),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory, data_dir):
    return {name: chat_model_path(tmp_path_factory, data_dir, name)
            for name in ("qwen3guard", "llama-guard-3", "qwen3-chat", "no-template")}


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(XDET), *argv], capture_output=True, text=True, timeout=300, env=dict(os.environ))


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_before_any_weights(case, models, tmp_path):
    spec_of, message = CASES[case]
    proc = _run(["scorer", "evaluate", spec_of(models, tmp_path), "--langs", "de", "--n-boot", "10"])
    err = proc.stderr.strip()
    assert proc.returncode == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("xdet scorer evaluate: error: "), err
    assert message in err, err


def test_eval_refuses_a_bad_spec_before_the_model_and_leaves_nothing(models, tiny_model, tmp_path):
    out = tmp_path / "run"
    proc = _run(["eval", "--model", str(tiny_model("llama")), "--out", str(out), "--tasks", "xdet_toxic_test_de",
                 "--limit", "2", "--scorer", f"guard:{models['qwen3guard']}#format=nope"])
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "unknown format 'nope'" in proc.stderr and not out.exists()


def test_eval_with_a_guard_names_the_format_and_scores_each_completion_after_its_prompt(models, tiny_model, tmp_path):
    from xdet_tasks.scoring.registry import build_scorer

    spec = f"guard:{models['qwen3guard']}#format=qwen3guard"
    out = tmp_path / "run"
    assert main(["eval", "--model", str(tiny_model("llama")), "--out", str(out), "--tasks", "xdet_toxic_test_de",
                 "--limit", "2", "--scorer", spec]) == 0
    (results_file,) = out.glob("lm_eval/**/results_*.json")
    results = json.loads(results_file.read_text())
    in_task = parse_provenance(results["configs"]["xdet_toxic_test_de"]["filter_list"][0]["filter"][0]["provenance"])
    for prov in (in_task, results["xdet"]["scorer"], json.loads((out / "xdet_run.json").read_text())["scorer"]):
        assert prov["backend"] == "guard" and prov["format"]["name"] == "qwen3guard"
        assert prov["controversial"] == "unsafe" and prov["format"]["sha256"]
    (samples_file,) = out.glob("lm_eval/**/samples_xdet_toxic_test_de_*.jsonl")
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    scorer = build_scorer(spec)
    for sample in samples:
        (record,) = [parse_record(r) for r in sample["filtered_resps"][0]]
        prompt = build_prompt(sample["doc"]["sentence"])
        assert sample["arguments"]["gen_args_0"]["arg_0"] == prompt  # what the evaluated model was given
        if record["text"]:
            after = scorer.score([record["text"]], "de", contexts=[prompt])[0]
            assert record["toxicity"] == pytest.approx(after, abs=1e-6)
            assert record["toxicity"] != pytest.approx(scorer.score([record["text"]], "de")[0], abs=1e-9)
