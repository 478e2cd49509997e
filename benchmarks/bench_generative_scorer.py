"""Issue 26.5: the single-pass ``guard:`` scorer against generating the verdict with ``model.generate`` and parsing it.

Both paths see the same model, the same conversations (a completion as the assistant turn after its prompt,
rendered by the model's chat template) and the same batches (for each of ``--batches``: that many texts,
sorted by length, padded on the left; batch 1 is how the card's README and ``eval/eval_gen.py`` run it):

* **single pass**: ``GuardScorer.score``, one forward pass per batch reading the verdict tokens after
  ``Safety:`` (the project's scorer);
* **generate + parse**: ``model.generate`` greedy (``do_sample=False``) for as many new tokens as the card's
  example answer ``Safety: Unsafe\\nCategories: Violent`` and its end-of-turn token take in this tokenizer
  (a real guard stops there; the random tiny model never stops, so every row generates exactly that many),
  then the card's regex ``Safety: (Safe|Unsafe|Controversial)`` over the decoded text, as Qwen3Guard's README
  and its ``eval/eval_gen.py`` do.

Default (CPU, offline): a tiny random Qwen3-type chat model with the Qwen3Guard template
(:mod:`xdet_train.tiny_chat`, ``--size tiny`` or ``toy``), texts of RTP-LX length (a prompt sentence of the
shared test split and a completion of at most 20 words, RTP-LX's protocol generating 20 tokens).

GPU (``--preset qwen3guard-0.6b --device cuda --dtype bf16 --batches 32``): the real 0.6B guard (its files
from ``XDET_SCORER_PRESET_DIR_QWEN3GUARD_0_6B`` or the hub cache), texts per second of the single pass, and
of generate + parse unless ``--no-generate``. Not a test::

    python benchmarks/bench_generative_scorer.py [--texts 256] [--batches 1,32] [--repeat 3] [--threads 1]
                                                 [--size tiny] [--preset NAME --device cuda --dtype bf16]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

VERDICT = re.compile(r"Safety: (Safe|Unsafe|Controversial)")
CARD_ANSWER = "Safety: Unsafe\nCategories: Violent"


def conversations(n: int) -> tuple[list[str], list[str]]:
    """``n`` (completion, prompt) pairs of RTP-LX length, round-robin over the paper's nine languages."""
    from xdet_tasks.suites.paradetox import load_pairs
    from xdet_tasks.suites.prompts import build_prompt
    from xdet_tasks.suites.records import LANGUAGES

    per_lang = {lang: [p for split in ("test", "train") for p in load_pairs(lang, split)] for lang in LANGUAGES}
    texts, prompts = [], []
    for i in range(max(len(v) for v in per_lang.values())):
        for pairs in per_lang.values():
            if i < len(pairs) and len(texts) < n:
                prompts.append(build_prompt(pairs[i].toxic))
                words = pairs[i].neutral.split()
                texts.append(" ".join(words[:20]) if len(words) > 1 else pairs[i].neutral[:40])
    return texts, prompts


def build_scorer(args: argparse.Namespace, workdir: Path):
    from xdet_tasks.scoring.registry import build_scorer as build

    options = f"device={args.device},dtype={args.dtype}"
    if args.preset:
        return build(f"{args.preset}:#{options}")
    from xdet_tasks.suites.paradetox import load_pairs
    from xdet_tasks.suites.records import LANGUAGES
    from xdet_train.tiny_chat import save_tiny_chat_model

    corpus = [t for lang in LANGUAGES for p in load_pairs(lang, "train") for t in (p.toxic, p.neutral)]
    folder = save_tiny_chat_model("qwen3", workdir / "guard", corpus, "qwen3guard", size=args.size, vocab_size=8000)
    return build(f"guard:{folder}#format=qwen3guard,{options}")


def generate_and_parse(scorer, texts: list[str], prompts: list[str], new_tokens: int) -> list[str | None]:
    """The verdicts ``model.generate`` writes, parsed with the card's regex (``None``: no verdict line)."""
    import torch

    tok = scorer.tokenizer
    rendered = [scorer.render(scorer.messages(t, p))[: -len(scorer.record.answer_prefix)] for t, p in zip(texts, prompts, strict=True)]
    rows = [list(ids) for ids in tok(rendered, add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(rows)), key=lambda k: len(rows[k]))
    out: list[str | None] = [None] * len(rows)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    with torch.inference_mode():
        for start in range(0, len(order), scorer.batch):
            part = order[start : start + scorer.batch]
            ids, mask, _ = scorer._batch([rows[k] for k in part])
            gen = scorer.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens,
                                        min_new_tokens=new_tokens, do_sample=False, pad_token_id=pad)
            for k, row in zip(part, gen[:, ids.shape[1]:].tolist(), strict=True):
                found = VERDICT.search(tok.decode(row, skip_special_tokens=True))
                out[k] = found.group(1) if found else None
    return out


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--batches", type=lambda v: [int(x) for x in v.split(",")], default=[1, 32],
                        help="batch sizes, each timed for both paths (default: 1,32)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--size", default="tiny", choices=("tiny", "toy"), help="tiny model width (no --preset)")
    parser.add_argument("--preset", help="a generative preset instead of the tiny model, e.g. qwen3guard-0.6b")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--no-generate", action="store_true", help="time the single pass only")
    parser.add_argument("--whole", action="store_true",
                        help="also time the single pass reading every prompt whole (no shared-start cache)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    texts, prompts = conversations(args.texts)
    with tempfile.TemporaryDirectory() as tmp:
        scorer = build_scorer(args, Path(tmp))
        new_tokens = len(scorer.tokenizer(CARD_ANSWER + "<|im_end|>", add_special_tokens=False)["input_ids"])
        prompt_tokens = [len(r) for r in scorer._rows([scorer.render(scorer.messages(t, p))
                                                       for t, p in zip(texts, prompts, strict=True)])]
        rows = []
        for batch in args.batches:
            scorer.batch = batch
            scorer.score(texts[:batch], "en", contexts=prompts[:batch])  # warm-up
            single = timed(lambda: scorer.score(texts, "en", contexts=prompts), args.repeat)
            rows.append(["single pass (GuardScorer.score)", batch, f"{len(texts) / single:,.1f}", ""])
            if args.whole:  # the same pass without the cache of the prompts' shared start
                shared, scorer.prefixes = scorer.prefixes, []
                whole = timed(lambda: scorer.score(texts, "en", contexts=prompts), args.repeat)
                scorer.prefixes = shared
                rows.append(["single pass, every prompt read whole", batch, f"{len(texts) / whole:,.1f}",
                             f"{whole / single:.1f}×"])
            if not args.no_generate:
                generate_and_parse(scorer, texts[:batch], prompts[:batch], new_tokens)  # warm-up
                gen = timed(lambda: generate_and_parse(scorer, texts, prompts, new_tokens), args.repeat)
                rows.append([f"generate {new_tokens} tokens + parse", batch, f"{len(texts) / gen:,.1f}",
                             f"**{gen / single:.1f}×**"])
    device = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"CPU, {torch.get_num_threads()} thread(s)"
    print(f"model: {args.preset or f'tiny random Qwen3 chat model ({args.size})'}; {device}; dtype {scorer.dtype}; "
          f"{len(texts)} texts, prompt tokens median {statistics.median(prompt_tokens):.0f} "
          f"(min {min(prompt_tokens)}, max {max(prompt_tokens)}); median of {args.repeat} runs")
    print(tabulate(rows, headers=["path", "batch", "texts/s", "single pass faster by"], tablefmt="github"))


if __name__ == "__main__":
    main()
