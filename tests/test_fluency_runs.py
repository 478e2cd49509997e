"""``xdet fluency`` on real runs (``xdet eval`` folders and plain ``lm_eval`` output of a tiny model and a
trained adapter): the files beside the samples against manual forward passes, the cache (a rerun makes no
model call; a new revision of the reference is another reference), ``xdet tables --metric fluency`` (a Δ
with intervals, refused across reference models), ``xdet analyze`` and bad input."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from xdet.cli import main
from xdet.fluency import plan_fluency, run_fluency
from xdet.fluency.cache import FluencyCache
from xdet_tasks import TASK_DIR
from xdet_train.config import TrainConfig
from xdet_train.tiny import build_model
from xdet_train.train import train_adapter

TASK = "xdet_toxic_test_de"
FAST = TrainConfig(max_steps=4, batch_size=4, grad_accum=1, max_examples=8, learning_rate=2e-2, eval_examples=0,
                   max_length=48)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model):
    """A zero-shot and an X-FT (de) ``xdet eval`` run with 3 completions a prompt, a plain ``lm_eval`` zero-shot
    run, and two reference models: the tiny llama itself (a) and one with other weights (b)."""
    root = tmp_path_factory.mktemp("fluency-runs")
    model = Path(shutil.copytree(tiny_model("llama"), root / "models" / "llama"))
    tok = AutoTokenizer.from_pretrained(model)
    build_model("llama", tok, seed=1).save_pretrained(root / "models" / "other")
    tok.save_pretrained(root / "models" / "other")
    adapter = train_adapter(str(model), "x-ft:de", root / "adapters" / "de", FAST, progress=False)
    for name, peft in (("zs", None), ("ft", adapter)):
        argv = ["eval", "--model", str(model), "--tasks", TASK, "--limit", "4", "--repeats", "3", "--batch-size", "8",
                "--out", str(root / "xdet" / name)] + (["--peft", str(peft)] if peft else [])
        assert main(argv) == 0
    cmd = [sys.executable, "-m", "lm_eval", "--tasks", TASK, "--include_path", str(TASK_DIR), "--model", "hf",
           "--model_args", f"pretrained={model}", "--log_samples", "--output_path", str(root / "plain"),
           "--limit", "4", "--batch_size", "8", "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A fresh fluency cache per test, so one test's scores are never another's cache hits."""
    monkeypatch.setenv("XDET_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _copy(runs: Path, part: str, dest: Path) -> Path:
    return Path(shutil.copytree(runs / part, dest))


def _samples(folder: Path) -> list[Path]:
    return sorted(folder.rglob("samples_xdet_*.jsonl"))


def _manual_nll(model, tok, context: str, completion: str) -> tuple[float, int] | None:
    """-log p(completion | context) by one unpadded forward pass over the separately tokenized halves;
    ``None`` where the two halves' tokens would merge (covered in test_fluency_compute)."""
    prompt = tok(context, add_special_tokens=False)["input_ids"]
    cont = tok(completion, add_special_tokens=False)["input_ids"]
    if tok(context + completion, add_special_tokens=False)["input_ids"] != prompt + cont:
        return None
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([prompt + cont])).logits[0].double(), dim=-1)
    return -sum(float(logp[len(prompt) - 1 + j, t]) for j, t in enumerate(cont)), len(cont)


def _check_against_manual(fluency_file: Path, samples: Path, reference: Path) -> int:
    model = AutoModelForCausalLM.from_pretrained(reference).eval()
    tok = AutoTokenizer.from_pretrained(reference)
    lines = [json.loads(x) for x in samples.read_text().splitlines() if x.strip()]
    rows = {r["doc_id"]: r for r in map(json.loads, fluency_file.read_text().splitlines()[1:])}
    checked = 0
    for line in lines:
        context = line["arguments"]["gen_args_0"]["arg_0"]
        row = rows[line["doc_id"]]
        for k, completion in enumerate(c for group in line["resps"] for c in group):
            expected = _manual_nll(model, tok, context, completion)
            if not completion.strip():
                assert row["tokens"][k] == 0 and row["perplexity"][k] is None
            elif expected is not None:
                assert row["nll"][k] == pytest.approx(expected[0], rel=1e-5) and row["tokens"][k] == expected[1]
                assert row["perplexity"][k] == pytest.approx(math.exp(expected[0] / expected[1]), rel=1e-5)
                checked += 1
    return checked


def test_fluency_files_beside_the_samples_match_manual_forward_passes(runs, tmp_path, cache_dir, capsys):
    xdet = _copy(runs, "xdet", tmp_path / "xdet")
    plain = _copy(runs, "plain", tmp_path / "plain")
    before = {p: p.read_bytes() for p in [*_samples(xdet), *_samples(plain)]}
    reference = runs / "models" / "llama"
    assert main(["fluency", str(xdet), str(plain), "--model", str(reference), "--batch-size", "4"]) == 0
    assert "28 completion(s): 28 scored by the model, 0 from the cache" in capsys.readouterr().out  # 2 x 4 x 3 + 4 x 1
    checked = 0
    for samples in before:
        assert samples.read_bytes() == before[samples], "lm-eval's own files are never modified"
        [fluency] = samples.parent.glob(f"fluency_{samples.name.removeprefix('samples_').removesuffix('.jsonl')}__*")
        header = json.loads(fluency.read_text().splitlines()[0])
        assert header["samples_file"] == samples.name and header["reference"]["model"] == str(reference)
        assert header["counts"]["completions"] == (12 if "xdet" in samples.parts[-5:-2] else 4)
        checked += _check_against_manual(fluency, samples, reference)
    assert checked >= 20  # most generated pairs do not merge across the join


def test_a_rerun_reads_everything_from_the_cache_and_makes_no_model_call(runs, tmp_path, cache_dir, capsys):
    xdet = _copy(runs, "xdet", tmp_path / "xdet")
    reference = str(runs / "models" / "llama")
    assert main(["fluency", str(xdet), "--model", reference]) == 0
    written = sorted(xdet.rglob("fluency_*.jsonl"))
    first = {p: p.read_text().splitlines()[1:] for p in written}
    assert main(["fluency", str(xdet), "--model", reference]) == 0  # nothing to do: files up to date
    assert "0 fluency file(s) written, 2 up to date" in capsys.readouterr().out
    for path in written:
        path.unlink()
    model = AutoModelForCausalLM.from_pretrained(reference).eval()
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    cache = FluencyCache()
    summary = run_fluency(plan_fluency([xdet], reference), cache=cache, model=model)
    assert calls == [] and summary.computed == 0 and summary.from_cache == 24 and cache.misses == 0
    assert {p: p.read_text().splitlines()[1:] for p in written} == first


def test_a_new_revision_of_the_reference_under_the_same_path_is_scored_again(runs, tmp_path, cache_dir):
    """The cache keys on the reference's files hash, not its name: new weights in the same folder give new values."""
    xdet = _copy(runs, "xdet", tmp_path / "xdet")
    reference = Path(shutil.copytree(runs / "models" / "llama", tmp_path / "reference"))
    assert main(["fluency", str(xdet), "--model", str(reference)]) == 0
    old = sorted(xdet.rglob("fluency_*.jsonl"))
    shutil.copy(runs / "models" / "other" / "model.safetensors", reference / "model.safetensors")
    assert main(["fluency", str(xdet), "--model", str(reference)]) == 0
    new = sorted(set(xdet.rglob("fluency_*.jsonl")) - set(old))
    assert len(new) == 2, "another reference identity gets its own file beside the old one"
    for path in new:
        samples = path.with_name("samples_" + path.name.removeprefix("fluency_").rsplit("__", 1)[0] + ".jsonl")
        assert _check_against_manual(path, samples, reference) >= 8


def _csv(path: Path) -> dict[str, dict[str, str]]:
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    return {row.split(",")[0]: dict(zip(header, row.split(","), strict=True)) for row in lines[1:]}


def _median(path: Path) -> float:
    """The median completion perplexity, from the file's nll and token counts (not its perplexity column)."""
    rows = map(json.loads, path.read_text().splitlines()[1:])
    return float(np.median([math.exp(n / t) for row in rows for n, t in zip(row["nll"], row["tokens"], strict=True)
                            if t]))


@pytest.fixture(scope="module")
def scored(runs, tmp_path_factory):
    """The xdet and plain runs with fluency files under reference a."""
    root = tmp_path_factory.mktemp("scored")
    shutil.copytree(runs / "xdet", root / "xdet")
    shutil.copytree(runs / "plain", root / "plain")
    assert main(["fluency", str(root / "xdet"), str(root / "plain"), "--model", str(runs / "models" / "llama")]) == 0
    return root


def test_tables_give_the_median_and_its_delta_with_intervals(scored, tmp_path, capsys):
    argv = ["tables", str(scored / "xdet"), "--out", str(tmp_path / "t"), "--metric", "fluency", "--n-boot", "200",
            "--no-png"]
    assert main(argv) == 0
    shown = capsys.readouterr().out  # the table asked for is the one on screen
    assert "llama · fluency (median_completion_perplexity) · toxic-test" in shown and "· toxicity (" not in shown
    table = _csv(tmp_path / "t" / "llama__fluency__toxic-test.csv")
    zs_file, ft_file = (next((scored / "xdet" / n).rglob("fluency_*.jsonl")) for n in ("zs", "ft"))
    zs, ft = _median(zs_file), _median(ft_file)
    assert float(table["ZS"]["de"]) == pytest.approx(zs, abs=1e-4)
    assert float(table["de"]["de"]) == pytest.approx(zs - ft, abs=1e-4)  # Δ = ZS - FT
    for row in ("ZS", "de"):
        lo, hi, value = (float(table[row][k]) for k in ("de_lo", "de_hi", "de"))
        assert lo < hi and lo <= value + 1e-9 and value <= hi + 1e-9
    md = (tmp_path / "t" / "llama__fluency__toxic-test.md").read_text()
    assert "under llama (" in md and "more fluent" in md
    assert main([*argv[:3], str(tmp_path / "s"), *argv[4:], "--from-samples"]) == 0  # rebuilt from the files alone
    assert _csv(tmp_path / "s" / "llama__fluency__toxic-test.csv") == table
    assert main(["tables", str(scored / "plain"), "--out", str(tmp_path / "p"), "--metric", "fluency=" +
                 "mean_completion_perplexity_below_1e4", "--n-boot", "50", "--no-png"]) == 0
    assert (tmp_path / "p" / "llama__fluency__toxic-test.csv").is_file()


def test_analyze_reads_fluency_from_runs(scored, tmp_path, capsys):
    assert main(["analyze", "--sweep", str(scored / "xdet"), "--metric", "fluency", "--out", str(tmp_path / "a"),
                 "--n-perm", "50", "--n-boot", "50"]) == 0
    assert "fluency = median_completion_perplexity" in capsys.readouterr().out
    found = json.loads((tmp_path / "a" / "analysis.json").read_text())
    assert "fluency" in json.dumps(found)


def test_fluency_under_different_references_is_never_subtracted(runs, scored, tmp_path, cache_dir, capsys):
    mixed = Path(shutil.copytree(scored / "xdet", tmp_path / "mixed"))
    for path in (mixed / "ft").rglob("fluency_*.jsonl"):
        path.unlink()
    assert main(["fluency", str(mixed / "ft"), "--model", str(runs / "models" / "other")]) == 0
    capsys.readouterr()
    assert main(["tables", str(mixed), "--out", str(tmp_path / "t"), "--metric", "fluency", "--no-png"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not comparable" in err and "llama (" in err and "other (" in err
    assert not (tmp_path / "t").exists()
    # both references beside one samples file: the tables ask which, and take the one named
    assert main(["fluency", str(mixed / "ft"), "--model", str(runs / "models" / "llama")]) == 0
    capsys.readouterr()
    assert main(["tables", str(mixed), "--out", str(tmp_path / "t"), "--metric", "fluency", "--no-png"]) == 2
    assert "--fluency-model" in capsys.readouterr().err
    assert main(["tables", str(mixed), "--out", str(tmp_path / "t"), "--metric", "fluency", "--no-png",
                 "--fluency-model", "llama"]) == 0


def test_tables_without_fluency_files_say_how_to_make_them(runs, tmp_path, capsys):
    assert main(["tables", str(runs / "xdet"), "--out", str(tmp_path / "t"), "--metric", "fluency"]) == 2
    err = capsys.readouterr().err
    assert "xdet fluency" in err and not (tmp_path / "t").exists()


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("case", ["no-samples", "seq2seq", "missing", "no-tokenizer", "corrupt-samples", "device"])
def test_bad_input_is_one_line_and_nothing_is_written(runs, tiny_model, tmp_path, cache_dir, capsys, case):
    folder = _copy(runs, "xdet", tmp_path / "runs")
    reference = runs / "models" / "llama"
    expected = {"no-samples": "no samples file of a generation task", "seq2seq": "is sequence-to-sequence",
                "missing": "no such folder", "no-tokenizer": "cannot load its tokenizer",
                "corrupt-samples": ":2: corrupt or truncated JSON line", "device": "--device 'gpu0': not a torch device"}[case]
    if case == "no-samples":
        folder = tmp_path / "empty"
        (folder / "lm_eval").mkdir(parents=True)
    elif case == "seq2seq":
        reference = tiny_model("mt5")
    elif case == "missing":
        reference = tmp_path / "nowhere"
    elif case == "no-tokenizer":
        reference = Path(shutil.copytree(reference, tmp_path / "bare"))
        for name in ("tokenizer.json", "tokenizer_config.json"):
            (reference / name).unlink()
    elif case == "corrupt-samples":
        samples = _samples(folder)[0]
        lines = samples.read_text().splitlines()
        samples.write_text("\n".join([lines[0], lines[1][:40], *lines[2:]]) + "\n")
    before = _listing(folder)
    device = ["--device", "gpu0"] if case == "device" else []
    assert main(["fluency", str(folder), "--model", str(reference), *device]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("xdet fluency: error:") and expected in err, err
    assert _listing(folder) == before and not (cache_dir / "fluency.sqlite3").exists()


def test_a_fluency_file_of_other_samples_is_refused_until_rescored(runs, scored, tmp_path, cache_dir, capsys):
    folder = Path(shutil.copytree(scored / "xdet", tmp_path / "runs"))
    samples = _samples(folder / "zs")[0]
    lines = samples.read_text().splitlines()
    first = json.loads(lines[0])
    first["resps"][0][0] += " and more"
    samples.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    argv = ["tables", str(folder), "--out", str(tmp_path / "t"), "--metric", "fluency", "--no-png", "--n-boot", "20"]
    assert main(argv) == 2
    assert "made from other contents of" in capsys.readouterr().err
    assert main(["fluency", str(folder), "--model", str(runs / "models" / "llama")]) == 0
    assert "1 fluency file(s) written, 1 up to date" in capsys.readouterr().out
    assert main(argv) == 0
