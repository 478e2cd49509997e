"""K samples per prompt from one encoding of the prompt, for lm-eval's ``hf`` backend.

lm-eval implements a task's ``repeats: K`` by sending K identical requests; ``HFLM`` batches them as
K separate rows, so every prompt is encoded (prefilled) K times. :class:`SharedPromptHFLM` is
``HFLM`` with one change: identical requests are grouped, each distinct prompt is encoded once, and
its K continuations are sampled from copies of that encoding:

* decoder-only models: the prompt but its last token is run once, the KV cache is copied K times
  (``Cache.batch_select_indices``), and ``generate`` continues from it (it feeds only the last token);
* encoder-decoder models (mT5): the encoder runs once per prompt, its output is copied K times.

Everything else is ``HFLM``'s: the same tokenisation, truncation, stop sequences, length limit and
post-processing; greedy decoding gives the same tokens either way (tested). Requests that are all
distinct (K = 1) go through ``HFLM`` unchanged, so the paper's tasks are untouched, as does any model
whose forward pass returns no ``Cache``. ``xdet eval`` and the sweep use this class; a plain
``lm_eval --model hf`` run still works (K separate requests, same numbers in distribution), and the
Python API takes it as ``simple_evaluate(model=SharedPromptHFLM(pretrained=...))`` (or, once this
module is imported, ``model="xdet-hf"``).
``benchmarks/bench_shared_prompt.py`` measures the gain (BENCHMARKS.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch
from lm_eval.api.registry import register_model
from lm_eval.models import huggingface
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text


def _key(args: tuple) -> str:
    context, gen_kwargs = args
    return json.dumps([context, gen_kwargs], sort_keys=True, default=str)


@register_model("xdet-hf")
class SharedPromptHFLM(HFLM):
    """``HFLM`` whose repeated requests (``repeats`` > 1) share one encoding of their prompt."""

    def generate_until(self, requests: list, disable_tqdm: bool = False) -> list[str]:
        keys = [_key(req.args) for req in requests]
        distinct: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            distinct.setdefault(key, []).append(i)
        if len(distinct) == len(requests) or self.backend not in ("causal", "seq2seq"):
            return super().generate_until(requests, disable_tqdm=disable_tqdm)
        out: list[str | None] = [None] * len(requests)
        # HFLM's own progress-bar class, looked up now: whoever quietens HFLM's bars quietens this one
        bar = huggingface.tqdm(total=len(requests), disable=disable_tqdm or self.rank != 0, desc="Running generate_until requests")
        by_kwargs: dict[str, list[str]] = {}
        for key in distinct:
            by_kwargs.setdefault(json.dumps(json.loads(key)[1], sort_keys=True, default=str), []).append(key)
        for keys_of_kwargs in by_kwargs.values():
            first = requests[distinct[keys_of_kwargs[0]][0]].args[1]
            # longest prompts first, as HFLM orders them (an out-of-memory error shows at once)
            ordered = sorted(keys_of_kwargs, key=lambda k: -len(self.tok_encode(json.loads(k)[0])))
            for chunk in self._chunks(ordered, distinct):
                contexts = [json.loads(k)[0] for k in chunk]
                counts = [len(distinct[k]) for k in chunk]
                texts = iter(self._sample(contexts, counts, dict(first)))
                for key in chunk:
                    for i in distinct[key]:
                        out[i] = next(texts)
                        self.cache_hook.add_partial("generate_until", requests[i].args, out[i])
                        bar.update(1)
        bar.close()
        return [text if text is not None else "" for text in out]

    def _chunks(self, ordered: Sequence[str], distinct: dict[str, list[int]]) -> list[list[str]]:
        """Prompts per forward pass: as many as fit ``batch_size`` sampled rows (at least one)."""
        size = self.batch_size if self.batch_size != "auto" else self._detect_batch_size()
        size = max(1, int(size or 1))
        chunks: list[list[str]] = [[]]
        rows = 0
        for key in ordered:
            n = len(distinct[key])
            if chunks[-1] and rows + n > size:
                chunks.append([])
                rows = 0
            chunks[-1].append(key)
            rows += n
        return chunks

    def _sample(self, contexts: list[str], counts: list[int], gen_kwargs: dict[str, Any]) -> list[str]:
        """``counts[i]`` continuations of ``contexts[i]``, in order, from one encoding of each context."""
        kwargs = normalize_gen_kwargs(gen_kwargs, self.max_gen_toks)
        eos = self.tok_decode(self.eot_token_id, skip_special_tokens=False)
        until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
        max_gen_toks = kwargs.pop("max_gen_toks")
        max_ctx_len = self.max_length - max_gen_toks if self.backend == "causal" else self.max_length
        context_enc, attn = self.tok_batch_encode(contexts, left_truncate_len=max_ctx_len, truncation=self.truncation)
        context_enc, attn = context_enc.to(self.device), attn.to(self.device)
        rows = torch.repeat_interleave(torch.arange(len(contexts), device=self.device),
                                       torch.tensor(counts, device=self.device))
        shared = self._shared_encoding(context_enc, attn, rows)
        if shared is None:  # a model without a copyable cache: encode every row, as HFLM does
            shared = {}
        cont = self._model_generate(
            context=context_enc[rows], attention_mask=attn[rows], stop=until,
            max_length=kwargs.pop("max_length", context_enc.shape[1] + max_gen_toks), **shared, **kwargs,
        )
        texts = []
        for toks in cont.tolist():
            if self.backend == "causal":
                toks = toks[context_enc.shape[1]:]
            if isinstance(self.think_end_token, int) and self.think_end_token in toks:
                toks = toks[len(toks) - toks[::-1].index(self.think_end_token):]
            text = self.tok_decode(toks)
            if isinstance(self.think_end_token, int):
                text = text.lstrip()
            texts.append(postprocess_generated_text(
                generation=text, stop=until,
                think_end_token=self.think_end_token if isinstance(self.think_end_token, str) else None))
        return texts

    @torch.no_grad()
    def _shared_encoding(self, context_enc: torch.Tensor, attn: torch.Tensor, rows: torch.Tensor) -> dict | None:
        """``generate`` keyword arguments carrying each prompt's encoding copied to its rows."""
        from transformers.cache_utils import Cache

        if self.backend == "seq2seq":
            encoded = self.model.get_encoder()(input_ids=context_enc, attention_mask=attn, return_dict=True)
            encoded.last_hidden_state = encoded.last_hidden_state[rows]
            return {"encoder_outputs": encoded}
        if context_enc.shape[1] < 2:
            return None
        mask = attn[:, :-1]
        # left padding: positions count real tokens only, as generate() computes them from the mask
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        out = self.model(input_ids=context_enc[:, :-1], attention_mask=mask, position_ids=positions, use_cache=True)
        # transformers 5 calls it ``cache`` (``past_key_values`` before, and a deprecated alias until 6.0)
        name = "cache" if "cache" in getattr(out, "__dataclass_fields__", {}) else "past_key_values"
        cache = getattr(out, name, None)
        if not isinstance(cache, Cache):
            return None
        cache.batch_select_indices(rows)
        return {name: cache}
