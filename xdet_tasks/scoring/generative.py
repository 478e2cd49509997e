"""One forward pass per text: a generative model's probabilities of its verdict or rating tokens as a score.

Shared by ``guard:`` (:mod:`.guard`) and ``judge:`` (:mod:`.judge`). A text becomes a conversation
(the backend's messages), the model's own chat template renders it, the record's answer prefix
(:mod:`.formats`) is appended as the start of the model's answer, and the model reads it once: the
next-token distribution at the last position, restricted to the tokens that begin the record's
choices and renormalised over them, weighted by each choice's value, is the score. No sampling, no
generated text to parse.

What the tokenizer does with the choices is found at load time, before any weights are read: each
choice is tokenized after a rendered probe prompt, the tokens all choices share are written as part
of the answer (a space the tokenizer keeps apart from the digit, say), and the next token of each
choice is the one scored (a choice split into several pieces is scored by its first piece, named in
the provenance); choices beginning with the same token are refused. A model without a chat template,
or whose template does not render the record's prompt (its ``markers``), is refused the same way.

Throughput. A guard's or judge's instructions are most of its prompt and the same for every text, so
the prompt's fixed start (found at load time from two probes of each shape of conversation) is read
once and its keys and values are reused by every text that begins with exactly those tokens (checked
per text; any other text is read whole). As in ``hf:``, each call tokenizes its prompts once, sorts
them by token count and runs batches padded only to their own longest member, here on the left with
explicit positions, so the last position is every row's own and a text's score does not depend on
its batch (checked against one text at a time, and against an unpadded forward pass over the whole
prompt, in the tests); only the last position's logits are computed. Weights are float32 unless
``#dtype=bf16`` (or ``fp16``, ``auto``) asks otherwise; half precision is part of the version.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import logging
from collections.abc import Sequence
from typing import Any

from xdet_tasks.errors import ScorerError
from xdet_tasks.scoring.base import Scorer
from xdet_tasks.scoring.formats import GuardFormat, JudgeRubric, record_sha256
from xdet_tasks.scoring.hf import (
    TokenizerError,
    _model_dir,
    files_hash,
    has_tokenizer_files,
    parse_langs,
    pick_device,
    pick_dtype,
)

log = logging.getLogger(__name__)

DEFAULT_BATCH = 32
#: a prompt start shorter than this (tokens) is not worth a cache of its own
MIN_PREFIX = 16
#: options every generative backend takes after ``#`` (besides its record's)
COMMON_OPTIONS = ("batch", "device", "dtype", "revision", "langs")
_DTYPE_TAG = {"bfloat16": "bf16", "float16": "fp16"}


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of rendered chat text, whose special tokens are in the text (as ``apply_chat_template`` does)."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def answer_tokens(tokenizer: Any, prompt: str, choices: Sequence[str], where: str) -> tuple[list[int], list[int],
                                                                                            list[list[int]]]:
    """``(shared, first, pieces)``: the tokens every choice begins with after ``prompt``, the next token of
    each choice (the one scored) and each choice's tokens after ``prompt``; refused when the tokenizer
    merges the prompt's end with a choice, or two choices begin with the same token."""
    base = encode(tokenizer, prompt)
    pieces = []
    for choice in choices:
        ids = encode(tokenizer, prompt + choice)
        if ids[: len(base)] != base:
            raise ScorerError(f"{where}: the tokenizer merges the end of the prompt {prompt[-12:]!r} with the answer "
                              f"{choice!r}, so no token position holds the answer alone")
        pieces.append(ids[len(base):])
    k = 0
    while all(len(p) > k for p in pieces) and len({p[k] for p in pieces}) == 1:
        k += 1
    if any(len(p) <= k for p in pieces):
        raise ScorerError(f"{where}: the answers {', '.join(map(repr, choices))} tokenize so that one is the "
                          "beginning of another; no single token tells them apart")
    first = [p[k] for p in pieces]
    for i, a in enumerate(first):
        for j in range(i + 1, len(first)):
            if a == first[j]:
                raise ScorerError(
                    f"{where}: the answers {choices[i]!r} and {choices[j]!r} begin with the same token "
                    f"{tokenizer.convert_ids_to_tokens(a)!r} (pieces {tokenizer.convert_ids_to_tokens(pieces[i])} "
                    f"and {tokenizer.convert_ids_to_tokens(pieces[j])}); one forward pass cannot tell them apart")
    return pieces[0][:k], first, pieces


def _positive_int(value: str, name: str, where: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ScorerError(f"{where}: {name}={value!r} is not a whole number") from None
    if number < 1:
        raise ScorerError(f"{where}: {name} must be at least 1")
    return number


class ChatScorer(Scorer):
    """The machinery of a generative scorer; a subclass sets :attr:`record`, :attr:`values` and :meth:`messages`."""

    #: ``format`` (guard) or ``rubric`` (judge): how the record is named in specs and messages
    record_kind: str = "record"
    record: GuardFormat | JudgeRubric
    #: each choice's contribution to the score (its share of unsafe, or its rating mapped onto [0, 1])
    values: tuple[float, ...]
    #: a preset's name, revision and origin (:mod:`.generative_presets`), added to the provenance
    preset_info: dict[str, Any] | None = None

    def messages(self, text: str, context: str | None = None) -> list[dict[str, str]]:
        raise NotImplementedError

    def probes(self) -> list[tuple[list[dict[str, str]], list[dict[str, str]]]]:
        """Conversations rendered at load time to check the template and find the answer tokens: per shape
        of conversation, two that differ in their texts (what they share is the prompt's fixed start)."""
        return [(self.messages("xdet probe: a short text to rate."), self.messages("Пример текста, 例子。"))]

    def version_tag(self) -> str:
        return f"{self.record.name}-{record_sha256(self.record)[:8]}"

    def _check_options(self, options: dict[str, str], where: str) -> None:
        """The options every generative backend takes, checked before any file is read."""
        self.batch = _positive_int(options.get("batch", str(DEFAULT_BATCH)), "batch", where)
        self.device = pick_device(options.get("device"))
        try:
            self.dtype = pick_dtype(options.get("dtype", "float32"), self.device)
        except ScorerError as err:
            raise ScorerError(f"{where}: {err}") from None
        if options.get("langs"):
            self.covers = parse_langs(options["langs"], where)

    def _load(self, model_ref: str, revision: str | None, where: str) -> None:
        """Files, tokenizer and its checks, then the weights (only when everything else is in order)."""
        import torch
        import transformers
        from packaging.version import Version
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_ref, self.where, self._torch = model_ref, where, torch
        folder = _model_dir(model_ref, revision)
        self.files_sha256 = files_hash(folder)
        try:
            if not has_tokenizer_files(folder):
                raise OSError("no tokenizer files")
            self.tokenizer = AutoTokenizer.from_pretrained(folder)
        except (OSError, ValueError, TypeError) as err:
            raise TokenizerError(f"{where}: no usable tokenizer in {folder} ({err})") from None
        template = self.tokenizer.chat_template
        if not template:
            raise ScorerError(f"{where}: {model_ref} has no chat template (tokenizer_config.json 'chat_template' or "
                              f"chat_template.jinja); the {self.record_kind} {self.record.name!r} is rendered by the "
                              "model's own template")
        self.chat_template_sha256 = hashlib.sha256(str(template).encode()).hexdigest()
        self._find_answer_tokens(where)
        try:  # transformers 4.56 renamed torch_dtype to dtype
            key = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
            model = AutoModelForCausalLM.from_pretrained(folder, **{key: getattr(torch, self.dtype)})
        except Exception as err:  # noqa: BLE001 - OSError, ValueError, a safetensors error, an unknown architecture
            raise ScorerError(f"{where}: cannot load {model_ref!r} as a causal language model: "
                              f"{type(err).__name__}: {' '.join(str(err).split())[:300]}") from None
        self.model = model.to(self.device).eval()
        vocab = self.model.get_output_embeddings().weight.shape[0]
        if max(self.choice_ids) >= vocab:
            raise ScorerError(f"{where}: answer token id {max(self.choice_ids)} is outside the model's {vocab} outputs")
        self.max_tokens = int(getattr(self.model.config, "max_position_embeddings", 0) or 0) or None
        parameters = inspect.signature(self.model.forward).parameters
        self._keep_last = "logits_to_keep" in parameters
        self._cache_arg = "cache" if "cache" in parameters else "past_key_values"  # renamed in transformers 5
        self.version = f"{self.files_sha256[:16]}.{self.version_tag()}"
        if self.dtype != "float32":  # half-precision scores are not the float32 ones: keep them apart
            self.version += f"-{_DTYPE_TAG[self.dtype]}"
        self.too_long = self.rows_after_prefix = 0
        self._mass: list[float] = []
        self._caches: dict[tuple[int, ...], Any] = {}

    def render(self, messages: list[dict[str, str]]) -> str:
        """The model's chat template over ``messages``, then the answer prefix."""
        try:
            text = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=self.record.add_generation_prompt,
                **self.record.template_kwargs)
        except Exception as err:  # noqa: BLE001 - a template's own raise_exception, a missing variable ...
            raise ScorerError(f"{self.where}: the chat template of {self.model_ref} fails on "
                              f"{[m['role'] for m in messages]} messages: {type(err).__name__}: {err}") from None
        return str(text) + self.record.answer_prefix

    def _find_answer_tokens(self, where: str) -> None:
        markers = getattr(self.record, "markers", ())
        found, probes = None, []
        for messages in (m for pair in self.probes() for m in pair):
            prompt = self.render(messages)
            missing = [m for m in markers if m not in prompt]
            missing += [m["content"] for m in messages if m["content"] not in prompt]
            if missing:
                raise ScorerError(
                    f"{where}: the chat template of {self.model_ref} does not render the {self.record_kind} "
                    f"{self.record.name!r}: {missing[0][:60]!r} is not in its prompt"
                    + (f" (the format is {self.record.models}'s)" if isinstance(self.record, GuardFormat) else ""))
            shared, first, pieces = answer_tokens(self.tokenizer, prompt, self.record.choices, where)
            if found is not None and (shared, first) != found[:2]:
                raise ScorerError(f"{where}: the answer tokens after the prompt depend on the rated text "
                                  f"({found[1]} vs {first}); the tokenizer joins them with what precedes them")
            found = found or (shared, first, pieces)
            probes.append(encode(self.tokenizer, prompt))
        self.shared_ids, self.choice_ids, self.choice_pieces = found
        special = set(self.tokenizer.all_special_ids) | {
            i for i, tok in self.tokenizer.added_tokens_decoder.items() if tok.special}
        #: the probes' fixed ends, from their last special token: every rendered prompt must end with one
        self.tails: set[tuple[int, ...]] = set()
        for ids in probes:
            last = max((i for i, t in enumerate(ids) if t in special), default=None)
            self.tails.add(tuple(ids[last:]) if last is not None else ())
        #: the prompts' fixed starts (one per shape of conversation), read once and shared by every text
        self.prefixes: list[tuple[int, ...]] = []
        for first_probe, second_probe in self.probes():
            a, b = encode(self.tokenizer, self.render(first_probe)), encode(self.tokenizer, self.render(second_probe))
            k = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            if k >= MIN_PREFIX:
                self.prefixes.append(tuple(a[:k]))

    def _rows(self, prompts: list[str]) -> list[list[int]]:
        rows = []
        for prompt, ids in zip(prompts, self.tokenizer(prompts, add_special_tokens=False)["input_ids"], strict=True):
            if not any(tuple(ids[len(ids) - len(tail):]) == tail for tail in self.tails):
                raise ScorerError(f"{self.where}: a prompt does not end as the probe's did, so its answer position "
                                  f"is not the one the answer tokens were found for: ...{prompt[-60:]!r}")
            rows.append(list(ids) + self.shared_ids)
        return rows

    def _batch(self, rows: list[list[int]]) -> tuple[Any, Any, Any]:
        """``input_ids``, ``attention_mask`` and ``position_ids``, padded on the left to this batch's longest row."""
        torch = self._torch
        width = max(len(r) for r in rows)
        if self.device.startswith("cuda"):
            width = -(-width // 8) * 8  # tensor-core friendly shapes; masked positions change nothing
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            ids[r, width - len(row):] = torch.tensor(row, dtype=torch.long)
            mask[r, width - len(row):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return ids.to(self.device), mask.to(self.device), positions.to(self.device)

    def _last_logits(self, rows: list[list[int]], prefix: tuple[int, ...] = ()) -> Any:
        """The last position's logits of each row, which all begin with ``prefix`` (read from its cache)."""
        torch = self._torch
        ids, mask, positions = self._batch([row[len(prefix):] for row in rows])
        kwargs: dict[str, Any] = {"logits_to_keep": 1} if self._keep_last else {}
        if prefix:
            past = copy.deepcopy(self._prefix_cache(prefix))
            past.batch_repeat_interleave(len(rows))
            mask = torch.cat([torch.ones((len(rows), len(prefix)), dtype=mask.dtype, device=mask.device), mask], 1)
            kwargs.update({self._cache_arg: past, "use_cache": True})
            positions = positions + len(prefix)
        else:
            kwargs["use_cache"] = False
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, **kwargs)
        return out.logits[:, -1, :].float()

    def _prefix_cache(self, prefix: tuple[int, ...]) -> Any:
        """The keys and values of ``prefix``, computed once (one unpadded pass)."""
        if prefix not in self._caches:
            torch = self._torch
            ids = torch.tensor([prefix], dtype=torch.long, device=self.device)
            kwargs = {"logits_to_keep": 1} if self._keep_last else {}
            out = self.model(input_ids=ids, use_cache=True, **kwargs)
            self._caches[prefix] = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
        return self._caches[prefix]

    def _groups(self, rows: list[list[int]], todo: list[int]) -> dict[tuple[int, ...], list[int]]:
        """Rows by the longest known prefix each begins with and goes beyond (``()``: none)."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for k in todo:
            row = rows[k]
            prefix = max((p for p in self.prefixes if len(row) > len(p) and tuple(row[: len(p)]) == p),
                         key=len, default=())
            groups.setdefault(prefix, []).append(k)
        self.rows_after_prefix += sum(len(v) for p, v in groups.items() if p)
        return groups

    def choice_probabilities(self, prompts: list[str]) -> list[list[float] | None]:
        """Per prompt, the choices' probabilities renormalised over them (``None``: longer than the model reads)."""
        torch = self._torch
        if not prompts:
            return []
        rows = self._rows(prompts)
        out: list[list[float] | None] = [None] * len(rows)
        todo = [k for k, r in enumerate(rows) if self.max_tokens is None or len(r) <= self.max_tokens]
        self.too_long += len(rows) - len(todo)
        index = torch.tensor(self.choice_ids, device=self.device)
        with torch.inference_mode():
            for prefix, group in self._groups(rows, todo).items():
                order = sorted(group, key=lambda k: len(rows[k]))  # similar lengths share a batch
                for start in range(0, len(order), self.batch):
                    part = order[start : start + self.batch]
                    self._read(self._last_logits([rows[k] for k in part], prefix), index, part, out)
        return out

    def _read(self, logits: Any, index: Any, part: list[int], out: list[list[float] | None]) -> None:
        """The choices' renormalised probabilities of each row of ``logits`` into ``out``."""
        torch = self._torch
        chosen = logits.index_select(-1, index)
        probs = torch.softmax(chosen, dim=-1)
        self._mass.extend(torch.exp(torch.logsumexp(chosen, -1) - torch.logsumexp(logits, -1)).tolist())
        for k, p in zip(part, probs.cpu().tolist(), strict=True):
            out[k] = p

    def score(self, texts: Sequence[str], lang: str,
              contexts: Sequence[str | None] | None = None) -> list[float | None]:
        out: list[float | None] = [None] * len(texts)
        todo = [i for i, text in enumerate(texts) if text.strip()]
        for i in set(range(len(texts))) - set(todo):
            out[i] = 0.0  # the project's rule for empty completions, without a model call
        prompts = [self.render(self.messages(texts[i], contexts[i] if contexts is not None else None)) for i in todo]
        for i, probs in zip(todo, self.choice_probabilities(prompts), strict=True):
            if probs is not None:
                out[i] = min(1.0, max(0.0, sum(v * p for v, p in zip(self.values, probs, strict=True))))
        return out

    def provenance(self) -> dict[str, Any]:
        tokens = self.tokenizer.convert_ids_to_tokens
        return {
            **super().provenance(),
            "model": self.model_ref,
            "files_sha256": self.files_sha256,
            "chat_template_sha256": self.chat_template_sha256,
            self.record_kind: {"name": self.record.name, "version": self.record.version,
                               "sha256": record_sha256(self.record), "score": self.record.score,
                               "source": self.record.source},
            "answer": {
                "prefix": self.record.answer_prefix,
                "shared_tokens": tokens(self.shared_ids),
                "choices": {c: {"pieces": tokens(p), "scored": tokens(i), "value": v}
                            for c, p, i, v in zip(self.record.choices, self.choice_pieces, self.choice_ids,
                                                  self.values, strict=True)},
                "mass": {"mean": sum(self._mass) / len(self._mass), "min": min(self._mass)} if self._mass else None,
            },
            **(self.preset_info or {}),
            "too_long_texts": self.too_long,
            "device": self.device,
            "dtype": self.dtype,
            "language_handling": "one multilingual model; language not used; covers "
            + (", ".join(self.covers) if self.covers is not None else "any language (not declared)"),
        }
