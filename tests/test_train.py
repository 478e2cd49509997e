"""LoRA training on tiny local models of every family: the adapter moves, the loss falls, lm-eval reloads it.

Budget: the module must run in under 3 minutes on 2 CPU cores, so every run trains a few steps on a
small seeded subset of the real splits with a high learning rate.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from xdet.cli import main as cli_main
from xdet_tasks import TASK_DIR
from xdet_tasks.errors import XdetError
from xdet_tasks.suites.paradetox import load_pairs
from xdet_train.config import TrainConfig
from xdet_train.dpo import preference_rows
from xdet_train.manifest import MANIFEST_NAME, check_adapter_base, read_manifest
from xdet_train.train import train_adapter

FAST = TrainConfig(
    max_steps=8, batch_size=4, grad_accum=1, max_examples=16, learning_rate=2e-2, logging_steps=1,
    eval_examples=0, max_length=64,
)


def _train_pairs(manifest: dict) -> list:
    rows = []
    for lang, indices in manifest["train_rows"].items():
        pairs = load_pairs(lang, "train")
        rows.extend(pairs[i] for i in indices)
    return rows


def _mean_loss(model, tokenizer, pairs, seq2seq: bool) -> float:
    """Mean token loss of the training targets, computed with plain forward passes."""
    eos = tokenizer.eos_token_id
    losses = []
    with torch.no_grad():
        for p in pairs:
            target = tokenizer(p.neutral, add_special_tokens=not seq2seq)["input_ids"][:63] + [eos]
            if seq2seq:
                source = tokenizer(p.toxic, return_tensors="pt")["input_ids"][:, :64]
                out = model(input_ids=source, labels=torch.tensor([target]))
            else:
                out = model(input_ids=torch.tensor([target]), labels=torch.tensor([target]))
            losses.append(out.loss.item())
    return sum(losses) / len(losses)


def _load(base: Path, adapter: Path | None):
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    seq2seq = AutoConfig.from_pretrained(base).is_encoder_decoder
    model = (AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM).from_pretrained(base)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, adapter)
    return model.eval(), AutoTokenizer.from_pretrained(base), seq2seq


def _task_manager():
    from lm_eval.tasks import TaskManager

    assert (TASK_DIR / "xdet_ppl_neutral_test_de.yaml").is_file(), f"xdet task YAMLs missing in {TASK_DIR}"
    return TaskManager(include_path=str(TASK_DIR), include_defaults=False)


def _lm_eval_ppl(base: Path, adapter: Path | None) -> float:
    import lm_eval

    args = f"pretrained={base}" + (f",peft={adapter}" if adapter else "")
    out = lm_eval.simple_evaluate(
        model="hf", model_args=args, tasks=["xdet_ppl_neutral_test_de"], limit=4, device="cpu",
        task_manager=_task_manager(),
    )
    return out["results"]["xdet_ppl_neutral_test_de"]["byte_perplexity,none"]


@pytest.mark.parametrize("family", ["llama", "cohere", "bloom", "mt5"])
def test_x_ft_de_trains_saves_and_reloads_through_lm_eval(tiny_model, tmp_path, family):
    base = tiny_model(family)
    adapter = train_adapter(str(base), "x-ft:de", tmp_path / "adapter", FAST, seed=0, progress=False)

    # standard PEFT layout + manifest
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    m = read_manifest(adapter)
    assert (m["strategy"], m["strategy_spec"], m["train_langs"], m["pct"], m["seed"]) == ("x-ft", "x-ft:de", ["de"], None, 0)
    assert m["format"] == ("pair" if family == "mt5" else "neutral-lm")
    assert m["n_train_examples"] == 16 and m["per_language"] == {"de": 16}
    assert [p["step"] for p in m["loss_curve"]] == list(range(1, 9))
    assert m["hyperparameters"]["lora_r"] == 16 and m["hyperparameters"]["quantization"] == "none"
    assert {"torch", "transformers", "peft"} <= set(m["library_versions"])
    assert not list(tmp_path.glob(".adapter.*.partial"))

    # the adapter's weights moved: LoRA B starts at zero
    weights = load_file(adapter / "adapter_model.safetensors")
    lora_b = [t for k, t in weights.items() if "lora_B" in k]
    assert lora_b and all(t.abs().max() > 0 for t in lora_b)

    # the training loss on the training set went down
    pairs = _train_pairs(m)
    base_model, tokenizer, seq2seq = _load(base, None)
    before = _mean_loss(base_model, tokenizer, pairs, seq2seq)
    tuned, _, _ = _load(base, adapter)
    after = _mean_loss(tuned, tokenizer, pairs, seq2seq)
    assert after < before, (before, after)

    # lm-eval loads the directory unchanged with peft= and runs an xdet task
    ppl = _lm_eval_ppl(base, adapter)
    assert math.isfinite(ppl) and ppl > 1
    if family == "llama":  # the adapter is really applied: the base model scores differently
        assert _lm_eval_ppl(base, None) != pytest.approx(ppl, rel=1e-9)


def test_training_is_deterministic_for_a_seed(tiny_model, tmp_path):
    base = str(tiny_model("llama"))
    cfg = TrainConfig(max_steps=2, batch_size=4, grad_accum=1, max_examples=8, eval_examples=0, max_length=48)
    a = load_file(train_adapter(base, "x-ft:en", tmp_path / "a", cfg, seed=5, progress=False) / "adapter_model.safetensors")
    b = load_file(train_adapter(base, "x-ft:en", tmp_path / "b", cfg, seed=5, progress=False) / "adapter_model.safetensors")
    c = load_file(train_adapter(base, "x-ft:en", tmp_path / "c", cfg, seed=6, progress=False) / "adapter_model.safetensors")
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def _margin(model, tokenizer, rows) -> float:
    """Mean log p(chosen | prompt) - log p(rejected | prompt) under ``model``."""

    def logp(prompt: str, completion: str) -> float:
        p = tokenizer(prompt)["input_ids"]
        full = tokenizer(prompt + completion)["input_ids"]
        ids = torch.tensor([full])
        with torch.no_grad():
            logits = model(input_ids=ids).logits.log_softmax(-1)
        return sum(logits[0, i - 1, full[i]].item() for i in range(len(p), len(full)))

    return sum(logp(r["prompt"], r["chosen"]) - logp(r["prompt"], r["rejected"]) for r in rows) / len(rows)


def test_dpo_raises_the_chosen_over_rejected_margin(tiny_model, tmp_path):
    base = tiny_model("llama")
    cfg = TrainConfig(max_steps=6, batch_size=4, grad_accum=1, max_examples=8, learning_rate=2e-2,
                      eval_examples=0, max_length=64, logging_steps=1)
    adapter = train_adapter(str(base), "dpo:de", tmp_path / "dpo", cfg, seed=0, progress=False)
    m = read_manifest(adapter)
    assert (m["strategy"], m["format"], m["n_train_examples"]) == ("dpo", "pair", 8)
    rows = preference_rows(_train_pairs(m), m["hyperparameters"]["dpo_prompt"])
    base_model, tokenizer, _ = _load(base, None)
    tuned, _, _ = _load(base, adapter)
    before, after = _margin(base_model, tokenizer, rows), _margin(tuned, tokenizer, rows)
    assert after > before, (before, after)


def test_dpo_refuses_seq2seq(tiny_model, tmp_path):
    with pytest.raises(XdetError, match="causal LM"):
        train_adapter(str(tiny_model("mt5")), "dpo:de", tmp_path / "x", FAST, progress=False)
    assert not (tmp_path / "x").exists()


@pytest.fixture(scope="module")
def small_adapter(tiny_model, tmp_path_factory, data_dir):
    cfg = TrainConfig(max_steps=1, batch_size=2, grad_accum=1, max_examples=4, eval_examples=0, max_length=32)
    out = tmp_path_factory.mktemp("small") / "adapter"
    base = tiny_model("llama")
    return base, cfg, train_adapter(str(base), "x-ft:es", out, cfg, data_dir=data_dir, progress=False)


def test_identical_request_reuses_different_request_is_refused(small_adapter):
    base, cfg, adapter = small_adapter
    stamp = (adapter / "adapter_model.safetensors").stat().st_mtime_ns
    assert train_adapter(str(base), "x-ft:es", adapter, cfg, progress=False) == adapter
    assert (adapter / "adapter_model.safetensors").stat().st_mtime_ns == stamp
    with pytest.raises(XdetError, match="different adapter.*seed"):
        train_adapter(str(base), "x-ft:es", adapter, cfg, seed=1, progress=False)
    with pytest.raises(XdetError, match="different adapter.*strategy_spec"):
        train_adapter(str(base), "x-ft:de", adapter, cfg, progress=False)
    with pytest.raises(XdetError, match=rf"hyperparameters\.max_steps: {cfg.max_steps} -> {cfg.max_steps + 1}"):
        train_adapter(str(base), "x-ft:es", adapter, replace(cfg, max_steps=cfg.max_steps + 1), progress=False)
    # settings that do not change the weights do not block reuse
    assert train_adapter(str(base), "x-ft:es", adapter, replace(cfg, logging_steps=3), progress=False) == adapter
    with pytest.raises(XdetError, match="not a directory"):
        train_adapter(str(base), "x-ft:es", adapter / MANIFEST_NAME, cfg, progress=False)


def test_check_adapter_base(small_adapter, tiny_model):
    base, _, adapter = small_adapter
    assert check_adapter_base(adapter, base)["base_model"] == str(Path(base).resolve())
    with pytest.raises(XdetError, match="trained on base model"):
        check_adapter_base(adapter, tiny_model("bloom"))


def test_read_manifest_errors_name_the_path(tmp_path):
    with pytest.raises(XdetError, match=str(tmp_path / MANIFEST_NAME)):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text("{not json", encoding="utf-8")
    with pytest.raises(XdetError, match="corrupt"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"schema": "xdet-adapter/1"}), encoding="utf-8")
    with pytest.raises(XdetError, match="lacks field"):
        read_manifest(tmp_path)


def test_pair_format_takes_loss_on_the_paraphrase_only(tiny_model, data_dir):
    from transformers import AutoTokenizer

    from xdet_tasks.suites.prompts import PAIR_TEMPLATE
    from xdet_train.sft import sft_example

    tokenizer = AutoTokenizer.from_pretrained(tiny_model("llama"))
    pair = load_pairs("de", "train", data_dir=data_dir)[0]
    ex = sft_example(tokenizer, pair, "pair", seq2seq=False, max_length=256)
    n_prompt = len(tokenizer(PAIR_TEMPLATE.format(toxic=pair.toxic))["input_ids"])
    assert ex["labels"][:n_prompt] == [-100] * n_prompt
    assert ex["labels"][n_prompt:] == ex["input_ids"][n_prompt:]
    assert tokenizer.decode(ex["input_ids"][n_prompt:], skip_special_tokens=True) == pair.neutral
    assert ex["input_ids"][-1] == tokenizer.eos_token_id
    lm = sft_example(tokenizer, pair, "neutral-lm", seq2seq=False, max_length=8)
    assert lm["labels"] == lm["input_ids"] and len(lm["input_ids"]) == 8


def test_missing_model_directory_is_a_clear_error(tmp_path):
    with pytest.raises(XdetError, match="no such folder"):
        train_adapter(str(tmp_path / "nope"), "x-ft:de", tmp_path / "out", FAST, progress=False)


def test_four_bit_needs_cuda_and_bitsandbytes(tiny_model, tmp_path):
    from xdet_train.model import _cuda_4bit_available

    if _cuda_4bit_available():
        pytest.skip("this machine has CUDA and bitsandbytes: 4-bit is allowed here")
    with pytest.raises(XdetError, match="CUDA"):
        train_adapter(str(tiny_model("llama")), "x-ft:de", tmp_path / "q", TrainConfig(quantize="4bit"))


def test_cli_errors(tiny_model, small_adapter, tmp_path, capsys):
    base = str(tiny_model("llama"))
    common = ["train", "--model", base, "--no-progress", "--max-steps", "1", "--max-examples", "4"]

    assert cli_main([*common, "--strategy", "s-ft:de", "--out", str(tmp_path / "a")]) == 2
    assert "unknown strategy 's-ft:de'" in capsys.readouterr().err
    assert cli_main([*common, "--strategy", "x-ft:fr", "--out", str(tmp_path / "a")]) == 2
    assert "unknown language 'fr'" in capsys.readouterr().err
    assert cli_main([*common, "--strategy", "x-ft:de", "--target-modules", "nope", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "target module(s) nope not found" in err and "q_proj" in err
    assert not any(tmp_path.iterdir())  # nothing half-written
    _, _, adapter = small_adapter
    assert cli_main([*common, "--strategy", "x-ft:es", "--seed", "3", "--out", str(adapter)]) == 2
    assert "already holds a different adapter" in capsys.readouterr().err


def test_cli_trains(tiny_model, tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["train", "--model", str(tiny_model("bloom")), "--strategy", "p-ft:10", "--langs", "de,en", "--out",
            str(out), "--max-steps", "1", "--batch-size", "2", "--eval-examples", "0", "--no-progress"]
    assert cli_main(argv) == 0
    assert f"adapter: {out}" in capsys.readouterr().out
    m = read_manifest(out)
    assert (m["strategy_spec"], m["strategy"], m["pct"]) == ("p-ft:10", "p-ft", 10)
    assert (m["train_langs"], m["per_language"]) == (["de", "en"], {"de": 30, "en": 30})
    assert m["hyperparameters"]["epochs"] == 15  # the released p-ft default


def test_dpo_prompt_boundary_merges_are_counted():
    """A row counts when a token spans the prompt/completion boundary (here: a whitespace-word
    tokenizer, so a completion that continues the prompt's last word merges with it)."""
    from xdet_train.dpo import boundary_merges

    vocab: dict[str, int] = {}

    def words(texts: list[str]) -> dict[str, list[list[int]]]:  # the tokenizer call TRL makes, word level
        return {"input_ids": [[vocab.setdefault(w, len(vocab)) for w in t.split()] for t in texts]}

    rows = [
        {"prompt": "Complete the sentence: you are", "chosen": " kind", "rejected": " awful"},  # clean boundary
        {"prompt": "Complete the sentence: 你是", "chosen": "好人", "rejected": " 坏人"},  # chosen merges
        {"prompt": "Complete the sentence: du bist", "chosen": " nett", "rejected": "ein Idiot"},  # rejected merges
    ]
    assert boundary_merges(words, rows) == 2
    assert boundary_merges(words, rows[:1]) == 0
