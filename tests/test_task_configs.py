"""The committed task YAMLs are exactly what the generator writes, and carry the paper's prompt."""

from __future__ import annotations

import yaml

from xdet_tasks import PACKAGE_DIR, TASK_DIR, TASK_DIRS
from xdet_tasks.suites.prompts import build_prompt, jinja_prompt
from xdet_tasks.suites.records import LANGUAGES
from xdet_tasks.suites.sets import EVAL_SETS
from xdet_tasks.tasks._generate_configs import task_files


def test_generated_yamls_are_current():
    expected = task_files()
    committed = {p.relative_to(PACKAGE_DIR).as_posix(): p.read_text(encoding="utf-8")
                 for folder in TASK_DIRS for p in folder.glob("*xdet*yaml")}
    assert set(committed) == set(expected), "run: python -m xdet_tasks.tasks._generate_configs"
    stale = [name for name, text in expected.items() if committed[name] != text]
    assert not stale, f"stale generated YAMLs {stale[:5]}; run: python -m xdet_tasks.tasks._generate_configs"


def test_one_generation_and_perplexity_task_per_language_and_set():
    names = {p.stem for p in TASK_DIR.glob("xdet_*.yaml")}
    for lang in LANGUAGES:
        for eval_set in EVAL_SETS:
            slug = eval_set.replace("-", "_")
            assert f"xdet_{slug}_{lang}" in names
            assert f"xdet_ppl_{slug}_{lang}" in names
        assert {f"xdet_pref_train_{lang}", f"xdet_pref_test_{lang}"} <= names


def test_prompt_and_sampling_defaults_are_the_papers():
    template = (TASK_DIR / "_xdet_gen_template_yaml").read_text(encoding="utf-8")
    cfg = yaml.safe_load(template.replace("!function ", ""))
    assert cfg["doc_to_text"] == jinja_prompt() == "Complete the sentence: {{sentence}}"
    assert build_prompt("x y") == "Complete the sentence: x y"
    assert cfg["generation_kwargs"] == {
        "until": [], "do_sample": True, "temperature": 0.7, "top_p": 0.9, "max_gen_toks": 50
    }
