"""K samples per prompt from one encoding of the prompt, for lm-eval's ``hf`` backend.

lm-eval implements a task's ``repeats: K`` by sending K identical requests; ``HFLM`` batches them as
K separate rows, so every prompt is encoded (prefilled) K times. :class:`SharedPromptHFLM` is
``HFLM`` with one change: the requests of a task with ``repeats`` > 1 are grouped, each distinct
prompt is encoded once, and its K continuations are sampled from copies of that encoding:

* decoder-only models: the prompt but its last token is run once, the KV cache is copied to the K
  rows (``Cache.batch_select_indices``), and ``generate`` continues from it (it feeds only the last token);
* encoder-decoder models (mT5): the encoder runs once per prompt, its output is copied to the K rows.

Everything else is ``HFLM``'s: the same tokenisation, truncation, stop sequences, length limit and its
check, ``mixed_precision_dtype`` autocast (the shared encoding runs under it too), batch size and
post-processing; greedy decoding gives the same tokens either way (tested). No forward pass has more
than ``batch_size`` rows: prompts are encoded together while their samples fit one batch, and a prompt
with more samples than that is encoded alone, once, and its samples spread over as many batches as
they need (each from a copy of its one-row cache). Requests with K = 1 (the paper's tasks) go through
``HFLM`` unchanged whatever else the run holds, as does any model whose forward pass returns no
``Cache``. ``xdet eval`` and the sweep use this class; a plain ``lm_eval --model hf`` run still works
(K separate requests, same numbers in distribution), and the Python API takes it as
``simple_evaluate(model=SharedPromptHFLM(pretrained=...))`` (or, once this module is imported,
``model="xdet-hf"``). ``benchmarks/bench_shared_prompt.py`` measures the gain (BENCHMARKS.md).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from lm_eval.api.registry import register_model
from lm_eval.models import huggingface
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text


def _key(args: tuple) -> str:
    context, gen_kwargs = args
    return json.dumps([context, gen_kwargs], sort_keys=True, default=str)


@dataclass(frozen=True)
class _Encoding:
    """One encoding of a group of prompts (one row each), as the ``generate`` argument ``name`` takes it."""

    name: str  # "encoder_outputs", or the cache's name in the model's output
    value: Any

    def rows(self, rows: torch.Tensor, last: bool) -> dict[str, Any]:
        """The encoding of each row's prompt; ``last``: no later batch needs it, so the cache itself is
        narrowed (``generate`` extends a cache in place, so earlier batches take a copy)."""
        if self.name == "encoder_outputs":
            return {self.name: type(self.value)(last_hidden_state=self.value.last_hidden_state[rows])}
        cache = self.value if last else copy.deepcopy(self.value)
        cache.batch_select_indices(rows)
        return {self.name: cache}


@register_model("xdet-hf")
class SharedPromptHFLM(HFLM):
    """``HFLM`` whose repeated requests (``repeats`` > 1) share one encoding of their prompt."""

    def generate_until(self, requests: list, disable_tqdm: bool = False) -> list[str]:
        repeated = [i for i, req in enumerate(requests) if (getattr(req, "repeats", None) or 1) > 1]
        if not repeated or self.backend not in ("causal", "seq2seq"):
            return super().generate_until(requests, disable_tqdm=disable_tqdm)
        out: list[str | None] = [None] * len(requests)
        single = sorted(set(range(len(requests))) - set(repeated))
        if single:  # K = 1: HFLM's own batches and code, as if nothing else were in the run
            texts = super().generate_until([requests[i] for i in single], disable_tqdm=disable_tqdm)
            for i, text in zip(single, texts, strict=True):
                out[i] = text
        distinct: dict[str, list[int]] = {}
        for i in repeated:
            distinct.setdefault(_key(requests[i].args), []).append(i)
        # HFLM's own progress-bar class, looked up now: whoever quietens HFLM's bars quietens this one
        bar = huggingface.tqdm(total=len(repeated), disable=disable_tqdm or self.rank != 0,
                               desc="Running generate_until requests")
        size = self._rows_per_batch()
        by_kwargs: dict[str, list[str]] = {}
        for key in distinct:
            by_kwargs.setdefault(json.dumps(json.loads(key)[1], sort_keys=True, default=str), []).append(key)
        for keys_of_kwargs in by_kwargs.values():
            first = requests[distinct[keys_of_kwargs[0]][0]].args[1]
            # longest prompts first, as HFLM orders them (an out-of-memory error shows at once)
            ordered = sorted(keys_of_kwargs, key=lambda k: -len(self.tok_encode(json.loads(k)[0])))
            for group in self._groups(ordered, distinct, size):
                contexts = [json.loads(k)[0] for k in group]
                texts = iter(self._sample(contexts, [len(distinct[k]) for k in group], dict(first), size))
                for key in group:
                    for i in distinct[key]:
                        out[i] = next(texts)
                        self.cache_hook.add_partial("generate_until", requests[i].args, out[i])
                        bar.update(1)
        bar.close()
        return [text if text is not None else "" for text in out]

    def _rows_per_batch(self) -> int:
        size = self.batch_size if self.batch_size != "auto" else self._detect_batch_size()
        return max(1, int(size or 1))

    @staticmethod
    def _groups(ordered: Sequence[str], distinct: dict[str, list[int]], size: int) -> list[list[str]]:
        """Prompts encoded together: as many as fit ``size`` sampled rows, or one prompt whose samples
        alone exceed it (its one-row encoding is then copied to each batch its samples span)."""
        groups: list[list[str]] = [[]]
        rows = 0
        for key in ordered:
            n = len(distinct[key])
            if groups[-1] and rows + n > size:
                groups.append([])
                rows = 0
            groups[-1].append(key)
            rows += n
        return groups

    def _sample(self, contexts: list[str], counts: list[int], gen_kwargs: dict[str, Any], size: int) -> list[str]:
        """``counts[i]`` continuations of ``contexts[i]``, in order, from one encoding of each context,
        generated in batches of at most ``size`` rows."""
        kwargs = normalize_gen_kwargs(gen_kwargs, self.max_gen_toks)
        eos = self.tok_decode(self.eot_token_id, skip_special_tokens=False)
        until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
        max_gen_toks = kwargs.pop("max_gen_toks")
        max_ctx_len = self.max_length - max_gen_toks if self.backend == "causal" else self.max_length
        if max_ctx_len <= 0:  # HFLM's check, with its exception and message
            raise AssertionError(
                f"Invalid configuration: requested max tokens to generate ({max_gen_toks}) must be less than "
                f"model's maximum sequence length ({self.max_length}).")
        context_enc, attn = self.tok_batch_encode(contexts, left_truncate_len=max_ctx_len, truncation=self.truncation)
        context_enc, attn = context_enc.to(self.device), attn.to(self.device)
        if "max_length" in kwargs:
            huggingface.eval_logger.warning("`max_length` in generation kwargs. Please use `max_gen_toks` instead.")
        max_length = kwargs.pop("max_length", context_enc.shape[1] + max_gen_toks)
        rows = torch.repeat_interleave(torch.arange(len(contexts), device=self.device),
                                       torch.tensor(counts, device=self.device))
        encoding = self._encode_once(context_enc, attn)  # None: no copyable cache, every row encodes, as in HFLM
        texts = []
        for start in range(0, len(rows), size):
            batch = rows[start:start + size]
            shared = {} if encoding is None else encoding.rows(batch, last=start + size >= len(rows))
            cont = self._model_generate(context=context_enc[batch], attention_mask=attn[batch], stop=until,
                                        max_length=max_length, **shared, **kwargs)
            texts += [self._text(toks, context_enc.shape[1], until) for toks in cont.tolist()]
        return texts

    def _text(self, toks: list[int], prompt_len: int, until: list[str]) -> str:
        """A generated row as HFLM turns it into text."""
        if self.backend == "causal":
            toks = toks[prompt_len:]
        if isinstance(self.think_end_token, int) and self.think_end_token in toks:
            toks = toks[len(toks) - toks[::-1].index(self.think_end_token):]
        text = self.tok_decode(toks)
        if isinstance(self.think_end_token, int):
            text = text.lstrip()
        return postprocess_generated_text(
            generation=text, stop=until,
            think_end_token=self.think_end_token if isinstance(self.think_end_token, str) else None)

    @torch.no_grad()
    def _encode_once(self, context_enc: torch.Tensor, attn: torch.Tensor) -> _Encoding | None:
        """Each prompt's encoding, one row per prompt, computed under HFLM's autocast like every
        forward pass of ``generate``."""
        from transformers.cache_utils import Cache

        if self.backend == "causal" and context_enc.shape[1] < 2:
            return None
        dtype = self.mixed_precision_dtype
        with torch.autocast(device_type=self.device.type, dtype=dtype, enabled=dtype is not None):
            if self.backend == "seq2seq":
                encoded = self.model.get_encoder()(input_ids=context_enc, attention_mask=attn, return_dict=True)
                return _Encoding("encoder_outputs", encoded)
            mask = attn[:, :-1]
            # left padding: positions count real tokens only, as generate() computes them from the mask
            positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
            out = self.model(input_ids=context_enc[:, :-1], attention_mask=mask, position_ids=positions, use_cache=True)
        # transformers 5 calls it ``cache`` (``past_key_values`` before, and a deprecated alias until 6.0)
        name = "cache" if "cache" in getattr(out, "__dataclass_fields__", {}) else "past_key_values"
        cache = getattr(out, name, None)
        return _Encoding(name, cache) if isinstance(cache, Cache) else None
