"""A completion's log-likelihood given its prompt under a causal reference LM, in padded batches.

Conditioning (the ``conditioning`` block of every fluency file says the same):

* The reference reads the prompt exactly as the generating model was given it (lm-eval's
  ``arguments.gen_args_0.arg_0``; with a chat template, the rendered chat text) followed by the raw
  completion exactly as generated (``resps``: lm-eval has removed the stop sequence; nothing is
  stripped, since a leading space is part of how the text continues).
* The concatenation is tokenized once, without special tokens, and the tokens the tokenizer puts
  before any text (a BOS) are put before it, as the reference model saw text in training. A token is
  the completion's from the first one whose characters reach past the prompt's end (character offsets of
  the fast tokenizer): no completion character goes unscored and no token made only of prompt
  characters is scored; a token straddling the boundary is scored with the completion. Where no
  token merges across the boundary (the usual case) this is tokenizing the two separately, which is
  what DExperts and Li et al. compute as loss(prompt + completion) - loss(prompt).
* Token t of the completion is predicted from every token before it: the first from the prompt's last.
  Only completion tokens are scored; the perplexity is exp(mean negative log-likelihood over them).
* An empty completion (nothing but whitespace: the completions the toxicity records flag ``empty``)
  has no tokens and no perplexity (NaN, counted, never 0). An empty prompt is preceded by the BOS (or
  EOS) token, as lm-eval conditions an empty context.
* A pair longer than the reference's window (``max_length`` tokens) keeps the whole completion and
  the prompt's last tokens (left truncation, as lm-eval truncates loglikelihood requests); a completion
  that alone fills the window keeps its first ``max_length - 1`` tokens after the prompt's last token.
  Either way the completion is flagged ``truncated``.

Batches are right-padded, so every row keeps positions 0..n-1 and the attention mask hides the
padding, which comes after every scored token; a completion's value does not depend on its batch
(checked against one at a time in the tests). Rows are sorted by length so padding stays small, and
log-probabilities are computed in float32 at the scored positions only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from xdet.runs.fluency import Scored

#: What the fluency files record as their conditioning; a change here must change the version, since
#: the cache keys on it.
CONDITIONING: dict[str, Any] = {
    "version": 1,
    "context": "arguments.gen_args_0.arg_0 exactly (chat template included if the run used one)",
    "completion": "resps exactly as generated (not stripped); whitespace-only = empty, no perplexity",
    "tokenization": "prompt + completion tokenized together without special tokens, the tokenizer's leading "
                    "special tokens (BOS) prepended; completion = tokens from the first reaching past the prompt",
    "scored": "completion tokens only, each given every token before it",
    "truncation": "left-truncate the prompt to fit max_length; a completion alone over it keeps its first "
                  "max_length - 1 tokens",
}


@dataclass(frozen=True)
class Encoded:
    """A prompt + completion as reference tokens: ``ids[:context]`` condition, ``ids[context:]`` are scored."""

    ids: tuple[int, ...]
    context: int
    truncated: bool = False

    @property
    def scored(self) -> int:
        return len(self.ids) - self.context


def leading_special_tokens(tokenizer: Any) -> list[int]:
    """The special tokens the tokenizer puts before a text when asked for them (a BOS, or nothing)."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return list(full[:start])
    return []


def fit(ids: Sequence[int], context: int, max_length: int) -> Encoded:
    """``ids`` cut to ``max_length`` tokens as the module docstring says (the completion is kept)."""
    if len(ids) <= max_length:
        return Encoded(tuple(ids), context)
    completion = len(ids) - context
    if completion >= max_length:  # the prompt's last token, then as much completion as fits
        return Encoded(tuple(ids[context - 1:context + max_length - 1]), 1, True)
    return Encoded(tuple(ids[len(ids) - max_length:]), max_length - completion, True)


def encode(tokenizer: Any, contexts: Sequence[str], completions: Sequence[str], max_length: int) -> list[Encoded | None]:
    """Reference tokens of each ``(context, completion)``; ``None`` for an empty completion."""
    prefix = leading_special_tokens(tokenizer)
    start = [tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id]
    wanted = [i for i, c in enumerate(completions) if c.strip()]
    out: list[Encoded | None] = [None] * len(completions)
    if not wanted:
        return out
    batch = tokenizer([contexts[i] + completions[i] for i in wanted], add_special_tokens=False,
                      return_offsets_mapping=True)
    for i, ids, offsets in zip(wanted, batch["input_ids"], batch["offset_mapping"], strict=True):
        boundary = len(contexts[i])
        first = next((j for j, (_, end) in enumerate(offsets) if end > boundary), len(ids))
        ids = [*prefix, *ids]
        context = first + len(prefix)
        if context == 0:  # nothing to condition on: begin from BOS (EOS), as lm-eval does
            ids, context = [*start, *ids], 1
        out[i] = fit(ids, context, max_length) if len(ids) > context else None
    return out


def score_batches(model: Any, encoded: Sequence[Encoded], *, batch_size: int, pad_id: int,
                  device: str = "cpu") -> Iterator[list[tuple[int, Scored]]]:
    """``(index, Scored)`` of every encoded pair, one list per forward pass (so callers can store each
    batch as it is done). Longest first, right-padded; float32 log-softmax at the scored positions only."""
    import torch

    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i].ids))
    with torch.inference_mode():
        for begin in range(0, len(order), batch_size):
            rows = order[begin:begin + batch_size]
            width = max(len(encoded[i].ids) for i in rows)
            ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows):
                ids[r, :len(encoded[i].ids)] = torch.tensor(encoded[i].ids)
                mask[r, :len(encoded[i].ids)] = 1
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            # row r's token p (p >= context) is predicted by the logits at position p - 1
            row_of, position, target = [], [], []
            for r, i in enumerate(rows):
                e = encoded[i]
                for p in range(e.context, len(e.ids)):
                    row_of.append(r)
                    position.append(p - 1)
                    target.append(e.ids[p])
            picked = logits[torch.tensor(row_of), torch.tensor(position)].float()
            targets = torch.tensor(target, device=picked.device)
            nll = torch.logsumexp(picked, dim=-1) - picked.gather(1, targets[:, None]).squeeze(1)
            sums = torch.zeros(len(rows), dtype=torch.float64).index_add_(
                0, torch.tensor(row_of), nll.double().cpu())
            yield [(i, Scored(float(sums[r]), encoded[i].scored, encoded[i].truncated)) for r, i in enumerate(rows)]


def conditional_nll(model: Any, tokenizer: Any, contexts: Sequence[str], completions: Sequence[str], *,
                    max_length: int, batch_size: int = 32, device: str = "cpu") -> list[Scored]:
    """Each completion's :class:`Scored` given its context, in input order (an empty completion: no tokens)."""
    encoded = encode(tokenizer, contexts, completions, max_length)
    wanted = [i for i, e in enumerate(encoded) if e is not None]
    out = [Scored(None, 0)] * len(encoded)
    pad = next((i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id) if i is not None), 0)
    for batch in score_batches(model, [encoded[i] for i in wanted], batch_size=batch_size, pad_id=pad, device=device):
        for j, scored in batch:
            out[wanted[j]] = scored
    return out
