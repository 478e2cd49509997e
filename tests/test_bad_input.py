"""Bad input through the installed ``xdet`` script: one line naming the file/field/value, exit 2, and the
output path does not exist afterwards (validation happens before anything is created).
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from xdet.cli import main


@dataclass
class Case:
    name: str
    #: builds the inputs in tmp_path and returns (argv, env overrides (None: unset), the path that must stay absent)
    setup: Callable[[Path, Path, Callable[[str], Path]], tuple[list[str], dict[str, str], Path | None]]
    message: str


def _copy_de(data_dir: Path, tmp: Path) -> Path:
    out = tmp / "splits"
    out.mkdir()
    for f in data_dir.glob("de_*.csv"):
        shutil.copy(f, out / f.name)
    return out


def _rows(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [r[0] for r in csv.reader(fh)]


def _write(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, quoting=csv.QUOTE_ALL).writerows(rows)


def _eval(model: str | Path, tmp: Path, *extra: str, tasks: str = "xdet_ppl_toxic_test_de") -> list[str]:
    return ["eval", "--model", str(model), "--out", str(tmp / "run"), "--tasks", tasks, "--limit", "2", *extra]


def _train(model: str | Path, tmp: Path, strategy: str, *extra: str) -> list[str]:
    return ["train", "--model", str(model), "--strategy", strategy, "--out", str(tmp / "a"), *extra]


def _data_case(mutate: Callable[[Path], None]):
    def setup(tmp, data_dir, model):
        splits = _copy_de(data_dir, tmp)
        mutate(splits)
        return _eval(model("llama"), tmp, "--data-dir", str(splits)), {}, tmp / "run"
    return setup


def _drop_file(d: Path) -> None:
    (d / "de_test_toxic.csv").unlink()


def _extra_column(d: Path) -> None:
    p = d / "de_test_toxic.csv"
    rows = [[r] for r in _rows(p)]
    rows[6].append("second column")
    _write(p, rows)


def _mismatch(d: Path) -> None:
    p = d / "de_test_neutral.csv"
    _write(p, [[r] for r in _rows(p)[:90]])


def _empty(d: Path) -> None:
    p = d / "de_test_toxic.csv"
    rows = [[r] for r in _rows(p)]
    rows[9] = [""]
    _write(p, rows)


def _latin1(d: Path) -> None:
    p = d / "de_test_toxic.csv"
    p.write_bytes(p.read_bytes().replace(b"\n", b"\n\xff", 1))


def _results_truncated(tmp, data_dir, model):
    from xdet.runs.writer import write_run

    run = tmp / "results" / "zs"
    write_run(run, model="m", strategy="zs", samples={"xdet_toxic_test_de": {"avg_toxicity": [10.0, 20.0]}})
    (results_file,) = run.glob("**/results_*.json")
    results_file.write_text(results_file.read_text()[:40])
    return ["tables", str(tmp / "results"), "--out", str(tmp / "tables")], {}, tmp / "tables"


def _adapter_without_manifest(tmp, data_dir, model):
    adapter = tmp / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    return _eval(model("llama"), tmp, "--peft", str(adapter)), {}, tmp / "run"


def _adapter_other_base(tmp, data_dir, model):
    from xdet_train.config import TrainConfig
    from xdet_train.train import train_adapter

    adapter = train_adapter(str(model("llama")), "x-ft:de", tmp / "adapter",
                            TrainConfig(max_steps=1, eval_examples=0), progress=False)
    return _eval(model("bloom"), tmp, "--peft", str(adapter)), {}, tmp / "run"


def _broken_weights(model: Path, tmp: Path) -> Path:
    """A model folder whose config loads but whose weights do not: loading it fails loudly."""
    out = tmp / "broken-model"
    shutil.copytree(model, out)
    for weights in out.glob("*.safetensors"):
        weights.write_bytes(b"not a safetensors file")
    return out


def _rtplx(tmp: Path, data_dir: Path, edit: Callable[[Path], None] | None = None, **kwargs) -> Path:
    """RTP-LX release files (tests/natural_fixtures.py, published layout), optionally broken by ``edit``."""
    from natural_fixtures import write_rtplx_release

    folder = write_rtplx_release(tmp / "rtplx", data_dir=data_dir, n=3, locales=("DE", "FI"), **kwargs)
    if edit is not None:
        edit(folder / "RTP_LX_DE.json")
    return folder


def _eval_rtplx(model: str | Path, tmp: Path, folder: Path, *extra: str, langs: str = "de") -> list[str]:
    return ["eval", "--model", str(model), "--out", str(tmp / "run"), "--suites", "rtplx", "--langs", langs,
            "--rtplx-dir", str(folder), "--limit", "2", *extra]


def _bad_card(tmp: Path) -> Path:
    """A validity card whose κ is a word."""
    import json

    entry = {"lang": "de", "kappa": {"value": "high", "lo": None, "hi": None}, "kappa_n": 3,
             "roc_auc": {"value": None, "lo": None, "hi": None}}
    path = tmp / "card.json"
    path.write_text(json.dumps({"schema": "xdet-validity-card/1", "ident": "local@v1", "locales": {"DE": entry}}))
    return path


def _json_array(path: Path) -> None:
    path.write_text("[" + ",\n".join(path.read_text(encoding="utf-8").splitlines()) + "]\n", encoding="utf-8")


def _no_prompt(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace('"Prompt"', '"Prompts"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _not_a_language_model(tmp: Path) -> Path:
    """A model folder whose architecture (a vision transformer) PEFT cannot train as a language model."""
    from transformers import AutoConfig

    out = tmp / "vit-model"
    AutoConfig.for_model("vit", hidden_size=32, num_hidden_layers=1, num_attention_heads=2).save_pretrained(out)
    return out


def _without_tokenizer(model: Path, tmp: Path) -> Path:
    out = tmp / "no-tokenizer"
    out.mkdir()
    for f in model.iterdir():
        if not f.name.startswith(("tokenizer", "special_tokens")):
            shutil.copy(f, out / f.name)
    return out


def _plain_lm_eval_output(tmp: Path, *, samples: bool = True, model_args: bool = True) -> Path:
    """A folder as ``lm_eval --output_path <dir> [--log_samples]`` leaves it (lm-eval 0.4 layout)."""
    import json

    folder = tmp / "lm-out" / "__models__tiny"
    folder.mkdir(parents=True)
    config = {"model": "hf", "batch_size": 8} | ({"model_args": "pretrained=/models/tiny"} if model_args else {})
    results = {"results": {"xdet_ppl_toxic_test_de": {"alias": "xdet_ppl_toxic_test_de", "bits_per_byte,none": 5.0}},
               "config": config, "model_name": "/models/tiny"}
    (folder / "results_2026-12-01T10-00-00.000001.json").write_text(json.dumps(results))
    if samples:
        line = {"doc_id": 0, "filter": "none", "bits_per_byte": [-7.0, 2]}
        (folder / "samples_xdet_ppl_toxic_test_de_2026-12-01T10-00-00.000001.jsonl").write_text(json.dumps(line) + "\n")
    return tmp / "lm-out"


def _different_run(tmp, data_dir, model):
    from xdet.runs.writer import write_run

    write_run(tmp / "run", model="another-model", samples={"xdet_ppl_toxic_test_de": {"bits_per_byte": [[-1.0, 2]]}})
    return _eval(model("llama"), tmp), {}, None


CASES = [
    Case("missing data directory",
         lambda tmp, d, m: (_eval(m("llama"), tmp, "--data-dir", str(tmp / "nope")), {}, tmp / "run"),
         "nope': does not exist or is not a directory"),
    Case("missing split file", _data_case(_drop_file), "de_test_toxic.csv: missing split file"),
    Case("wrong column count", _data_case(_extra_column), "de_test_toxic.csv:7: expected exactly one column, found 2"),
    Case("toxic/neutral row-count mismatch", _data_case(_mismatch), "de_test_neutral.csv has 90"),
    Case("empty sentence", _data_case(_empty), "de_test_toxic.csv:10: empty sentence"),
    Case("non-UTF-8 file", _data_case(_latin1), "de_test_toxic.csv:2: not valid UTF-8"),
    Case("unknown language code",
         lambda tmp, d, m: (["eval", "--model", "x", "--out", str(tmp / "run"), "--langs", "de,xx"], {}, tmp / "run"),
         "unknown language code 'xx'"),
    Case("unknown task",
         lambda tmp, d, m: (_eval(m("llama"), tmp, tasks="xdet_toxic_test_xx"), {}, tmp / "run"),
         "unknown task or group 'xdet_toxic_test_xx'"),
    Case("unknown strategy",
         lambda tmp, d, m: (_train(m("llama"), tmp, "z-ft:de"), {}, tmp / "a"),
         "unknown strategy 'z-ft:de'"),
    Case("percentage outside (0, 100]",
         lambda tmp, d, m: (_train(m("llama"), tmp, "p-ft:150"), {}, tmp / "a"),
         "percentage 150 must be in (0, 100]"),
    Case("adapter directory without a manifest", _adapter_without_manifest, "xdet_adapter.json: missing adapter manifest"),
    Case("adapter trained on another base model", _adapter_other_base, "trained on"),
    Case("results folder with a truncated JSON file", _results_truncated, "results_"),
    Case("XDET_SCORER names an unknown backend",
         lambda tmp, d, m: (_eval(m("llama"), tmp, tasks="xdet_toxic_test_de"), {"XDET_SCORER": "bert"}, tmp / "run"),
         "scorer 'bert' (XDET_SCORER or --scorer): unknown scorer backend 'bert'"),
    Case("Perspective asked for Amharic: refused before the model loads",
         lambda tmp, d, m: (_eval(_broken_weights(m("llama"), tmp), tmp, tasks="xdet_toxic_test_am"),
                            {"XDET_SCORER": "perspective", "PERSPECTIVE_API_KEY": "k-test-not-real"}, tmp / "run"),
         "Perspective does not support TOXICITY in language 'am'"),
    Case("the default scorer (textdetox) offline and not cached: refused before the model loads",
         lambda tmp, d, m: (_eval(_broken_weights(m("llama"), tmp), tmp, tasks="xdet_toxic_test_de"),
                            {"XDET_SCORER": None, "HF_HUB_OFFLINE": "1"}, tmp / "run"),
         "scorer 'textdetox' (textdetox/xlmr-large-toxicity-classifier-v2) cannot be loaded"),
    Case("the default scorer offline in a sweep: refused before any training",
         lambda tmp, d, m: (["sweep", "--model", str(m("llama")), "--out", str(tmp / "sw"), "--strategies", "x-ft",
                             "--train-langs", "de", "--eval-langs", "de"],
                            {"XDET_SCORER": None, "HF_HUB_OFFLINE": "1"}, tmp / "sw"),
         "scorer 'textdetox' (textdetox/xlmr-large-toxicity-classifier-v2) cannot be loaded"),
    Case("Perspective key missing",
         lambda tmp, d, m: (_eval(m("llama"), tmp, tasks="xdet_toxic_test_de"), {"XDET_SCORER": "perspective"},
                            tmp / "run"),
         "PERSPECTIVE_API_KEY"),
    Case("unknown task family",
         lambda tmp, d, m: (["eval", "--model", str(m("llama")), "--out", str(tmp / "run"), "--families", "gen,xx"],
                            {}, tmp / "run"),
         "unknown task family xx"),
    Case("model folder that does not exist",
         lambda tmp, d, m: (_eval(tmp / "no-such-model", tmp), {}, tmp / "run"),
         "no-such-model': no such folder, and not a hub id"),
    Case("hub model while the hub is unreachable",
         lambda tmp, d, m: (_eval("CohereForAI/not-cached-here", tmp), {"HF_HUB_OFFLINE": "1"}, tmp / "run"),
         "the model hub cannot be reached"),
    Case("a different complete run in --out", _different_run, "already holds a different complete run (model:"),
    Case("sweep shard outside the matrix",
         lambda tmp, d, m: (["sweep", "--model", str(m("llama")), "--out", str(tmp / "sw"), "--shard", "4/2"],
                            {}, tmp / "sw"),
         "--shard '4/2'"),
    Case("analysis without an input",
         lambda tmp, d, m: (["analyze", "--out", str(tmp / "an")], {}, tmp / "an"),
         "give the input: --paper"),
    Case("no documents per task",
         lambda tmp, d, m: (_eval(m("llama"), tmp, "--limit", "0"), {}, tmp / "run"),
         "--limit must be at least 1 document per task, got 0"),
    Case("no completions per prompt in a sweep",
         lambda tmp, d, m: (["sweep", "--model", str(m("llama")), "--out", str(tmp / "sw"), "--repeats", "0"],
                            {}, tmp / "sw"),
         "--repeats must be at least 1, got 0"),
    Case("empty language list (an unset shell variable)",
         lambda tmp, d, m: (["eval", "--model", "x", "--out", str(tmp / "run"), "--langs", ""], {}, tmp / "run"),
         "argument --langs: expected a comma-separated list, got ''"),
    Case("batch size 0",
         lambda tmp, d, m: (_eval(m("llama"), tmp, "--batch-size", "0"), {}, tmp / "run"),
         "argument --batch-size: expected a positive integer, 'auto' or 'auto:N', got '0'"),
    Case("model argument the model does not take",
         lambda tmp, d, m: (_eval(m("llama"), tmp, "--model-args", "colour=blue"), {}, tmp / "run"),
         "--model-args 'colour=blue': the model does not take 'colour'"),
    Case("misspelt table metric",
         lambda tmp, d, m: (["tables", str(tmp), "--out", str(tmp / "t"), "--metric", "toxicity=avg_toxicty"],
                            {}, tmp / "t"),
         "unknown toxicity metric 'avg_toxicty'"),
    Case("misspelt table column",
         lambda tmp, d, m: (["tables", str(tmp), "--out", str(tmp / "t"), "--langs", "de,xx"], {}, tmp / "t"),
         "argument --langs: unknown language code 'xx'"),
    Case("output folder is an existing file",
         lambda tmp, d, m: ((tmp / "f").write_text("x") and ["analyze", "--paper", "--out", str(tmp / "f")], {}, None),
         "f: exists and is not a folder"),
    Case("xdet eval's output folder is an existing file",
         lambda tmp, d, m: ((tmp / "run").write_text("x") and _eval(m("llama"), tmp), {}, None), "run': exists and is not"),
    Case("a misspelt flag (which also leaves a required one missing)",
         lambda tmp, d, m: (["eval", "--modle", str(m("llama")), "--out", str(tmp / "run")], {}, tmp / "run"),
         "unrecognized arguments: --modle (did you mean --model?)"),
    Case("an abbreviated flag (never guessed)",
         lambda tmp, d, m: (_train(m("llama"), tmp, "x-ft:de", "--max-step", "3"), {}, tmp / "a"),
         "unrecognized arguments: --max-step (did you mean --max-steps?)"),
    Case("DPO beta that would reward the toxic side",
         lambda tmp, d, m: (_train(m("llama"), tmp, "dpo:de", "--dpo-beta", "-1"), {}, tmp / "a"),
         "--dpo-beta must lie in (0.0, inf), got -1.0"),
    Case("unknown learning-rate schedule",
         lambda tmp, d, m: (_train(m("llama"), tmp, "x-ft:de", "--lr-scheduler", "sideways"), {}, tmp / "a"),
         "--lr-scheduler 'sideways': expected one of linear, cosine"),
    Case("a language pool for a single-language strategy",
         lambda tmp, d, m: (_train(m("llama"), tmp, "x-ft:de", "--langs", "en,es"), {}, tmp / "a"),
         "--langs: strategy 'x-ft:de' has no language pool"),
    Case("bad hyper-parameter in a sweep (refused before the first configuration runs)",
         lambda tmp, d, m: (["sweep", "--model", str(m("llama")), "--out", str(tmp / "sw"), "--strategies", "zs,dpo",
                             "--lora-dropout", "1.5"], {}, tmp / "sw"),
         "--lora-dropout must lie in [0.0, 1.0), got 1.5"),
    Case("--langs beside --tasks (it would be ignored)",
         lambda tmp, d, m: (["eval", "--model", "x", "--out", str(tmp / "run"), "--tasks", "xdet-avg-toxic-test",
                             "--langs", "de"], {}, tmp / "run"),
         "--tasks names the tasks itself"),
    Case("RTP-LX folder without release files",
         lambda tmp, d, m: ((tmp / "empty").mkdir() or _eval_rtplx(m("llama"), tmp, tmp / "empty"), {}, tmp / "run"),
         "empty: no RTP-LX release files (RTP_LX_<LOCALE>.json) in this folder"),
    Case("RTP-LX file that is not JSON lines",
         lambda tmp, d, m: (_eval_rtplx(m("llama"), tmp, _rtplx(tmp, d, _json_array)), {}, tmp / "run"),
         "RTP_LX_DE.json:1: not JSON lines"),
    Case("RTP-LX line without a prompt",
         lambda tmp, d, m: (_eval_rtplx(m("llama"), tmp, _rtplx(tmp, d, _no_prompt)), {}, tmp / "run"),
         "RTP_LX_DE.json:2: field 'Prompt' missing"),
    Case("unknown RTP-LX locale",
         lambda tmp, d, m: (_eval_rtplx(m("llama"), tmp, _rtplx(tmp, d), "--rtplx-locales", "de=DE-CHX"), {},
                            tmp / "run"),
         "unknown RTP-LX locale 'DE-CHX'"),
    Case("a language the chosen scorer does not cover: refused before the model loads",
         lambda tmp, d, m: (_eval_rtplx(_broken_weights(m("llama"), tmp), tmp, _rtplx(tmp, d), langs="de,fi"), {},
                            tmp / "run"),
         "scorer 'local' (trained on the paper's ParaDetox data) does not cover language 'fi'"),
    Case("a routing list whose scorers cover no language asked: refused before the model loads",
         lambda tmp, d, m: (_eval_rtplx(_broken_weights(m("llama"), tmp), tmp, _rtplx(tmp, d), "--scorer",
                                        f"local|hf:{tmp / 'no-classifier'}#langs=sw", langs="fi"), {}, tmp / "run"),
         "no scorer of 'local|hf:"),
    Case("a routing list with an empty member",
         lambda tmp, d, m: (_eval(m("llama"), tmp, "--scorer", "local|", tasks="xdet_toxic_test_de"), {}, tmp / "run"),
         "an empty scorer in the '|' list"),
    Case("a routing list with an unknown member (refused before any listed scorer is built)",
         lambda tmp, d, m: (_eval(m("llama"), tmp, "--scorer", "local|bert", tasks="xdet_toxic_test_de"), {},
                            tmp / "run"),
         "unknown scorer backend 'bert'"),
    Case("a validity card with a field that is not a number",
         lambda tmp, d, m: (["tables", str(tmp), "--out", str(tmp / "t"), "--validity-cards", str(_bad_card(tmp))],
                            {}, tmp / "t"),
         "card.json: field locales.DE.kappa.value: expected a number or null, got 'high'"),
    Case("scorer evaluate --save without --against rtplx",
         lambda tmp, d, m: (["scorer", "evaluate", "local", "--save", "--json", str(tmp / "report.json")], {},
                            tmp / "report.json"),
         "--save writes a validity card, which is measured against native speakers"),
    Case("scorer evaluate --against rtplx on files without annotations",
         lambda tmp, d, m: (["scorer", "evaluate", "local", "--against", "rtplx", "--langs", "de", "--rtplx-dir",
                             str(_rtplx(tmp, d, prompt_only=("DE",))), "--json", str(tmp / "report.json")], {},
                            tmp / "report.json"),
         "RTP_LX_DE.json:1: field 'PromptAnnotationsRaw' (or 'PromptAnnotations', or the older"),
    Case("a model whose architecture PEFT cannot train as a language model",
         lambda tmp, d, m: (_train(_not_a_language_model(tmp), tmp, "x-ft:de"), {}, tmp / "a"),
         "(vit): transformers has no causal language model class"),
    Case("DPO asked of a seq2seq model",
         lambda tmp, d, m: (_train(_broken_weights(m("mt5"), tmp), tmp, "dpo:de"), {}, tmp / "a"),
         "DPO needs a causal LM"),
    Case("a model folder without a tokenizer (refused before the weights load)",
         lambda tmp, d, m: (_train(_without_tokenizer(_broken_weights(m("llama"), tmp), tmp), tmp, "x-ft:de"),
                            {}, tmp / "a"),
         "no-tokenizer': cannot load its tokenizer"),
    Case("LoRA target modules the model lacks (refused before the weights load)",
         lambda tmp, d, m: (_train(_broken_weights(m("llama"), tmp), tmp, "x-ft:de", "--target-modules",
                                   "q_proj,query_key_value"), {}, tmp / "a"),
         "target module(s) query_key_value not found; its linear layers are"),
    Case("LoRA on a mixture-of-experts model's fused expert container, which PEFT cannot wrap (before the weights load)",
         lambda tmp, d, m: (_train(_broken_weights(m("mixtral"), tmp), tmp, "x-ft:de", "--target-modules", "experts"),
                            {}, tmp / "a"),
         "(mixtral): PEFT cannot put LoRA on experts: Target module MixtralExperts("),
    Case("LoRA on a router PEFT wraps only without dropout: checked with training's LoRA config, before the weights load",
         lambda tmp, d, m: (_train(_broken_weights(m("mixtral"), tmp), tmp, "x-ft:de", "--target-modules", "gate"),
                            {}, tmp / "a"),
         "(mixtral): PEFT cannot put LoRA on gate: lora.ParamWrapper does not work with lora_dropout != 0"),
    Case("LoRA on a Mamba layer PEFT refuses, in a sweep (before any training)",
         lambda tmp, d, m: (["sweep", "--model", str(_broken_weights(m("mamba"), tmp)), "--out", str(tmp / "sw"),
                             "--strategies", "zs,x-ft:de", "--eval-langs", "de", "--target-modules", "in_proj,out_proj"],
                            {}, tmp / "sw"),
         "(mamba): PEFT cannot put LoRA on in_proj,out_proj: [PEFT:PeftType.LORA] Module 'out_proj' is incompatible"),
    Case("LoRA target modules the model lacks, in a sweep",
         lambda tmp, d, m: (["sweep", "--model", str(_broken_weights(m("llama"), tmp)), "--out", str(tmp / "sw"),
                             "--strategies", "zs,x-ft:de", "--eval-langs", "de", "--target-modules", "c_attn"],
                            {}, tmp / "sw"),
         "target module(s) c_attn not found"),
    Case("an lm-eval output folder without samples",
         lambda tmp, d, m: (["tables", str(_plain_lm_eval_output(tmp, samples=False)), "--out", str(tmp / "t")],
                            {}, tmp / "t"),
         "no samples_*.jsonl of its invocation beside it: rerun lm_eval with --log_samples"),
    Case("an lm-eval output folder without model arguments",
         lambda tmp, d, m: (["tables", str(_plain_lm_eval_output(tmp, model_args=False)), "--out", str(tmp / "t")],
                            {}, tmp / "t"),
         "names no model arguments (config.model_args)"),
    Case("--out is a non-empty folder that is no run folder",
         lambda tmp, d, m: ((tmp / "mine").mkdir() or (tmp / "mine" / "notes.txt").write_text("x") and
                            ["eval", "--model", str(m("llama")), "--out", str(tmp / "mine"), "--limit", "2"], {},
                            tmp / "mine" / "lm_eval"),
         "is not empty and is not an xdet run folder (it holds notes.txt"),
    Case("--executor slurm where no SLURM is installed (sbatch not on PATH)",
         lambda tmp, d, m: (["sweep", "--model", str(m("llama")), "--out", str(tmp / "sw"), "--executor", "slurm"],
                            {"PATH": str(tmp / "empty-path")}, tmp / "sw"),
         "--executor slurm: no SLURM scheduler here (sbatch, squeue, sinfo, scontrol not on PATH)"),
    Case("output path not writable",
         lambda tmp, d, m: ((tmp / "file").write_text("x") and _eval(m("llama"), tmp / "file"), {}, tmp / "file" / "run"),
         "not writable"),
]


XDET = Path(sys.executable).with_name("xdet")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_clearly(case, tmp_path, data_dir, tiny_model):
    argv, env, must_not_exist = case.setup(tmp_path, data_dir, tiny_model)
    environment = {k: v for k, v in (os.environ | env).items() if v is not None}  # None: unset it
    proc = subprocess.run([str(XDET), *argv], capture_output=True, text=True, timeout=300, env=environment)
    err = proc.stderr.strip()
    assert proc.returncode == 2, err
    assert len(err.splitlines()) == 1, f"more than one line on stderr:\n{err}"
    assert re.match(rf"xdet {argv[0]}( [a-z]+)?: error: ", err), err  # the command (and subcommand) that failed
    assert case.message in err, err
    if must_not_exist is not None:
        assert not must_not_exist.exists(), f"{must_not_exist} was created"


def test_there_are_as_many_cases_as_the_readme_says():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"`tests/test_bad_input.py::test_bad_input_is_refused_clearly` ({len(CASES)} cases)" in readme


def test_corrupt_run_record_is_named(tmp_path, tiny_model, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "xdet_run.json").write_text('{"schema": "xdet-run/1", "model"')
    assert main(_eval(tiny_model("llama"), tmp_path)) == 2
    assert "xdet_run.json: corrupt run record" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU, so --device cuda is valid here")
def test_cuda_without_a_gpu_is_refused_before_anything(tmp_path, tiny_model):
    proc = subprocess.run([str(XDET), *_eval(tiny_model("llama"), tmp_path, "--device", "cuda:0")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "--device cuda:0: this torch" in proc.stderr and "no CUDA GPU" in proc.stderr
    assert not (tmp_path / "run").exists()
