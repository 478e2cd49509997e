"""P10 (GPU, not yet run): one RTP-LX language under the Li et al. 2024 protocol on a random-weight ~1B Llama.

All prompts of one language, 25 samples each, temperature 0.9, top-p 0.8, 20 new tokens (forced to
full length, so the count of generated tokens is exact), through lm-eval's ``hf`` path as ``xdet eval``
runs it (:class:`xdet_tasks.sampling.SharedPromptHFLM`) and, with ``--compare``, as a plain
``lm_eval --model hf`` run does (K separate requests). Reports wall time and generated tokens/s.

Model: Llama architecture at TinyLlama-1.1B's shape (hidden 2048, 22 layers, 32 heads, 4 KV heads,
FFN 5632), random weights in bfloat16, a byte-level BPE tokenizer trained on the ParaDetox train
sentences (no hub access needed). Prompts: the RTP-LX release file of ``--lang`` when ``XDET_RTPLX_DIR``
(or ``--rtplx-dir``) is set, else 1,080 ParaDetox toxic sentences (RTP-LX's per-locale size) as written.

    python benchmarks/bench_gpu_rtplx.py --lang de [--rtplx-dir RTP-LX] [--batch-size 512] [--compare]

Scoring is not timed (it is the scorer's benchmark, P7); this measures generation only.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
RTPLX_PER_LOCALE = 1080


def _prompts(lang: str, rtplx_dir: str | None) -> tuple[list[str], str]:
    from xdet_tasks.suites import rtplx
    from xdet_tasks.suites.paradetox import load_pairs
    from xdet_tasks.suites.records import LANGUAGES

    if rtplx_dir or os.environ.get(rtplx.ENV_DIR):
        prompts = [p.text.strip() for p in rtplx.load_prompts(lang, rtplx_dir=rtplx_dir)]
        return prompts, f"RTP-LX {rtplx.chosen_locales()[lang]} ({len(prompts)} prompts)"
    pool = [p.toxic.strip() for code in LANGUAGES for s in ("train", "test") for p in load_pairs(code, s)]
    return pool[:RTPLX_PER_LOCALE], f"{RTPLX_PER_LOCALE} ParaDetox toxic sentences (no RTP-LX folder given)"


def _model(out: str) -> str:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from xdet_tasks.suites.paradetox import load_pairs
    from xdet_tasks.suites.records import LANGUAGES
    from xdet_train.tiny import build_tokenizer

    if os.path.isfile(os.path.join(out, "config.json")):
        return out
    texts = [t for lang in LANGUAGES for p in load_pairs(lang, "train") for t in (p.toxic, p.neutral)]
    tok = build_tokenizer(texts, vocab_size=8192)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                         num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    print(f"random Llama: {sum(p.numel() for p in model.parameters()) / 1e9:.2f} B parameters")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lang", default="de")
    parser.add_argument("--rtplx-dir")
    parser.add_argument("--batch-size", type=int, default=512, help="sampled rows per forward pass")
    parser.add_argument("--model-dir", default="/tmp/xdet-bench-llama-1b")
    parser.add_argument("--compare", action="store_true", help="also time plain HFLM (K separate requests)")
    args = parser.parse_args()

    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from xdet_tasks.sampling import SharedPromptHFLM
    from xdet_tasks.suites.protocols import PROTOCOLS

    li = PROTOCOLS["li2024"]
    prompts, source = _prompts(args.lang, args.rtplx_dir)
    model = _model(args.model_dir)
    gen = {**li.generation_kwargs(), "min_new_tokens": li.max_new_tokens}
    paths = [("SharedPromptHFLM (xdet eval)", SharedPromptHFLM)] + ([("HFLM (plain lm_eval)", HFLM)] if args.compare else [])
    print(f"{source}; li2024: {li.samples} samples x {li.max_new_tokens} tokens; {torch.cuda.get_device_name(0)}")
    for label, cls in paths:
        lm = cls(pretrained=model, batch_size=args.batch_size, device="cuda", dtype="bfloat16")
        requests = []
        for i, p in enumerate(prompts):
            req = Instance("generate_until", {}, (p, dict(gen)), i, ("rtplx", i, li.samples))
            requests += [req] * li.samples
        lm.generate_until(requests[: 4 * li.samples], disable_tqdm=True)  # warm-up
        torch.cuda.synchronize()
        start = time.perf_counter()
        out = lm.generate_until(requests, disable_tqdm=True)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        tokens = len(out) * li.max_new_tokens
        print(f"{label}: {len(prompts)} prompts x {li.samples} = {len(out)} completions, {seconds:.1f} s, "
              f"{tokens / seconds:,.0f} generated tokens/s, peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
        del lm
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


if __name__ == "__main__":
    main()
