"""Any Hugging Face architecture: train, DPO, an identical rerun that reads no weight, eval, a resumable sweep.

Each architecture of the matrix is a tiny random model built from its config with a locally trained
tokenizer (:mod:`xdet_train.tiny`). Expected LoRA targets come from PEFT's own table and, where PEFT
has none, from the model's linear layers listed here with plain PyTorch, not from xdet's resolver.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from xdet.cli import main
from xdet_train.manifest import MANIFEST_NAME
from xdet_train.tiny import ARCHITECTURES

#: The architectures every user path is tested on (README "Architectures"); causal first, then seq2seq.
MATRIX = ("llama", "mistral", "qwen3", "gemma2", "phi3", "gpt2", "gpt_neox", "opt", "falcon", "bloom", "olmo2",
          "cohere", "mt5", "mbart")
TRAIN = ["--max-steps", "2", "--grad-accum", "1", "--max-examples", "8", "--eval-examples", "0", "--max-length", "32",
         "--logging-steps", "1"]
WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def _copy(tiny_model, arch: str, dest: Path) -> Path:
    """A private copy of the shared tiny model: this test hides its weights, which others must not see."""
    return Path(shutil.copytree(tiny_model(arch), dest / arch))


def _manifest(adapter: Path) -> dict:
    return json.loads((adapter / MANIFEST_NAME).read_text(encoding="utf-8"))


def _expected_targets(model_dir: Path) -> set[str]:
    """PEFT's per-architecture default, else every linear layer's name but the output head's."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_DEFAULTS
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    config = AutoConfig.from_pretrained(model_dir)
    if config.model_type in PEFT_DEFAULTS:
        return set(PEFT_DEFAULTS[config.model_type])
    auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
    model = auto.from_pretrained(model_dir)
    head = model.get_output_embeddings()
    return {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and module is not head}


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

    # xdet train with default flags: LoRA targets are PEFT's for the architecture
    assert main(["train", "--model", str(model), "--strategy", "x-ft:de", "--out", str(adapter), *TRAIN]) == 0
    first = _manifest(adapter)
    assert set(first["hyperparameters"]["target_modules"]) == _expected_targets(model)

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
