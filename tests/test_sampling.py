"""K samples of a prompt share one encoding of it (SharedPromptHFLM), and change nothing else."""

from __future__ import annotations

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from xdet_tasks.sampling import SharedPromptHFLM

PROMPTS = ["Die Leute hier sind so", "Это было очень", "这个人真是一个", "The food at the place was really not"]
GREEDY = {"until": [], "do_sample": False, "max_gen_toks": 8}
SAMPLED = {"until": [], "do_sample": True, "temperature": 0.9, "top_p": 0.8, "max_gen_toks": 8}


def _requests(kwargs: dict, k: int, order: list[int] | None = None, prompts: list[str] = PROMPTS) -> list[Instance]:
    """lm-eval's layout: each prompt's Instance repeated K times (``[req] * req.repeats``)."""
    reqs = [Instance("generate_until", {}, (p, dict(kwargs)), i, ("t", i, k)) for i, p in enumerate(prompts)]
    return [reqs[i] for i in (order or range(len(reqs))) for _ in range(k)]


def _prefill_rows(lm: HFLM) -> list[int]:
    """Counts rows the model runs on more than one token at once (prompt encodings)."""
    counted: list[int] = []

    def hook(module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None and ids.shape[1] > 1:
            counted.append(ids.shape[0])

    target = lm.model.get_encoder() if lm.backend == "seq2seq" else lm.model
    target.register_forward_pre_hook(hook, with_kwargs=True)
    return counted


@pytest.mark.parametrize(("family", "batch"), [("llama", 8), ("mt5", 1)])
def test_greedy_continuations_are_hflms_and_each_prompt_is_encoded_once(tiny_model, family, batch):
    """Greedy decoding makes the two paths comparable token for token (mT5 at batch 1: HFLM's seq2seq
    length limit depends on the batch's padded prompt length, so only equal batches compare)."""
    path = str(tiny_model(family))
    k = 4
    base, shared = HFLM(pretrained=path, batch_size=batch, device="cpu"), SharedPromptHFLM(
        pretrained=path, batch_size=batch, device="cpu")
    base_rows, shared_rows = _prefill_rows(base), _prefill_rows(shared)
    order = [3, 0, 1, 2]
    expected = base.generate_until(_requests(GREEDY, k, order), disable_tqdm=True)
    assert shared.generate_until(_requests(GREEDY, k, order), disable_tqdm=True) == expected
    assert sum(base_rows) == k * len(PROMPTS) and sum(shared_rows) == len(PROMPTS)
    # a one-token prompt has nothing to encode ahead of generation: it takes the plain path, same output
    short = _requests(GREEDY, 3, prompts=["a"])
    assert shared.generate_until(short, disable_tqdm=True) == base.generate_until(short, disable_tqdm=True)


def test_samples_are_distinct_and_distinct_requests_take_hflms_path(tiny_model):
    path = str(tiny_model("llama"))
    shared = SharedPromptHFLM(pretrained=path, batch_size=8, device="cpu")
    torch.manual_seed(0)
    texts = shared.generate_until(_requests(SAMPLED, 5), disable_tqdm=True)
    assert len(texts) == 5 * len(PROMPTS)
    assert all(len(set(texts[i:i + 5])) > 1 for i in range(0, len(texts), 5))
    # K = 1 (the paper's tasks): HFLM's own code, the same samples for the same seed
    base = HFLM(pretrained=path, batch_size=8, device="cpu")
    torch.manual_seed(1)
    expected = base.generate_until(_requests(SAMPLED, 1), disable_tqdm=True)
    torch.manual_seed(1)
    assert shared.generate_until(_requests(SAMPLED, 1), disable_tqdm=True) == expected


@pytest.mark.parametrize("family", ["llama", "mt5"])
def test_every_step_sees_the_same_distribution_from_the_shared_encoding(tiny_model, family):
    """The next-token scores at every step equal those of encoding each row separately (left padding,
    positions, the copy of each prompt's cache to its rows): a tiny random model's greedy tokens alone
    are too insensitive to prove that."""
    lm = SharedPromptHFLM(pretrained=str(tiny_model(family)), batch_size=8, device="cpu")
    counts = [3, 1, 2, 2]
    context, attn = lm.tok_batch_encode(PROMPTS, left_truncate_len=200)
    rows = torch.repeat_interleave(torch.arange(len(PROMPTS)), torch.tensor(counts))
    common = {"stop": [], "max_length": context.shape[1] + 6, "do_sample": False, "output_scores": True,
              "return_dict_in_generate": True}
    shared = lm._model_generate(context=context[rows], attention_mask=attn[rows],
                                **lm._encode_once(context, attn).rows(rows, last=True), **common)
    separate = lm._model_generate(context=context[rows], attention_mask=attn[rows], **common)
    assert len(shared.scores) == len(separate.scores) > 0
    for step_shared, step_separate in zip(shared.scores, separate.scores, strict=True):
        torch.testing.assert_close(step_shared, step_separate, atol=1e-4, rtol=1e-4)


def _rows_per_forward(lm: HFLM) -> list[int]:
    """Rows of every forward pass (prompt encodings, encoder, each decoding step), as the token
    embeddings see them (mT5's encoder and decoder each have theirs)."""
    rows: list[int] = []
    vocab = lm.model.get_input_embeddings().num_embeddings  # not T5's relative-position embeddings
    for module in lm.model.modules():
        if isinstance(module, torch.nn.Embedding) and module.num_embeddings == vocab:
            module.register_forward_pre_hook(lambda module, args: rows.append(args[0].shape[0]))
    return rows


@pytest.mark.parametrize("max_gen_toks", [8, 12])
def test_a_generation_budget_the_context_window_cannot_hold_is_refused_as_hflm_refuses_it(tiny_model, max_gen_toks):
    """HFLM asserts that ``max_length - max_gen_toks`` leaves room for a prompt; without the check a
    negative room would keep only the prompts' last tokens."""
    path = str(tiny_model("llama"))
    kwargs = {**GREEDY, "max_gen_toks": max_gen_toks}
    with pytest.raises(AssertionError, match="must be less than"):
        HFLM(pretrained=path, max_length=8, device="cpu").generate_until(_requests(kwargs, 3), disable_tqdm=True)
    shared = SharedPromptHFLM(pretrained=path, max_length=8, device="cpu")
    with pytest.raises(AssertionError, match="must be less than"):
        shared.generate_until(_requests(kwargs, 3), disable_tqdm=True)


@pytest.mark.parametrize("family", ["llama", "mt5"])
def test_the_shared_encoding_runs_under_hflms_mixed_precision(tiny_model, family):
    """``mixed_precision_dtype`` puts every forward pass under ``torch.autocast``: each linear layer
    then computes in bfloat16, the prompt's one encoding included (a float32 output would show it ran
    outside)."""
    path = str(tiny_model(family))
    seen: dict[str, set[torch.dtype]] = {}
    for label, cls, precision in (("hflm", HFLM, "bfloat16"), ("shared", SharedPromptHFLM, "bfloat16"),
                                  ("shared, no autocast", SharedPromptHFLM, None)):
        lm = cls(pretrained=path, batch_size=8, device="cpu", mixed_precision_dtype=precision)
        dtypes = seen[label] = set()
        for module in lm.model.modules():
            if isinstance(module, torch.nn.Linear):
                module.register_forward_hook(lambda module, args, output, dtypes=dtypes: dtypes.add(output.dtype))
        encoded = _prefill_rows(lm)
        lm.generate_until(_requests(GREEDY, 3), disable_tqdm=True)
        assert encoded  # prompts were encoded
    assert seen == {"hflm": {torch.bfloat16}, "shared": {torch.bfloat16}, "shared, no autocast": {torch.float32}}


def test_k1_requests_take_hflms_own_code_whatever_else_the_run_contains(tiny_model):
    """lm-eval sends one run's requests of every task together: a K = 1 task beside a K = 3 task keeps
    HFLM's path, so its samples are HFLM's for the same seed (same batches, same random draws) and its
    prompts are encoded whole by ``generate`` rather than by the shared encoding."""
    path = str(tiny_model("llama"))
    single = _requests(SAMPLED, 1, prompts=PROMPTS[:3])
    repeated = [Instance("generate_until", {}, (PROMPTS[3], dict(SAMPLED)), 0, ("t3", 0, 3))] * 3
    base = HFLM(pretrained=path, batch_size=8, device="cpu")
    shared = SharedPromptHFLM(pretrained=path, batch_size=8, device="cpu")
    torch.manual_seed(0)
    expected = base.generate_until(single, disable_tqdm=True)
    encoded: list[list[int]] = []

    def record(module, args, kwargs):
        ids = kwargs["input_ids"]
        if ids.shape[1] > 1:  # a prompt encoding; its padding left out
            mask = kwargs["attention_mask"]
            encoded.extend(row[keep.bool()].tolist() for row, keep in zip(ids, mask, strict=True))

    shared.model.register_forward_pre_hook(record, with_kwargs=True)
    torch.manual_seed(0)
    assert shared.generate_until(single + repeated, disable_tqdm=True)[:3] == expected
    whole = [shared.tok_encode(p) for p in PROMPTS]
    assert sorted(encoded) == sorted(whole[:3] + [whole[3][:-1]])  # K = 1 whole (generate), K = 3 once, shared
    greedy = [Instance("generate_until", {}, (r.args[0], dict(GREEDY)), r.idx, r.metadata) for r in single + repeated]
    assert shared.generate_until(greedy, disable_tqdm=True)[:3] == base.generate_until(greedy[:3], disable_tqdm=True)


@pytest.mark.parametrize(("family", "batch"), [("llama", 2), ("mt5", 1)])
def test_a_prompts_samples_are_split_over_batches_of_at_most_batch_size_rows(tiny_model, family, batch):
    """K = 5 samples at ``batch_size`` 2 (mT5: 1) span several batches; the prompt is still encoded
    once, no forward pass sees more rows than ``batch_size``, and greedy decoding gives HFLM's tokens."""
    path = str(tiny_model(family))
    base = HFLM(pretrained=path, batch_size=batch, device="cpu")
    shared = SharedPromptHFLM(pretrained=path, batch_size=batch, device="cpu")
    rows, encoded = _rows_per_forward(shared), _prefill_rows(shared)
    expected = base.generate_until(_requests(GREEDY, 5), disable_tqdm=True)
    assert shared.generate_until(_requests(GREEDY, 5), disable_tqdm=True) == expected
    assert rows and max(rows) <= batch
    assert sum(encoded) == len(PROMPTS)
