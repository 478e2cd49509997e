"""Conditional perplexity of a completion given its prompt (``xdet.fluency.compute``), checked against
manual forward passes written here with plain transformers calls, and the fluency aggregates against
NumPy's own statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from xdet.fluency.compute import conditional_nll, encode, leading_special_tokens, score_batches
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


def test_a_pair_exactly_at_the_window_and_a_completion_exactly_filling_it(llama):
    """The two boundaries of the truncation rule: a pair of exactly ``max_length`` tokens is kept whole and
    not flagged; a completion of exactly ``max_length`` tokens keeps the prompt's last token and its first
    ``max_length - 1``."""
    model, tok = llama
    context, completion = CONTEXTS[1], COMPLETIONS[1]
    prompt = tok(context, add_special_tokens=False)["input_ids"]
    cont = tok(completion, add_special_tokens=False)["input_ids"]
    [whole] = conditional_nll(model, tok, [context], [completion], max_length=len(prompt) + len(cont))
    assert not whole.truncated and whole.tokens == len(cont)
    assert whole.nll == pytest.approx(manual_nll(model, prompt, cont), rel=1e-5)
    [full] = conditional_nll(model, tok, [context], [completion], max_length=len(cont))
    assert full.truncated and full.tokens == len(cont) - 1
    assert full.nll == pytest.approx(manual_nll(model, prompt[-1:], cont[:-1]), rel=1e-5)


def _copy(tok, **special):
    """A fresh copy of ``tok`` with some special tokens changed (``None``: the tokenizer has none)."""
    other = AutoTokenizer.from_pretrained(tok.name_or_path)
    for name, value in special.items():
        setattr(other, name, value)
    return other


def test_an_empty_prompt_is_conditioned_on_bos_else_eos(llama):
    """As lm-eval conditions an empty context: on the BOS token, or the EOS token for a tokenizer without
    one (the tiny tokenizer has distinct BOS and EOS, so the two are told apart)."""
    model, tok = llama
    assert None not in (tok.bos_token_id, tok.eos_token_id) and tok.bos_token_id != tok.eos_token_id
    cont = tok(COMPLETIONS[1], add_special_tokens=False)["input_ids"]
    no_bos = _copy(tok, bos_token=None)
    for tokenizer, start in ((tok, tok.bos_token_id), (no_bos, tok.eos_token_id)):
        [scored] = conditional_nll(model, tokenizer, [""], [COMPLETIONS[1]], max_length=512)
        assert scored.tokens == len(cont) and not scored.truncated
        assert scored.nll == pytest.approx(manual_nll(model, [start], cont), rel=1e-5)


def test_a_completion_the_tokenizer_drops_entirely_has_no_tokens(llama):
    """A reference whose normalizer removes U+FFFD (what a generating model's decode leaves for invalid
    bytes) gives such a completion no tokens: it is not whitespace, yet has no perplexity, like an empty one."""
    from tokenizers import normalizers

    model, tok = llama
    clean = _copy(tok)
    clean._tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    assert clean("\ufffd\ufffd", add_special_tokens=False)["input_ids"] == []
    for completions in (["\ufffd\ufffd"], [COMPLETIONS[1], "\ufffd\ufffd"]):
        got = conditional_nll(model, clean, CONTEXTS[:len(completions)], completions, max_length=512)
        assert (got[-1].nll, got[-1].tokens) == (None, 0)
    prompt = tok(CONTEXTS[0], add_special_tokens=False)["input_ids"]
    cont = tok(COMPLETIONS[1], add_special_tokens=False)["input_ids"]
    assert got[0].tokens == len(cont)
    assert got[0].nll == pytest.approx(manual_nll(model, prompt, cont), rel=1e-5)


@pytest.mark.parametrize("special", [{"pad_token": None}, {"pad_token": None, "eos_token": None}])
def test_padding_without_a_pad_token(llama, special):
    """Padding uses the pad token, else EOS, else id 0; whichever, padded rows score as unpadded ones."""
    model, tok = llama
    bare = _copy(tok, **special)
    assert bare.pad_token_id is None and (bare.eos_token_id is None) == ("eos_token" in special)
    got = conditional_nll(model, bare, CONTEXTS, COMPLETIONS, max_length=512, batch_size=4)
    for context, completion, scored in zip(CONTEXTS, COMPLETIONS, got, strict=True):
        prompt = tok(context, add_special_tokens=False)["input_ids"]
        cont = tok(completion, add_special_tokens=False)["input_ids"]
        assert scored.nll == pytest.approx(manual_nll(model, prompt, cont), rel=1e-5)


def test_score_batches_scores_each_pair_once_longest_first(llama):
    """Called directly (default device): every pair exactly once, ``batch_size`` per forward pass, the
    longest pairs together first (so padding stays small), each value as scored alone."""
    model, tok = llama
    contexts = [CONTEXTS[i % 4] for i in range(7)]
    completions = [COMPLETIONS[1] * (1 + i) for i in range(7)]  # given shortest first
    encoded = encode(tok, contexts, completions, max_length=512)
    batches = list(score_batches(model, encoded, batch_size=3, pad_id=tok.pad_token_id))
    assert [len(b) for b in batches] == [3, 3, 1]
    seen = [i for b in batches for i, _ in b]
    assert sorted(seen) == list(range(7))
    lengths = [len(encoded[i].ids) for i in seen]
    assert lengths == sorted(lengths, reverse=True) and lengths[0] > lengths[-1]
    for b in batches:
        for i, scored in b:
            [alone] = conditional_nll(model, tok, [contexts[i]], [completions[i]], max_length=512)
            assert scored.tokens == alone.tokens and scored.nll == pytest.approx(alone.nll, rel=1e-5)


def test_a_model_reading_positions_from_the_mask_scores_padded_rows_right(tiny_model):
    """OPT derives position ids from the attention mask's running sum, so the mask must be exactly 1 over
    every real token: padded rows are checked against unpadded manual passes."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model("opt")).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model("opt"))
    got = conditional_nll(model, tok, CONTEXTS, COMPLETIONS, max_length=512, batch_size=4)
    for context, completion, scored in zip(CONTEXTS, COMPLETIONS, got, strict=True):
        prompt = tok(context, add_special_tokens=False)["input_ids"]
        cont = tok(completion, add_special_tokens=False)["input_ids"]
        assert scored.nll == pytest.approx(manual_nll(model, prompt, cont), rel=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (inputs must follow the model there)")
def test_on_a_gpu_the_inputs_follow_the_model(llama):
    model, tok = llama
    on_cpu = conditional_nll(model, tok, CONTEXTS, COMPLETIONS, max_length=512, batch_size=4)
    on_gpu = conditional_nll(model.to("cuda"), tok, CONTEXTS, COMPLETIONS, max_length=512, batch_size=4, device="cuda")
    model.to("cpu")
    for a, b in zip(on_cpu, on_gpu, strict=True):
        assert a.tokens == b.tokens and a.nll == pytest.approx(b.nll, rel=1e-4)


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
