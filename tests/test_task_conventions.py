"""lm-eval's generic task conventions hold for every xdet task, and the design's headline command runs.

Our own checks, in the spirit of lm-eval's generic task tests: documents build, a prompt never ends
in whitespace when the target delimiter is whitespace, choices are lists of strings with an integer
target, and requests build for every document.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lm_eval
import pytest
from lm_eval.tasks import TaskManager

from xdet_tasks import TASK_DIR, TASK_DIRS
from xdet_tasks.languages import BY_CODE
from xdet_tasks.names import collections, task_names
from xdet_tasks.suites.records import LANGUAGES
from xdet_tasks.suites.sets import SETS, split_size

ALL_TASKS = task_names()


@pytest.fixture(scope="module")
def loaded():
    manager = TaskManager(include_path=str(TASK_DIR), include_defaults=False)
    return manager, manager.load(manager.match_tasks(["xdet_*"]))["tasks"]


def test_the_pattern_selects_every_task_once(loaded):
    manager, tasks = loaded
    assert sorted(tasks) == sorted(ALL_TASKS) and len(ALL_TASKS) == 72
    kinds = {t.config.output_type for t in tasks.values()}
    assert kinds == {"generate_until", "loglikelihood_rolling", "multiple_choice"}


def _expected_docs(task) -> int:
    kwargs = task.config.dataset_kwargs
    return split_size(SETS[kwargs["eval_set"]][0]) if "eval_set" in kwargs else split_size(kwargs["pairs"])


@pytest.mark.parametrize("name", ALL_TASKS)
def test_task_follows_lm_eval_conventions(loaded, name):
    task = loaded[1][name]
    assert task.has_test_docs() and not task.has_training_docs() and not task.has_validation_docs()
    docs = list(task.test_docs())
    assert len(docs) == _expected_docs(task)
    delimiter = task.config.target_delimiter
    mc = task.config.output_type == "multiple_choice"
    for doc in docs:
        text = task.doc_to_text(doc)
        assert isinstance(text, str)
        if text and delimiter.isspace():
            assert not text[-1].isspace(), f"{name} doc {doc['index']}: prompt ends in whitespace: {text[-20:]!r}"
        if mc:
            choices = task.doc_to_choice(doc)
            assert isinstance(choices, list) and len(choices) == 2 and all(isinstance(c, str) and c for c in choices)
            target = task.doc_to_target(doc)
            assert isinstance(target, int) and 0 <= target < len(choices)
            assert not any(c != c.strip() for c in choices), f"{name}: a choice has surrounding whitespace"
        else:
            assert isinstance(task.doc_to_target(doc), str)
    task.build_all_requests(limit=None, rank=0, world_size=1)
    per_doc = {"generate_until": task.config.repeats, "loglikelihood_rolling": 1, "multiple_choice": 2}
    assert len(task.instances) == len(docs) * per_doc[task.config.output_type]


def test_every_collection_is_a_tag_and_any_two_combine(loaded):
    """lm-eval refuses a *group* together with one of its tasks, never overlapping *tags*."""
    manager = TaskManager(include_path=[str(d) for d in TASK_DIRS], include_defaults=False)  # both plugin folders
    found = collections()
    tags = sorted(n for n, c in found.items() if not c.is_group)
    assert set(tags) <= set(manager.all_tags)
    assert {n for n, c in found.items() if c.is_group} <= set(manager.all_groups)
    assert not [g for g in manager.all_groups if g.startswith("xdet_")], "a group matched by xdet_* breaks the pattern"
    both = manager.load(["xdet", "xdet_de", "xdet_ppl", "xdet_toxic_test"])["tasks"]
    assert len(both) == 27 + 27


def test_headline_command_runs_every_task_once(tiny_model, tmp_path, data_dir):
    """``lm_eval run --tasks 'xdet_*' --include_path <plugin> --model hf`` on a tiny model, as a user runs it."""
    env = os.environ | {"XDET_DATA_DIR": str(data_dir), "XDET_SCORER": "local"}
    cmd = [sys.executable, "-m", "lm_eval", "run", "--include_path", str(TASK_DIR), "--tasks", "xdet_*",
           "--model", "hf", "--model_args", f"pretrained={tiny_model('llama')}", "--limit", "1", "--device", "cpu",
           "--output_path", str(tmp_path / "out")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results_file,) = (tmp_path / "out").glob("**/results_*.json")
    results = json.loads(results_file.read_text())["results"]
    assert sorted(results) == sorted(ALL_TASKS)
    assert "Custom kwargs" not in proc.stderr + proc.stdout
    table = [line for line in proc.stdout.splitlines() if line.startswith("|")]
    assert table and max(map(len, table)) <= 200, max(table, key=len)
    for lang in (code for code in LANGUAGES if not BY_CODE[code].spaced):  # the paper's languages: its tasks
        # a sentence of a language written without spaces is one "word": no per-word number is reported
        assert not [m for m in results[f"xdet_ppl_toxic_test_{lang}"] if "word" in m]
    assert any("word_perplexity" in m for m in results["xdet_ppl_toxic_test_de"])


def test_lm_eval_lists_the_plugin():
    proc = subprocess.run([sys.executable, "-m", "lm_eval", "ls", "tasks", "--include_path", str(TASK_DIR)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("xdet_toxic_test_de", "xdet_pref_train_zh", "xdet-avg", "xdet-avg-toxic-test", "xdet_de", "xdet"):
        assert f"|{name} " in proc.stdout, name


def test_chat_template_and_auto_batch_size(tiny_model, tmp_path):
    """``--apply_chat_template`` wraps the paper's prompt in the model's template; ``--batch_size auto`` works."""
    model = tmp_path / "chat-model"
    for f in Path(tiny_model("llama")).iterdir():
        (model / f.name).parent.mkdir(exist_ok=True)
        (model / f.name).write_bytes(f.read_bytes())
    config = json.loads((model / "tokenizer_config.json").read_text())
    config["chat_template"] = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
                               "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    results = lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={model}", tasks=["xdet_toxic_test_de"], limit=2, batch_size="auto",
        device="cpu", apply_chat_template=True, log_samples=True, bootstrap_iters=0,
        task_manager=TaskManager(include_path=str(TASK_DIR), include_defaults=False),
    )
    prompt = results["samples"]["xdet_toxic_test_de"][0]["arguments"][0][0]
    assert prompt.startswith("<|user|>Complete the sentence: ") and prompt.endswith("<|assistant|>")
    assert 0 <= results["results"]["xdet_toxic_test_de"]["avg_toxicity,toxicity"] <= 100
