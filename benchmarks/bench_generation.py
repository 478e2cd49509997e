"""P1: generation throughput, xdet's lm-eval path vs the paper code's one-prompt-at-a-time loop.

Same model (the demo's toy LM, built and cached on first use), same prompts (``Complete the
sentence: <toxic-test sentence>``, round-robin over the nine languages), same sampling (temperature
0.7, top-p 0.9, 50 new tokens, stop at EOS):

* ``lm-eval``: lm-eval's HF model ``generate_until`` on all prompts (length-sorted batches of
  ``--batch-size``), which is what ``xdet eval`` runs;
* ``paper loop``: for each prompt, tokenize, ``model.generate``, decode (the released scripts' pattern).

Not a test; prints one table::

    python benchmarks/bench_generation.py [--prompts 64] [--batch-size 64] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import time

from tabulate import tabulate

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
GEN = {"do_sample": True, "temperature": 0.7, "top_p": 0.9, "max_gen_toks": 50, "until": []}


def _prompts(n: int) -> list[str]:
    from xdet_tasks.suites.paradetox import load_pairs
    from xdet_tasks.suites.prompts import build_prompt
    from xdet_tasks.suites.records import LANGUAGES

    per_lang = {lang: load_pairs(lang, "test") for lang in LANGUAGES}
    return [build_prompt(per_lang[LANGUAGES[i % 9]][i // 9].toxic) for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--model", help="model directory (default: the demo's toy LM)")
    parser.add_argument("--full-length", action="store_true",
                        help="both paths generate all 50 tokens (min_new_tokens=50): no early stop at EOS")
    args = parser.parse_args()

    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from xdet.demo.toy import toy_model

    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = args.model or str(toy_model())
    prompts = _prompts(args.prompts)
    rows = []

    lm = HFLM(pretrained=model_dir, batch_size=args.batch_size, device="cpu")
    extra = {"min_new_tokens": 50} if args.full_length else {}
    requests = [Instance("generate_until", {}, (p, {**GEN, **extra}), i) for i, p in enumerate(prompts)]
    torch.manual_seed(0)
    start = time.perf_counter()
    outs = lm.generate_until(requests, disable_tqdm=True)
    ours = time.perf_counter() - start
    assert len(outs) == len(prompts)
    rows.append(["lm-eval generate_until (xdet eval)", len(prompts), f"{ours:.1f}", f"{len(prompts) / ours:.2f}"])

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    torch.manual_seed(0)
    start = time.perf_counter()
    with torch.no_grad():
        for p in prompts:  # the released scripts: one prompt, one generate call
            enc = tok(p, return_tensors="pt")
            out = model.generate(**enc, max_new_tokens=50, do_sample=True, temperature=0.7, top_p=0.9,
                                 pad_token_id=tok.pad_token_id, **extra)
            tok.decode(out[0][enc["input_ids"].shape[1]:], skip_special_tokens=True)
    paper = time.perf_counter() - start
    rows.append(["paper loop (tokenize + generate per prompt)", len(prompts), f"{paper:.1f}",
                 f"{len(prompts) / paper:.2f}"])
    print(f"model {model_dir}; {'all 50 tokens' if args.full_length else 'stop at EOS'}; "
          f"{torch.get_num_threads()} torch thread(s); {os.cpu_count()} core(s), "
          f"load average {os.getloadavg()[0]:.1f}")
    print(tabulate(rows, headers=["path", "prompts", "seconds", "prompts/s"], tablefmt="github"))
    print(f"ratio: {paper / ours:.1f}x (goal >= 10x)")


if __name__ == "__main__":
    main()
