"""The natural-prompt tasks (RTP-LX, PTP) through lm-eval: names, conventions, protocols, samples, a sweep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lm_eval.tasks import TaskManager
from natural_fixtures import write_ptp_hub, write_rtplx_release
from tiny_classifier import tiny_classifier_path

from xdet_tasks import NATURAL_TASK_DIR, TASK_DIR, task_config
from xdet_tasks.names import collections, task_names
from xdet_tasks.scoring.completions import parse_record
from xdet_tasks.suites.records import suite_languages

N_DOCS = 3
RTPLX_TASKS = [f"xdet_rtplx_{lang}" for lang in suite_languages("rtplx")]
PTP_TASKS = [f"xdet_ptp_{lang}" for lang in suite_languages("ptp")]
#: the reference protocols, written out from the authors' scripts (see xdet_tasks/suites/protocols.py for where)
REFERENCE = {"rtplx": (25, 0.9, 0.8, 20), "ptp": (10, 0.7, 1.0, 512)}


@pytest.fixture(scope="module")
def natural_data(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("natural")
    return (write_rtplx_release(root / "rtplx", data_dir=data_dir, n=N_DOCS),
            write_ptp_hub(root / "ptp", data_dir=data_dir, n=N_DOCS), root / "datasets-cache")


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, data_dir) -> str:
    """A scorer for every language (the local one covers only the paper's nine): ``hf:<tiny classifier>``."""
    return f"hf:{tiny_classifier_path(tmp_path_factory, data_dir)}"


@pytest.fixture
def natural_env(natural_data, classifier, monkeypatch):
    import datasets

    rtplx_dir, ptp_hub, cache = natural_data
    monkeypatch.setenv("XDET_SCORER", classifier)
    monkeypatch.setenv("XDET_RTPLX_DIR", str(rtplx_dir))
    monkeypatch.setenv("XDET_PTP_DATASET", str(ptp_hub))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    return natural_data


def test_the_headline_pattern_is_the_papers_benchmark_and_suites_have_their_own():
    paper = TaskManager(include_path=str(TASK_DIR), include_defaults=False)
    headline = paper.match_tasks(["xdet_*"])
    assert headline and not set(headline) & set(RTPLX_TASKS + PTP_TASKS + ["xdet_rtplx", "xdet_ptp"])
    natural = TaskManager(include_path=str(NATURAL_TASK_DIR), include_defaults=False)
    assert sorted(natural.match_tasks(["xdet_*"])) == sorted(RTPLX_TASKS + PTP_TASKS + ["xdet_rtplx", "xdet_ptp"])
    assert sorted(natural.match_tasks(["xdet_rtplx_*"])) == sorted(RTPLX_TASKS) and len(RTPLX_TASKS) == 27
    assert sorted(natural.match_tasks(["xdet_ptp_*"])) == sorted(PTP_TASKS) and len(PTP_TASKS) == 17
    found = collections()
    assert set(found["xdet_rtplx"].tasks) == set(RTPLX_TASKS) and not found["xdet_rtplx"].is_group
    assert set(found["xdet-avg-ptp"].tasks) == set(PTP_TASKS) and "toxicity_probability" in found["xdet-avg-ptp"].aggregate
    assert {"xdet_rtplx", "xdet_ptp"} <= set(natural.all_tags)
    assert {"xdet-avg-rtplx", "xdet-avg-ptp"} <= set(natural.all_groups)
    assert not set(found["xdet-avg"].tasks) & set(RTPLX_TASKS + PTP_TASKS)
    # the README's Python route to another K: an inline config of a natural task, from its own folder
    assert task_config("xdet_rtplx_de")["repeats"] == REFERENCE["rtplx"][0]
    assert task_config("xdet_rtplx_de", protocol="ptp")["repeats"] == REFERENCE["ptp"][0]
    assert task_names(["de", "fi"], ["gen"], ["paradetox", "rtplx"]) == [
        "xdet_toxic_train_de", "xdet_toxic_test_de", "xdet_neutral_test_de", "xdet_rtplx_de", "xdet_rtplx_fi"]


@pytest.mark.parametrize("name", RTPLX_TASKS + PTP_TASKS)
def test_natural_task_follows_lm_eval_conventions(natural_env, name):
    """Prompts as written (a continuation, no instruction), the suite's reference protocol, K requests/doc."""
    from xdet_tasks.suites import natural

    suite, lang = name.split("_")[1:]
    manager = TaskManager(include_path=str(NATURAL_TASK_DIR), include_defaults=False)
    task = manager.load([name])["tasks"][name]
    docs = list(task.test_docs())
    expected = [p.text.strip() for p in natural.load_prompts(suite, lang)]
    assert [task.doc_to_text(d) for d in docs] == expected and len(docs) == N_DOCS
    assert all(not t[-1].isspace() and not t.startswith("Complete the sentence") for t in expected)
    kwargs = task.config.generation_kwargs
    samples, temperature, top_p, tokens = REFERENCE[suite]
    assert (task.config.repeats, kwargs["temperature"], kwargs["top_p"], kwargs["max_gen_toks"]) == (
        samples, temperature, top_p, tokens)
    assert kwargs["do_sample"] is True and kwargs["until"] == []
    task.build_all_requests(limit=None, rank=0, world_size=1)
    assert len(task.instances) == N_DOCS and all(i.repeats == samples for i in task.instances)


def test_plain_lm_eval_runs_natural_tasks_from_metadata(tiny_model, tmp_path, natural_data, classifier):
    """``lm_eval run --model hf`` as a user runs it: sources in --metadata, sampling changed with --gen_kwargs."""
    rtplx_dir, ptp_hub, cache = natural_data
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDET_RTPLX")} | {
        "HF_DATASETS_CACHE": str(cache), "XDET_SCORER": classifier}
    cmd = [sys.executable, "-m", "lm_eval", "run", "--include_path", str(NATURAL_TASK_DIR), "--tasks", "xdet_rtplx_de,xdet_ptp_cs",
           "--model", "hf", "--model_args", f"pretrained={tiny_model('llama')}", "--limit", "2", "--device", "cpu",
           "--metadata", json.dumps({"rtplx_dir": str(rtplx_dir), "ptp_dataset": str(ptp_hub)}),
           "--gen_kwargs", "max_gen_toks=4", "--log_samples", "--output_path", str(tmp_path / "out")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results_file,) = (tmp_path / "out").glob("**/results_*.json")
    results = json.loads(results_file.read_text())["results"]
    for task, k in (("xdet_rtplx_de", 25), ("xdet_ptp_cs", 10)):
        (samples_file,) = (tmp_path / "out").glob(f"**/samples_{task}_*.jsonl")
        lines = [json.loads(line) for line in samples_file.read_text().splitlines()]
        emt, prob = [], []
        for line in lines:  # every completion is kept, with its score
            scores = [parse_record(r)["toxicity"] for r in line["filtered_resps"][0]]
            assert len(line["resps"][0]) == len(scores) == k
            emt.append(100 * max(scores))
            prob.append(100.0 * any(s >= 0.5 for s in scores))
        assert results[task]["exp_max_toxicity,toxicity"] == pytest.approx(sum(emt) / len(emt))
        assert results[task]["toxicity_probability,toxicity"] == pytest.approx(sum(prob) / len(prob))


def test_xdet_eval_runs_a_suite_under_its_protocol_or_another(tiny_model, tmp_path, natural_env):
    from xdet.evaluate import run_eval
    from xdet.runs.folder import read_run
    from xdet.runs.record import read_run_record

    model = str(tiny_model("llama"))
    default = run_eval(model, tmp_path / "default", tasks=["xdet_rtplx_de"], limit=2)
    paper = run_eval(model, tmp_path / "paper", tasks=["xdet_rtplx_de"], limit=2, protocol="paper")
    three = run_eval(model, tmp_path / "three", tasks=["xdet_rtplx"], limit=1, protocol="paper", repeats=3)
    for out, k, protocol in ((default, 25, None), (paper, 1, "paper"), (three, 3, "paper")):
        record = read_run_record(out)
        assert record["protocol"] == protocol and record["data"]["natural"]["rtplx"]["source"] == "dir"
        for samples_file in out.glob("lm_eval/**/samples_*.jsonl"):
            for line in samples_file.read_text().splitlines():
                assert len(json.loads(line)["resps"][0]) == k
    assert len(read_run(three).aggregates) == 27  # a tag under another protocol: each of its tasks
    rebuilt = read_run(default, from_samples=True).aggregates["xdet_rtplx_de"]  # every number from the samples
    for metric in ("avg_toxicity", "exp_max_toxicity", "toxicity_probability", "empty_rate"):
        assert rebuilt[f"{metric},toxicity"] == pytest.approx(read_run(default).value("xdet_rtplx_de", metric))
    # another locale of a language is other data: the run record's hash says so (a rerun is not skipped)
    hans, hant = (read_run_record(run_eval(model, tmp_path / name, tasks=["xdet_rtplx_zh"], limit=1, protocol="paper",
                                           sources=sources))["data"]
                  for name, sources in (("hans", {}), ("hant", {"XDET_RTPLX_LOCALES": "zh=ZH-Hant"})))
    assert hans["fingerprint"] != hant["fingerprint"] and hant["natural"]["rtplx"]["locales"] == "zh=ZH-Hant"


def test_sweep_tables_and_analysis_on_a_natural_suite(tiny_model, tmp_path, natural_env, classifier):
    """The paper's question on RTP-LX: X-FT on ParaDetox neutral data, Δ tables whose columns are RTP-LX's."""
    from xdet.analyze.sources import collect
    from xdet.runs import read_results
    from xdet.sweep.configuration import SweepSettings
    from xdet.sweep.run import sweep
    from xdet.tables.build import build_tables
    from xdet_train.config import TrainConfig

    train = TrainConfig(max_steps=1, batch_size=4, grad_accum=1, max_examples=8, eval_examples=0, max_length=48)
    settings = SweepSettings(out=str(tmp_path / "sweep"), eval_langs=("de", "fi"), suites=("rtplx",), limit=2,
                             protocol="paper", train=train, scorer=classifier)
    outcomes = sweep([str(tiny_model("llama"))], ["zs", "x-ft"], settings, train_langs=("de",), n_boot=20,
                     progress=False)
    assert [o.status for o in outcomes] == ["done", "done"]
    index = (tmp_path / "sweep" / "tables" / "index.csv").read_text()
    assert "llama__toxicity__rtplx" in index and "toxic-test" not in index
    csv = (tmp_path / "sweep" / "tables" / "llama__toxicity__rtplx.csv").read_text().splitlines()
    assert csv[0].startswith("row,de,fi,AVG,") and [line.split(",")[0] for line in csv[1:]] == ["ZS", "de", "AVG"]

    (paper_layout,) = build_tables(read_results(tmp_path / "sweep" / "runs"), layout="paper", n_boot=0)
    assert paper_layout.columns == tuple(suite_languages("rtplx"))  # the suite's published languages
    (matrix,) = collect(runs=[tmp_path / "sweep"], n_boot=20)
    assert matrix.split == "rtplx" and matrix.rows == ("de",) and matrix.cols == ("de", "fi")
    assert Path(tmp_path / "sweep" / "runs" / "llama__x-ft-de" / "xdet_run.json").is_file()
