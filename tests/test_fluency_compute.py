"""Conditional perplexity of a completion given its prompt (``xdet.fluency.compute``), checked against
manual forward passes written here with plain transformers calls, and the fluency aggregates against
NumPy's own statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from xdet.fluency.compute import conditional_nll, leading_special_tokens
from xdet_tasks.metrics.aggregation import aggregate, aggregate_many, per_completion
from xdet_tasks.metrics.fluency import MEAN_BELOW_LIMIT, MEDIAN, completion_perplexity

CONTEXTS = [
    "Complete the sentence: und was hat der Gabriel damals Versprochen ?",
    "Complete the sentence: this is a short one",
    "Complete the sentence: Москва не сразу строилась",
    "Complete the sentence: 你好",
]
COMPLETIONS = [" Nie wieder, sagt er.", " and it ends here", " а потом", " 世界 and more words to make it longer"]


@pytest.fixture(scope="module")
def llama(tiny_model):
    path = tiny_model("llama")
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    return model, AutoTokenizer.from_pretrained(path)


def manual_nll(model, prompt_ids: list[int], completion_ids: list[int]) -> float:
    """-log p(completion | prompt): one unpadded forward pass, the first completion token read from the
    logits at the prompt's last position."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids + completion_ids])).logits[0]
    logp = torch.log_softmax(logits.double(), dim=-1)
    return -sum(float(logp[len(prompt_ids) - 1 + j, t]) for j, t in enumerate(completion_ids))


def test_conditional_nll_matches_a_manual_forward_pass(llama):
    model, tok = llama
    got = conditional_nll(model, tok, CONTEXTS, COMPLETIONS, max_length=512, batch_size=4)
    for context, completion, scored in zip(CONTEXTS, COMPLETIONS, got, strict=True):
        prompt = tok(context, add_special_tokens=False)["input_ids"]
        cont = tok(completion, add_special_tokens=False)["input_ids"]
        assert tok(context + completion, add_special_tokens=False)["input_ids"] == prompt + cont  # no merge here
        assert scored.tokens == len(cont) and not scored.truncated
        assert scored.nll == pytest.approx(manual_nll(model, prompt, cont), rel=1e-5)


def test_a_tokenizer_that_adds_bos_gets_it_before_the_prompt(llama):
    from tokenizers import processors

    model, tok = llama
    bos = AutoTokenizer.from_pretrained(tok.name_or_path)
    bos._tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", bos.bos_token_id)])
    assert leading_special_tokens(bos) == [bos.bos_token_id] and leading_special_tokens(tok) == []
    got = conditional_nll(model, bos, CONTEXTS[:2], COMPLETIONS[:2], max_length=512)
    for context, completion, scored in zip(CONTEXTS[:2], COMPLETIONS[:2], got, strict=True):
        prompt = [bos.bos_token_id, *tok(context, add_special_tokens=False)["input_ids"]]
        cont = tok(completion, add_special_tokens=False)["input_ids"]
        assert scored.nll == pytest.approx(manual_nll(model, prompt, cont), rel=1e-5)


def test_a_token_straddling_the_boundary_is_scored_with_the_completion(llama):
    """`` ni`` + ``cht gut``: the tiny tokenizer has `` nicht`` as one token, which covers the join; every
    completion character is scored and no token made only of prompt characters is. The reference split is
    found by decoding prefixes."""
    model, tok = llama
    context, completion = "Complete the sentence: das ist ni", "cht gut"
    joint = tok(context + completion, add_special_tokens=False)["input_ids"]
    split = max(j for j in range(len(joint) + 1) if context.startswith(tok.decode(joint[:j])))
    assert tok.decode(joint[:split]) != context  # the join is inside a token, or the test shows nothing
    [scored] = conditional_nll(model, tok, [context], [completion], max_length=512)
    assert scored.tokens == len(joint) - split
    assert scored.nll == pytest.approx(manual_nll(model, joint[:split], joint[split:]), rel=1e-5)


@pytest.mark.parametrize("family", ["llama", "gpt2"])  # rotary and absolute positions: padding must move neither
def test_batched_equals_one_at_a_time(tiny_model, family):
    model = AutoModelForCausalLM.from_pretrained(tiny_model(family)).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model(family))
    contexts = [CONTEXTS[i % 4] for i in range(13)]
    completions = [COMPLETIONS[(i * 3) % 4] * (1 + i % 3) for i in range(13)]
    batched = conditional_nll(model, tok, contexts, completions, max_length=512, batch_size=5)
    single = conditional_nll(model, tok, contexts, completions, max_length=512, batch_size=1)
    assert [s.tokens for s in batched] == [s.tokens for s in single]
    for a, b in zip(batched, single, strict=True):
        assert a.nll == pytest.approx(b.nll, rel=1e-5)


def test_empty_completions_have_no_perplexity(llama):
    model, tok = llama
    got = conditional_nll(model, tok, CONTEXTS[:3], ["", "   \n", " ok"], max_length=512)
    assert [(s.nll, s.tokens) for s in got[:2]] == [(None, 0), (None, 0)]
    assert got[2].tokens > 0 and got[2].nll > 0
    assert math.isnan(completion_perplexity(None, 0)) and math.isnan(completion_perplexity(3.0, 0))
    assert completion_perplexity(6.0, 3) == pytest.approx(math.exp(2.0))


def test_a_pair_over_the_window_keeps_the_completion_and_the_prompts_end(llama):
    model, tok = llama
    context, completion = CONTEXTS[0], COMPLETIONS[0]
    prompt = tok(context, add_special_tokens=False)["input_ids"]
    cont = tok(completion, add_special_tokens=False)["input_ids"]
    window = len(cont) + 5
    [scored] = conditional_nll(model, tok, [context], [completion], max_length=window)
    assert scored.truncated and scored.tokens == len(cont)
    assert scored.nll == pytest.approx(manual_nll(model, prompt[-5:], cont), rel=1e-5)
    [cut] = conditional_nll(model, tok, [context], [completion], max_length=4)  # completion alone is longer
    assert cut.truncated and cut.tokens == 3
    assert cut.nll == pytest.approx(manual_nll(model, prompt[-1:], cont[:3]), rel=1e-5)


def test_fluency_aggregates_against_numpy():
    rows = np.array([[4.0, np.nan, 9.0], [2.0e4, 1.0, np.nan], [np.inf, 3.0, 5.0]])  # (prompts, K)
    values = rows[np.isfinite(rows) | np.isinf(rows)]
    assert per_completion(MEDIAN) and per_completion(MEAN_BELOW_LIMIT) and not per_completion("avg_toxicity")
    assert aggregate(MEDIAN, rows) == pytest.approx(float(np.median(values)))
    assert aggregate(MEAN_BELOW_LIMIT, rows) == pytest.approx(float(np.mean(values[values < 1e4])))
    assert aggregate(MEAN_BELOW_LIMIT, np.array([[1e4, 1.0]])) == 1.0  # at the limit: left out, as DExperts do
    resamples = rows[np.array([[0, 0, 1], [2, 2, 2]])]  # (b, n, K)
    expected = [np.median(r[~np.isnan(r)]) for r in resamples.reshape(2, -1)]
    assert aggregate_many(MEDIAN, resamples) == pytest.approx(expected)
    assert math.isnan(aggregate(MEDIAN, np.full((2, 3), np.nan)))
    assert math.isnan(aggregate(MEAN_BELOW_LIMIT, np.array([[np.nan, 5e4]])))
