"""Sentence embeddings from a model for the representation analysis.

Each sentence becomes one vector pooled from the model's hidden states (seq2seq models: the
encoder's). With an adapter the LoRA layers are injected into the same modules, so the adapter's
effect is included. ``split`` picks which pairs are read: ``train`` (300 per language, the paper's
toxic-train and neutral-train sets; the default), ``test`` (100), or ``all`` (both, as in Fig. 9).
The paper's set names are accepted too and pick their pairs (``toxic-train`` -> ``train``): both
halves of each pair are always analysed, so the set's kind does not narrow anything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xdet_tasks.errors import XdetError
from xdet_tasks.suites.paradetox import load_pairs
from xdet_tasks.suites.sets import PAIR_SPLITS, SETS

log = logging.getLogger(__name__)

POOLINGS: tuple[str, ...] = ("mean", "last", "first")
SPLIT_CHOICES: tuple[str, ...] = (*PAIR_SPLITS, "all", *SETS)
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")


def pair_splits(split: str) -> tuple[str, ...]:
    """The pair splits (``train``/``test``) a ``--split`` value reads."""
    if split in PAIR_SPLITS:
        return (split,)
    if split == "all":
        return PAIR_SPLITS
    if split in SETS:
        return (SETS[split][0],)
    raise XdetError(f"unknown split {split!r}; expected one of {', '.join(SPLIT_CHOICES)}")


@dataclass
class LoadedModel:
    """A transformers model (possibly with an adapter injected) and the module that yields hidden states."""

    hf: Any
    tokenizer: Any
    seq2seq: bool
    device: str

    @property
    def body(self) -> Any:
        # The encoder for seq2seq; the bare transformer (no LM head) for causal models. LoRA layers
        # are injected into these modules in place, so the adapter's effect is included.
        return self.hf.get_encoder() if self.seq2seq else self.hf.base_model


def _pick_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype not in DTYPES:
        raise XdetError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def load_model(model: str | Path, *, config: Any = None, device: str | None = None, dtype: str = "auto") -> LoadedModel:
    """Load a hub id or local path with the Auto classes (the LM class, so adapters' key names match).

    ``config``: the model's config when the caller already loaded it (``load_model_config``)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch_dtype = _pick_dtype(dtype, device)
    try:
        config = config or AutoConfig.from_pretrained(str(model))
        tokenizer = AutoTokenizer.from_pretrained(str(model))
    except (OSError, ValueError) as err:
        raise XdetError(f"cannot load model {str(model)!r}: {err}") from None
    seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    try:
        hf = auto.from_pretrained(str(model), dtype=torch_dtype)
    except (OSError, ValueError) as err:
        raise XdetError(f"cannot load model {str(model)!r} as {auto.__name__}: {err}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # Right padding keeps every real token at the positions it has unpadded, so a sentence's
    # vector does not depend on what else is in its batch.
    tokenizer.padding_side = "right"
    hf.to(device).eval()
    return LoadedModel(hf=hf, tokenizer=tokenizer, seq2seq=seq2seq, device=device)


def apply_adapter(loaded: LoadedModel, peft: str | Path) -> None:
    """Inject a PEFT adapter into ``loaded`` in place (its ``body`` then includes the adapter)."""
    from peft import PeftModel

    local = Path(peft).expanduser()
    if local.exists() and not (local / "adapter_config.json").is_file():
        raise XdetError(f"{local}: not a PEFT adapter directory (no adapter_config.json)")
    try:
        wrapped = PeftModel.from_pretrained(loaded.hf, str(peft))
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise XdetError(f"cannot load adapter {str(peft)!r}: {err}") from None
    wrapped.eval()


def _pool(hidden: Any, mask: Any, pooling: str) -> Any:
    import torch

    if pooling == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    if pooling == "last":
        idx = (positions * mask).argmax(1)  # last position whose mask is 1
    else:
        idx = mask.argmax(1)  # first position whose mask is 1
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]


def embed(
    loaded: LoadedModel,
    texts: Sequence[str],
    *,
    layer: int = -1,
    pooling: str = "mean",
    batch_size: int = 16,
    max_length: int = 128,
    desc: str = "embedding",
) -> np.ndarray:
    """One vector per text: ``hidden_states[layer]`` (0 = embeddings, -1 = last layer) pooled over tokens."""
    import torch
    from tqdm.auto import tqdm

    if pooling not in POOLINGS:
        raise XdetError(f"unknown pooling {pooling!r}; expected one of {', '.join(POOLINGS)}")
    if batch_size < 1:
        raise XdetError(f"batch size must be >= 1, got {batch_size}")
    # Batch similar lengths together (less padding), then restore the input order.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: np.ndarray | None = None
    body = loaded.body
    with torch.inference_mode():
        for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch"):
            idx = order[start : start + batch_size]
            enc = loaded.tokenizer(
                [texts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                return_tensors="pt",
            ).to(loaded.device)
            states = body(
                input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], output_hidden_states=True
            ).hidden_states
            if not -len(states) <= layer < len(states):
                raise XdetError(
                    f"layer {layer} out of range: this model has {len(states)} hidden states "
                    f"(0 = embeddings .. {len(states) - 1} = last layer; negative counts from the end)"
                )
            vecs = _pool(states[layer], enc["attention_mask"], pooling).float().cpu().numpy()
            if out is None:
                out = np.empty((len(texts), vecs.shape[1]), dtype=np.float32)
            out[idx] = vecs
    if out is None:
        raise XdetError("no sentences to embed")
    return out


def embed_languages(
    loaded: LoadedModel, sentences: Mapping[str, tuple[list[str], list[str]]], *, desc: str, **kwargs: Any
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Embed every language's toxic and neutral sentences in one batched pass."""
    texts: list[str] = []
    spans: list[tuple[str, str, int, int]] = []
    for lang, (toxic, neutral) in sentences.items():
        for kind, group in (("toxic", toxic), ("neutral", neutral)):
            spans.append((lang, kind, len(texts), len(texts) + len(group)))
            texts.extend(group)
    vectors = embed(loaded, texts, desc=desc, **kwargs)
    result: dict[str, dict[str, np.ndarray]] = {"toxic": {}, "neutral": {}}
    for lang, kind, a, b in spans:
        result[kind][lang] = vectors[a:b]
    return result["toxic"], result["neutral"]


# ---------------------------------------------------------------------------------------------
# Output files
# ---------------------------------------------------------------------------------------------


def load_sentences(
    langs: Sequence[str], split: str, *, limit: int | None = None, data_dir: str | Path | None = None
) -> dict[str, tuple[list[str], list[str]]]:
    """``lang -> (toxic, neutral)`` sentences of the pairs ``split`` selects, the first ``limit`` per language."""
    splits = pair_splits(split)
    out: dict[str, tuple[list[str], list[str]]] = {}
    for lang in langs:
        pairs = [p for s in splits for p in load_pairs(lang, s, data_dir=data_dir)]
        if limit is not None:
            pairs = pairs[:limit]
        out[lang] = ([p.toxic for p in pairs], [p.neutral for p in pairs])
    return out
