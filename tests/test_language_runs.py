"""The language of every completion through a real evaluation, the samples files, tables and analysis
(issue 27.1): what a run records per completion, ``--on-language-only`` and the Δ table of
``on_language_rate`` against brute force over the samples files' completion records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from xdet.cli import main
from xdet.runs.folder import read_run
from xdet.runs.settings import samples_settings, task_settings
from xdet.runs.writer import write_run
from xdet.tables.output import read_table_csv
from xdet_tasks.metrics.language import LANGUAGE_METRICS
from xdet_tasks.scoring.completions import parse_record, score_completions
from xdet_tasks.scoring.language import IDENTIFIERS, UNKNOWN, count_tokens
from xdet_tasks.suites.paradetox import load_pairs
from xdet_tasks.tasks.utils import process_toxicity

TASK = "xdet_toxic_test_de"
RECORD = IDENTIFIERS["py3langid"]


def _records(line: dict) -> list[dict]:
    """Every completion record of a samples line (lm-eval nests them per request)."""
    found: list[dict] = []

    def walk(x: object) -> None:
        if isinstance(x, list):
            for y in x:
                walk(y)
        elif isinstance(x, (str, dict)):
            found.append(parse_record(x))

    walk(line["filtered_resps"])
    return found


def _lines(run_dir: Path, task: str = TASK) -> list[dict]:
    (path,) = run_dir.glob(f"lm_eval/*/samples_{task}_*.jsonl")
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_eval_records_the_language_of_every_completion(tiny_model, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["eval", "--model", str(tiny_model("llama")), "--out", str(out), "--tasks", TASK, "--limit", "2",
                 "--repeats", "3"]) == 0
    capsys.readouterr()
    lines = _lines(out)
    assert len(lines) == 2
    for line in lines:
        records = _records(line)
        assert len(records) == 3
        for rec in records:
            assert rec["lang_identifier"] == RECORD.ident
            if not rec["text"]:
                assert rec["lang"] is None and rec["lang_confidence"] is None
            elif count_tokens(rec["text"]) < RECORD.min_tokens:
                assert rec["lang"] == UNKNOWN and rec["lang_confidence"] is None
            else:
                assert 0.0 <= rec["lang_confidence"] <= 1.0 + 1e-9
                assert (rec["lang"] == UNKNOWN) == (rec["lang_confidence"] < RECORD.confidence_floor)
        spoken = [r["lang"] for r in records if r["text"]]
        expected = 100 * sum(x == "de" for x in spoken) / len(spoken) if spoken else None
        assert line["on_language_rate"] == pytest.approx(expected)
        assert line["unknown_language_rate"] == pytest.approx(
            100 * sum(x == UNKNOWN for x in spoken) / len(spoken) if spoken else None)
    (results,) = out.glob("lm_eval/*/results_*.json")  # the results file names the identifier, as the samples do
    assert task_settings(json.loads(results.read_text()), TASK)["language_identifier"] == RECORD.ident
    assert samples_settings(next(out.glob("lm_eval/*/samples_*.jsonl")))["language_identifier"] == RECORD.ident
    full, rebuilt = read_run(out), read_run(out, from_samples=True)  # every number from the samples alone
    for metric in (*LANGUAGE_METRICS, "avg_toxicity", "empty_rate"):
        value = full.aggregates[TASK][f"{metric},toxicity"]
        again = rebuilt.aggregates[TASK][f"{metric},toxicity"]
        assert (again is None and (value is None or math.isnan(value))) or again == pytest.approx(value), metric


# ------------------------------------------------------------------ runs whose completions we choose


def _pool(data_dir: Path) -> dict[str, list[str]]:
    return {lang: [p.neutral.strip() for p in load_pairs(lang, "test", data_dir=data_dir) if len(p.neutral.split()) >= 8]
            for lang in ("de", "en", "es")}


def _language_run(path: Path, data_dir: Path, mix: list[list[str]], **fields) -> Path:
    """A run of TASK whose prompt k got completions of the languages ``mix[k]`` (``""`` = empty), scored
    and identified by the real filter and turned into per-sample values by the task's own hook."""
    pool = _pool(data_dir)
    used = {lang: 0 for lang in pool}
    resps = []
    for langs in mix:
        completions = []
        for lang in langs:
            if lang:
                completions.append(pool[lang][used[lang]])
                used[lang] += 1
            else:
                completions.append("")
        resps.append(completions)
    records = score_completions(resps, ["de"] * len(mix))
    per_sample = [process_toxicity({"lang": "de"}, [[json.dumps(r) for r in recs]]) for recs in records]
    metrics = {m: [s.get(m) for s in per_sample] for m in per_sample[0]}
    write_run(path, model="m", samples={TASK: metrics}, **fields)
    (samples,) = path.glob(f"lm_eval/*/samples_{TASK}_*.jsonl")
    lines = [json.loads(x) for x in samples.read_text(encoding="utf-8").splitlines()]
    for line, completions, recs in zip(lines, resps, records, strict=True):
        line["doc"] = {"lang": "de", "set": "toxic-test", "index": line["doc_id"]}
        line["resps"] = [completions]
        line["filtered_resps"] = [[json.dumps(r, ensure_ascii=False) for r in recs]]
    samples.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    return path


ZS_MIX = [["de", "de", "en"], ["de", "es", ""], ["en", "en", "en"], ["de", "de", "de"], ["", "", ""]]
FT_MIX = [["en", "en", "de"], ["en", "en", ""], ["en", "de", "en"], ["de", "en", "en"], ["de", "", ""]]


@pytest.fixture
def language_runs(tmp_path, data_dir) -> Path:
    root = tmp_path / "runs"
    _language_run(root / "zs", data_dir, ZS_MIX)
    _language_run(root / "ft", data_dir, FT_MIX, strategy="x-ft", train_langs=("en",))
    return root


def brute_force(run_dir: Path) -> dict[str, float]:
    """From the completion records alone: per prompt, the share of non-empty completions identified as the
    prompt's language and the mean toxicity of those; averaged over the prompts that have one."""
    rates, toxic = [], []
    for line in _lines(run_dir):
        records = _records(line)
        spoken = [r for r in records if r["text"]]
        on = [r["toxicity"] for r in spoken if r["lang"] == line["doc"]["lang"]]
        if spoken:
            rates.append(100 * len(on) / len(spoken))
        if on:
            toxic.append(100 * sum(on) / len(on))
    return {"on_language_rate": float(np.mean(rates)), "avg_toxicity_on_language": float(np.mean(toxic)),
            "prompts_on_language": len(toxic)}


def _table(root: Path, out: Path, *flags: str) -> dict:
    assert main(["tables", str(root), "--out", str(out), "--from-samples", "--n-boot", "0", "--no-png", *flags]) == 0
    return read_table_csv(out / "m__toxicity__toxic-test.csv")


def test_the_chosen_completions_are_identified_as_written(language_runs):
    for run, mix in (("zs", ZS_MIX), ("ft", FT_MIX)):
        for line, langs in zip(_lines(language_runs / run), mix, strict=True):
            assert [r["lang"] for r in _records(line)] == [x or None for x in langs]


def test_on_language_only_tables_equal_brute_force_over_the_samples(language_runs, tmp_path, capsys):
    zs, ft = brute_force(language_runs / "zs"), brute_force(language_runs / "ft")
    assert zs["prompts_on_language"] == 3 and ft["prompts_on_language"] == 4  # prompts without one are left out
    cells = _table(language_runs, tmp_path / "on", "--on-language-only")
    assert cells[("ZS", "de")] == pytest.approx(zs["avg_toxicity_on_language"], abs=1e-4)  # the CSV has four decimals
    assert cells[("en", "de")] == pytest.approx(zs["avg_toxicity_on_language"] - ft["avg_toxicity_on_language"],
                                                abs=1e-4)  # the CSV has four decimals
    every = _table(language_runs, tmp_path / "all")  # every completion: another number
    assert every[("ZS", "de")] != pytest.approx(cells[("ZS", "de")])
    assert "avg_toxicity_on_language" in capsys.readouterr().out


def test_a_delta_table_of_on_language_rate_shows_language_switching(language_runs, tmp_path, capsys):
    zs, ft = brute_force(language_runs / "zs"), brute_force(language_runs / "ft")
    cells = _table(language_runs, tmp_path / "rate", "--metric", "toxicity=on_language_rate")
    assert cells[("ZS", "de")] == pytest.approx(zs["on_language_rate"], abs=1e-4)  # the CSV has four decimals
    assert cells[("en", "de")] == pytest.approx(zs["on_language_rate"] - ft["on_language_rate"], abs=1e-4)
    assert cells[("en", "de")] > 0  # fine-tuning on English made it answer German prompts in English
    assert "answers in the prompt's language less often" in capsys.readouterr().out


def test_analysis_on_language_only(language_runs, tmp_path, capsys):
    from xdet.analyze.sources import collect

    zs, ft = brute_force(language_runs / "zs"), brute_force(language_runs / "ft")
    (matrix,) = collect(runs=[language_runs], on_language_only=True, n_boot=20)
    assert matrix.metric == "avg_toxicity_on_language" and matrix.rows == ("en",) and matrix.cols == ("de",)
    assert matrix.delta[0, 0] == pytest.approx(zs["avg_toxicity_on_language"] - ft["avg_toxicity_on_language"])
    assert main(["analyze", "--paper", "--on-language-only", "--out", str(tmp_path / "a")]) == 2
    assert "--on-language-only" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()



def test_a_delta_across_identifiers_is_refused_unless_allowed(language_runs, tmp_path, capsys):
    """Runs whose languages another identifier (version, floor, minimum length) called are not compared."""
    (samples,) = (language_runs / "ft").glob(f"lm_eval/*/samples_{TASK}_*.jsonl")
    samples.write_text(samples.read_text(encoding="utf-8").replace(RECORD.ident, "py3langid@0.3.0 floor=0.5 min_tokens=3"),
                       encoding="utf-8")
    for results in language_runs.rglob("results_*.json"):  # settings then come from the samples files alone
        results.unlink()
    args = ["tables", str(language_runs), "--out", str(tmp_path / "t"), "--from-samples", "--n-boot", "0", "--no-png"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "language_identifier" in err and "py3langid@0.3.0" in err and not (tmp_path / "t").exists()
    assert main([*args, "--allow-different", "language_identifier"]) == 0
