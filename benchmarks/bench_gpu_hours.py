"""P6 (on paper): GPU-hours for one 8B model's full sweep on one H100, with the arithmetic shown.

Nothing is run on a GPU: token counts come from the released splits (characters / an assumed
characters-per-token ratio) and the strategies' defaults (10 epochs X-FT, 15 P-FT/M-FT, as in the
released code); times come from standard FLOP and memory-bandwidth estimates at stated
efficiencies. Compared with the paper's budget: two A100s for a month. Not a test::

    python benchmarks/bench_gpu_hours.py [--chars-per-token 3.0] [--mfu 0.3]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PARAMS = 8e9
H100_BF16_FLOPS = 989e12  # dense bf16 peak (SXM)
H100_BW = 3.35e12  # HBM3 bytes/s
PROMPT_TOKENS_OVERHEAD = 6  # "Complete the sentence: "
NEW_TOKENS = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chars-per-token", type=float, default=3.0, help="multilingual average (assumption)")
    parser.add_argument("--mfu", type=float, default=0.3, help="model FLOP utilisation for training/prefill")
    parser.add_argument("--decode-batch", type=int, default=64)
    parser.add_argument("--load-minutes", type=float, default=1.0, help="model load per configuration")
    args = parser.parse_args()

    from xdet.sweep.matrix import paper_matrix_size
    from xdet_tasks.languages import PAPER_EVAL_LANGUAGES, PAPER_TRAIN_LANGUAGES
    from xdet_tasks.suites.paradetox import load_pairs
    from xdet_tasks.suites.records import LANGUAGES

    train = {lang: load_pairs(lang, "train") for lang in LANGUAGES}
    test = {lang: load_pairs(lang, "test") for lang in LANGUAGES}

    def tokens(texts) -> float:
        return sum(len(t) for t in texts) / args.chars_per_token + 2 * len(texts)  # + BOS/EOS

    xft = sum(tokens([p.neutral for p in train[lang]]) * 10 for lang in PAPER_TRAIN_LANGUAGES)
    pft = sum(tokens([p.neutral for p in train[lang]]) * pct / 100 * 15 for lang in LANGUAGES for pct in (10, 20, 30))
    mft = sum(tokens([p.neutral for p in train[lang]]) * 15 for lang in LANGUAGES)
    train_tokens = xft + pft + mft
    train_flops = 6 * PARAMS * train_tokens  # forward + backward (LoRA skips weight grads; checkpointing re-adds a forward)
    train_s = train_flops / (H100_BF16_FLOPS * args.mfu)

    size = paper_matrix_size()
    configs = size["configurations"] // 4  # one model
    eval_langs = PAPER_EVAL_LANGUAGES
    prompts = sum(len(train[lang]) + 2 * len(test[lang]) for lang in eval_langs)  # toxic-train, toxic-test, neutral-test
    prompt_tokens = sum(tokens([p.toxic for p in train[lang]] + [p.toxic for p in test[lang]] + [p.neutral for p in test[lang]])
                        for lang in eval_langs) + PROMPT_TOKENS_OVERHEAD * prompts
    gen_tokens = prompts * NEW_TOKENS
    weights_bytes = 2 * PARAMS  # bf16 at evaluation
    decode_s = (prompts / args.decode_batch) * NEW_TOKENS * weights_bytes / H100_BW  # bandwidth-bound steps
    prefill_s = 2 * PARAMS * prompt_tokens / (H100_BF16_FLOPS * args.mfu)
    ll_tokens = prompt_tokens + sum(tokens([p.neutral for p in test[lang]] + [p.toxic for p in test[lang]] +
                                           [p.neutral for p in train[lang]] + [p.toxic for p in train[lang]])
                                    for lang in eval_langs)  # perplexity sets + both sides of every preference pair
    ll_s = 2 * PARAMS * ll_tokens / (H100_BF16_FLOPS * args.mfu)
    eval_s = configs * (decode_s + prefill_s + ll_s + args.load_minutes * 60)
    total_h = (train_s + eval_s) / 3600
    paper_h = 2 * 30 * 24

    print(f"one 8B model, {configs} configurations ({size['trainings'] // 4} trainings), {len(eval_langs)} evaluation languages")
    print(f"training tokens: X-FT 7 x 300 sent. x 10 ep = {xft / 1e6:.2f} M; P-FT (10+20+30 %) x 9 langs x 15 ep = "
          f"{pft / 1e6:.2f} M; M-FT 2,700 sent. x 15 ep = {mft / 1e6:.2f} M; total {train_tokens / 1e6:.2f} M tokens")
    print(f"  6 x {PARAMS:.0e} params x {train_tokens:.3e} tokens = {train_flops:.2e} FLOP / ({H100_BF16_FLOPS:.2e} x "
          f"{args.mfu}) = {train_s / 3600:.2f} h")
    print(f"evaluation per configuration: {prompts} prompts x {NEW_TOKENS} new tokens = {gen_tokens / 1e3:.0f} k generated tokens")
    print(f"  decode: {prompts}/{args.decode_batch} batches x {NEW_TOKENS} steps x {weights_bytes / 1e9:.0f} GB / "
          f"{H100_BW / 1e12:.2f} TB/s = {decode_s:.0f} s; prefill {prompt_tokens / 1e3:.0f} k tokens = {prefill_s:.0f} s; "
          f"log-likelihoods {ll_tokens / 1e3:.0f} k tokens = {ll_s:.0f} s; load {args.load_minutes:.0f} min")
    print(f"  x {configs} configurations = {eval_s / 3600:.2f} h")
    print(f"total: {total_h:.2f} H100-hours for one model (x 4 models = {4 * total_h:.1f})")
    print(f"paper: 2 A100 x 30 days = {paper_h} A100-hours for four models ({paper_h / 4:.0f} per model); "
          f"ratio {paper_h / 4 / total_h:.0f}x per model (an A100 is ~2-3x slower than an H100 at bf16)")
    print("not included: the Perspective API's quota (wall time, not GPU time; see P2), DPO, repeats K > 1")


if __name__ == "__main__":
    main()
