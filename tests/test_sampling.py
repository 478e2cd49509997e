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
                                **lm._shared_encoding(context, attn, rows), **common)
    separate = lm._model_generate(context=context[rows], attention_mask=attn[rows], **common)
    assert len(shared.scores) == len(separate.scores) > 0
    for step_shared, step_separate in zip(shared.scores, separate.scores, strict=True):
        torch.testing.assert_close(step_shared, step_separate, atol=1e-4, rtol=1e-4)
