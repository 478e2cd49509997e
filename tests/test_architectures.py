"""Any Hugging Face architecture: train, DPO, an identical rerun that reads no weight, eval, a resumable sweep.

Each architecture of the matrix is a tiny random model built from its config with a locally trained
tokenizer (:mod:`xdet_train.tiny`). Expected LoRA targets come from PEFT itself (its table, and whether
it wraps the model) and from the model's modules listed here with plain PyTorch, not from xdet's resolver.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from transformers.pytorch_utils import Conv1D

from xdet.cli import main
from xdet_train.config import TrainConfig
from xdet_train.manifest import MANIFEST_NAME
from xdet_train.model import resolve_target_modules
from xdet_train.tiny import ARCHITECTURES, build_model, build_tokenizer, tiny_config

#: The architectures every user path is tested on (README "Architectures"); causal first, then seq2seq.
MATRIX = ("llama", "mistral", "qwen3", "gemma2", "phi3", "gpt2", "gpt_neox", "opt", "falcon", "bloom", "olmo2",
          "cohere", "mixtral", "mamba", "xglm", "mt5", "mbart")
TRAIN = ["--max-steps", "2", "--grad-accum", "1", "--max-examples", "8", "--eval-examples", "0", "--max-length", "32",
         "--logging-steps", "1"]
WEIGHTS = ("model.safetensors", "pytorch_model.bin")
ROOT = Path(__file__).resolve().parents[1]


def _copy(tiny_model, arch: str, dest: Path) -> Path:
    """A private copy of the shared tiny model: this test hides its weights, which others must not see."""
    return Path(shutil.copytree(tiny_model(arch), dest / arch))


def _manifest(adapter: Path) -> dict:
    return json.loads((adapter / MANIFEST_NAME).read_text(encoding="utf-8"))


def _peft_wraps(model, targets) -> bool:
    """Whether PEFT itself puts LoRA on ``model`` (a fresh copy) for ``targets`` without raising."""
    from peft import LoraConfig, TaskType, get_peft_model

    task = TaskType.SEQ_2_SEQ_LM if model.config.is_encoder_decoder else TaskType.CAUSAL_LM
    try:
        get_peft_model(copy.deepcopy(model), LoraConfig(target_modules=targets, task_type=task))
    except Exception:  # the reference's refusal, whatever its type
        return False
    return True


def _expected_targets(model) -> tuple[set[str], str]:
    """The default LoRA targets and their source, from PEFT and the model's modules, not xdet's resolver:
    PEFT's table where PEFT wraps the model with its default; where the experts are stacked 3-D
    parameters, the linear layers of each layer's ``self_attn``; else every linear layer but the output
    head, or (where PEFT refuses some) those PEFT wraps one at a time."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_DEFAULTS

    model_type = model.config.model_type
    if model_type in PEFT_DEFAULTS and _peft_wraps(model, None):
        return set(PEFT_DEFAULTS[model_type]), "peft-default"
    if any(".experts." in name and p.ndim == 3 for name, p in model.named_parameters()):
        return {name.rsplit(".", 1)[-1] for name, m in model.named_modules()
                if isinstance(m, torch.nn.Linear) and name.rsplit(".", 1)[0].endswith(".self_attn")}, "attention"
    head = model.get_output_embeddings()
    linear = {name.rsplit(".", 1)[-1] for name, m in model.named_modules()
              if isinstance(m, torch.nn.Linear | Conv1D) and m is not head}
    if _peft_wraps(model, sorted(linear)):
        return linear, "all-linear"
    return {name for name in linear if _peft_wraps(model, [name])}, "supported-linear"


def _load(model_dir: Path):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    seq2seq = AutoConfig.from_pretrained(model_dir).is_encoder_decoder
    return (AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM).from_pretrained(model_dir)


def _without_weights(model_dir: Path):
    """Move the weight files away (a rerun that tried to load them would fail); returns a restorer."""
    moved = [(model_dir / w, model_dir / f"{w}.away") for w in WEIGHTS if (model_dir / w).exists()]
    assert moved, f"no weight file in {model_dir}"
    for src, dst in moved:
        src.rename(dst)
    return lambda: [dst.rename(src) for src, dst in moved]


@pytest.mark.slow
@pytest.mark.parametrize("arch", MATRIX)
def test_every_user_path_on_the_architecture(arch, tiny_model, tmp_path, capsys):
    model = _copy(tiny_model, arch, tmp_path)
    seq2seq = ARCHITECTURES[arch].seq2seq
    adapter = tmp_path / "x-ft-de"

    # xdet train with default flags: LoRA targets are PEFT's default, else one that PEFT can train
    assert main(["train", "--model", str(model), "--strategy", "x-ft:de", "--out", str(adapter), *TRAIN]) == 0
    first = _manifest(adapter)
    targets, source = _expected_targets(_load(model))
    assert (set(first["hyperparameters"]["target_modules"]), first["lora_targets_from"]) == (targets, source)

    # the identical rerun is a no-op that reads no weight
    restore = _without_weights(model)
    try:
        assert main(["train", "--model", str(model), "--strategy", "x-ft:de", "--out", str(adapter), *TRAIN]) == 0
    finally:
        restore()
    assert _manifest(adapter)["created"] == first["created"]

    if not seq2seq:
        dpo = tmp_path / "dpo-de"
        assert main(["train", "--model", str(model), "--strategy", "dpo:de", "--out", str(dpo), *TRAIN]) == 0
        assert _manifest(dpo)["strategy"] == "dpo"

    run = tmp_path / "run"
    tasks = "xdet_toxic_test_de,xdet_ppl_toxic_test_de"
    assert main(["eval", "--model", str(model), "--peft", str(adapter), "--tasks", tasks, "--limit", "2",
                 "--out", str(run)]) == 0
    record = json.loads((run / "xdet_run.json").read_text(encoding="utf-8"))
    assert (record["strategy"], record["train_langs"]) == ("x-ft", ["de"])

    sweep = ["sweep", "--model", str(model), "--strategies", "zs,x-ft:de", "--eval-langs", "de", "--families",
             "gen", "--limit", "1", "--n-boot", "20", "--no-progress", "--out", str(tmp_path / "sweep"),
             *TRAIN]
    capsys.readouterr()
    assert main(sweep) == 0
    assert "2 done, 0 skipped, 0 failed" in capsys.readouterr().out
    restore = _without_weights(model)
    try:
        assert main(sweep) == 0
    finally:
        restore()
    assert "0 done, 2 skipped, 0 failed" in capsys.readouterr().out


#: The README's architecture table: model type, kind, default LoRA targets, where they come from.
README_ROWS = {m[0]: m[1:] for m in re.findall(r"^\| `(\w+)` \| [^|]+ \| (causal|seq2seq) \| ([\w, ]+) \| `([\w-]+)`",
                                              (ROOT / "README.md").read_text(encoding="utf-8"), re.M)}


def test_the_readme_table_lists_the_matrix():
    assert tuple(README_ROWS) == MATRIX


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_default_lora_targets_are_decided_on_the_skeleton(arch):
    """Every tiny architecture, the MoE and state-space ones included: the default xdet resolves on the meta
    skeleton (no weights) is the one PEFT and the model's modules give, and the one the README states."""
    tokenizer = build_tokenizer(["ein kleiner Satz", "a small sentence", "маленькое предложение"] * 4, vocab_size=300)
    targets, source = resolve_target_modules(tiny_config(arch, tokenizer), TrainConfig(), arch)
    expected = _expected_targets(build_model(arch, tokenizer))
    assert (set(targets), source) == expected
    if arch in README_ROWS:
        kind, listed, listed_source = README_ROWS[arch]
        assert kind == ("seq2seq" if ARCHITECTURES[arch].seq2seq else "causal")
        assert (set(listed.split(", ")), listed_source) == expected
