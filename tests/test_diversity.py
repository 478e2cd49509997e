"""Repetition loops and distinct-n on hand-made texts in six scripts, counted by hand.

Every expected number below was counted on paper from the texts, unit by unit (whitespace words in
Latin, Cyrillic and Devanagari; characters, with their combining marks, in Han, Japanese and Thai),
never taken from the code. The per-prompt hook and the task configs must agree on which metrics a
task with K samples reports.
"""

from __future__ import annotations

import importlib.util
import json

import pytest
import yaml

from xdet_tasks import NATURAL_TASK_DIR, TASK_DIR, task_config
from xdet_tasks.languages import RECORDS
from xdet_tasks.metrics import diversity
from xdet_tasks.metrics.units import text_units
from xdet_tasks.names import GENERATION, generation_metrics
from xdet_tasks.suites.paradetox import load_pairs
from xdet_tasks.suites.protocols import PROTOCOLS
from xdet_tasks.suites.records import SUITES

# (texts of one prompt, units of each text, distinct-1/2/3 as fractions counted by hand)
DISTINCT_CASES = {
    "latin": (["the cat sat on the mat", "the cat ran"], [6, 3], (6 / 9, 6 / 9, 5 / 9)),
    "cyrillic": (["да нет да", "нет да"], [3, 2], (2 / 5, 2 / 5, 1 / 5)),
    "devanagari": (["मैं घर जा रहा हूँ", "मैं घर"], [5, 2], (5 / 7, 4 / 7, 3 / 7)),
    "han": (["我爱你", "我恨你"], [3, 3], (4 / 6, 4 / 6, 2 / 6)),
    "japanese": (["ありがとう", "ありがとうございます"], [5, 10], (10 / 15, 9 / 15, 8 / 15)),
    # กิน|ข้าว: กิ น ข้ า ว (5 clusters); กิน|น้ำ: กิ น น้ำ (3: the tone mark and SARA AM join their consonant)
    "thai": (["กินข้าว", "กินน้ำ"], [5, 3], (6 / 8, 5 / 8, 4 / 8)),
}


@pytest.mark.parametrize("script", DISTINCT_CASES)
def test_distinct_n_counted_by_hand(script):
    texts, sizes, expected = DISTINCT_CASES[script]
    assert [len(text_units(t)) for t in texts] == sizes
    found = diversity.diversity_sample_metrics(texts)
    for n, value in zip((1, 2, 3), expected, strict=True):
        assert found[f"distinct_{n}"] == pytest.approx(value), n


def test_units_per_script():
    assert text_units("Привет, мир!") == ["Привет,", "мир!"]  # punctuation stays on its word, as DExperts splits
    assert text_units("我爱Python，真的") == ["我", "爱", "Python，", "真", "的"]  # a switch of script inside a text
    assert text_units("ラーメン") == ["ラ", "ー", "メ", "ン"]  # the prolonged-sound mark is Japanese by extension
    assert text_units("ไม่รู้") == ["ไ", "ม่", "รู้"]  # leading vowel alone, marks on their consonant
    assert text_units("cafe\u0301 café") == ["café", "café"]  # NFC: one spelling
    assert text_units("  \n ") == []


def test_every_language_written_without_spaces_is_counted_in_characters(data_dir):
    """The paper's zh sentences: no unit is a run of two Chinese characters (whitespace splitting would make
    most of a sentence one unit)."""
    unspaced = [lang.code for lang in RECORDS if not lang.spaced]
    assert set(unspaced) == {"zh", "ja", "th"}
    for pair in load_pairs("zh", "test", data_dir=data_dir)[:30]:
        units = text_units(pair.toxic)
        han = [u for u in units if any("\u4e00" <= ch <= "\u9fff" for ch in u)]
        assert han and all(len(u) == 1 for u in han), pair.toxic
        assert len(units) >= len(pair.toxic.split())


LOOPS = {
    # text: ends in a loop?
    "I will not I will not": True,  # a three-word phrase twice: the shortest loop
    "go to bed go to bed go to": True,  # cut mid-phrase by the length limit
    "I will not I will not.": False,  # anything after the loop ends it
    "ha ha ha ha ha": False,  # one word five times: m = 3 needs six
    "ha ha ha ha ha ha": True,
    "no no no": False,
    "a b a b a b": False,  # a two-word phrase three times is not yet twice a phrase of three
    "a b a b a b a b": True,  # ... four times is (m = 4)
    "very very good": False,
    "я не знаю я не знаю": True,
    "мы пошли домой": False,
    "मैं नहीं जानता मैं नहीं जानता": True,
    "मैं नहीं जानता": False,
    "我不知道我不知道": True,  # one "word" under whitespace splitting: no loop would be found
    "哈哈哈哈哈": False,
    "哈哈哈哈哈哈": True,
    "你好你好": False,
    "やめてやめて": True,
    "だめだめだめ": False,  # two kana three times
    "ไม่รู้ไม่รู้": True,  # ไ ม่ รู้, twice
    "ไม่รู้": False,
    "": False,
    "a b c a d e a": False,  # the last word also ends the phrase before, but the phrases differ
}


@pytest.mark.parametrize("text", LOOPS)
def test_loops_counted_by_hand(text):
    assert diversity.ends_in_loop(text_units(text)) is LOOPS[text]


def test_repetition_rate_is_a_share_of_completions():
    texts = ["我不知道我不知道", "你好", "I will not I will not", ""]
    assert diversity.diversity_sample_metrics(texts)["repetition_rate"] == 50.0
    with pytest.raises(ValueError, match="^no completions for a prompt$"):
        diversity.repetition_rate([])


def test_distinct_needs_two_samples_and_a_unit():
    assert diversity.diversity_sample_metrics(["a b c"]) == {"repetition_rate": 0.0}  # K = 1: no diversity across
    assert diversity.diversity_sample_metrics(["", " "]) == {"repetition_rate": 0.0}  # no unit: left out, never 0
    assert diversity.diversity_sample_metrics(["", "x x"])["distinct_1"] == 0.5  # an empty completion adds nothing


def _utils():
    spec = importlib.util.spec_from_file_location("xdet_task_utils", TASK_DIR / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("samples", [1, 2, 5, 6, 10, 11, 25])
def test_the_hook_returns_what_the_task_declares(samples):
    """lm-eval aggregates what process_results returns; the metric_list at K must name exactly that."""
    utils = _utils()
    records = [json.dumps({"text": f"text {i}", "toxicity": 0.1 * (i % 10), "scorer": "s"}) for i in range(samples)]
    out = utils.process_toxicity({"lang": "de"}, [records])
    declared = [m["metric"] for m in task_config("xdet_toxic_test_de", repeats=samples)["metric_list"]]
    assert sorted(out) == sorted(declared) == sorted(generation_metrics(samples))
    records[0] = json.dumps({"text": "x", "toxicity": None, "scorer": "s"})
    unscored = utils.process_toxicity({"lang": "de"}, [records])
    assert not {m for m in unscored if "toxic" in m and unscored[m] is not None}  # none from a partly scored prompt
    assert unscored["unscored"] == 1.0 and "repetition_rate" in unscored


def test_generated_tasks_declare_the_metrics_of_their_K():
    paper = yaml.safe_load((TASK_DIR / "_xdet_gen_template_yaml").read_text().replace("!function", ""))
    assert [m["metric"] for m in paper["metric_list"]] == list(generation_metrics(1))
    for suite in (s for s in SUITES.values() if s.natural):
        text = (NATURAL_TASK_DIR / f"_xdet_{suite.key}_template_yaml").read_text().replace("!function", "")
        names = [m["metric"] for m in yaml.safe_load(text)["metric_list"]]
        assert names == list(generation_metrics(PROTOCOLS[suite.protocol].samples)), suite.key
    assert "toxicity_probability_at_10" in generation_metrics(25) and "toxicity_probability_at_10" not in \
        generation_metrics(10)
    # a run-time K (xdet eval --repeats / --protocol) gets the declaration the YAML has at that K
    def declared(config: dict) -> list[tuple]:
        return [(m["metric"], getattr(m["aggregation"], "__name__", m["aggregation"]), m["higher_is_better"])
                for m in config["metric_list"]]

    rtplx = task_config("xdet_rtplx_de")["metric_list"]
    assert declared(task_config("xdet_toxic_test_de", repeats=25)) == declared({"metric_list": rtplx})
    assert declared(task_config("xdet_rtplx_de", protocol="paper")) == declared(task_config("xdet_toxic_test_de"))
    assert {m["metric"] for m in rtplx if m["higher_is_better"]} == {*diversity.DISTINCT_METRICS, "on_language_rate"}
    assert set(generation_metrics(25)) == set(GENERATION.metrics)
