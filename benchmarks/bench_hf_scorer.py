"""P7: throughput of the ``hf`` scorer (texts/s) against scoring one text at a time (goal >= 5x).

Builds a small XLM-RoBERTa sequence classifier here, so it runs offline: random weights from a
config (default hidden 256, 4 layers, 4 heads, feed-forward 4x hidden, max length 128) and a
byte-level BPE tokenizer trained on the shared train split. Scores ``--texts`` real sentences of the
shared data (test then train sentences, toxic and neutral, round-robin over the nine languages, so
lengths and scripts are mixed) (a) through ``HFScorer.score`` in one call and (b) as a naive loop
over the same model: tokenize one text, forward, softmax, next text; also (c) the scorer's previous
batching (sorted by characters, every batch tokenized twice). All must give the same scores (the max
absolute difference from the loop is printed). Not a test::

    python benchmarks/bench_hf_scorer.py [--texts 2000] [--threads 0] [--hidden 256] [--layers 4]
                                         [--device cpu] [--dtype auto]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MAX_LENGTH = 128


def sentences(n: int) -> list[str]:
    """``n`` sentences, round-robin over languages: test sentences first, then train."""
    from xdet_tasks.suites.paradetox import load_pairs
    from xdet_tasks.suites.records import LANGUAGES

    per_lang = {
        lang: [t for split in ("test", "train") for p in load_pairs(lang, split) for t in (p.toxic, p.neutral)]
        for lang in LANGUAGES
    }
    out: list[str] = []
    for i in range(max(len(v) for v in per_lang.values())):
        out.extend(v[i] for v in per_lang.values() if i < len(v))
    return out[:n]


def build_model(out_dir: Path, hidden: int = 256, layers: int = 4) -> Path:
    """A random-weight XLM-R classifier with a tokenizer trained on the train split, saved to ``out_dir``."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

    from xdet_tasks.suites.paradetox import load_pairs
    from xdet_tasks.suites.records import LANGUAGES
    from xdet_train.tiny import build_tokenizer

    texts = [t for lang in LANGUAGES for p in load_pairs(lang, "train") for t in (p.toxic, p.neutral)]
    tok = build_tokenizer(texts, vocab_size=8000)
    tok.model_max_length = MAX_LENGTH
    config = XLMRobertaConfig(
        vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
        intermediate_size=4 * hidden,
        max_position_embeddings=MAX_LENGTH + tok.pad_token_id + 2, type_vocab_size=1,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        num_labels=2, id2label={0: "neutral", 1: "toxic"}, label2id={"neutral": 0, "toxic": 1},
    )
    torch.manual_seed(0)
    XLMRobertaForSequenceClassification(config).save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


def loop_scores(scorer, texts: list[str]) -> list[float]:
    """The naive baseline: one text per tokenizer call and forward pass, same model and device."""
    import torch

    out = []
    with torch.inference_mode():
        for text in texts:
            enc = scorer.tokenizer(text, truncation=True, max_length=scorer.max_length, return_tensors="pt")
            logits = scorer.model(input_ids=enc["input_ids"].to(scorer.device),
                                  attention_mask=enc["attention_mask"].to(scorer.device)).logits.float()
            out.append(torch.softmax(logits, -1)[0, scorer.label_index].item())
    return out


def previous_scores(scorer, texts: list[str]) -> list[float]:
    """``HFScorer.score`` before the scorer-eval branch: batches sorted by characters, tokenized twice."""
    import torch

    out: list[float] = [0.0] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with torch.inference_mode():
        for start in range(0, len(order), scorer.batch):
            idx = order[start : start + scorer.batch]
            batch = [texts[i] for i in idx]
            enc = scorer.tokenizer(batch, padding=True, truncation=True, max_length=scorer.max_length,
                                   return_tensors="pt")
            scorer.tokenizer(batch, truncation=False, verbose=False)  # the second pass that counted truncation
            logits = scorer.model(input_ids=enc["input_ids"].to(scorer.device),
                                  attention_mask=enc["attention_mask"].to(scorer.device)).logits.float()
            for i, p in zip(idx, torch.softmax(logits, -1)[:, scorer.label_index].tolist(), strict=True):
                out[i] = p
    return out


def timed(fn, repeat: int) -> tuple[float, object]:
    """Median wall time of ``repeat`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto", help="hf dtype option for the batched scorer")
    parser.add_argument("--batches", default="32,64", help="batch sizes to time (comma-separated)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from xdet_tasks.scoring.hf import HFScorer, pick_dtype

    texts = sentences(args.texts)
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_model(Path(tmp) / "xlmr-bench", args.hidden, args.layers)
        fp32 = HFScorer(f"{folder}#label=toxic,device={args.device},dtype=float32")
        n_params = sum(p.numel() for p in fp32.model.parameters())
        fp32.score(texts[:64], "en"), loop_scores(fp32, texts[:16])  # warm-up
        loop_s, loop = timed(lambda: loop_scores(fp32, texts), args.repeat)
        rows = [["one text at a time (tokenize, forward, softmax)", 1, "float32", f"{loop_s:.2f}",
                 f"{len(texts) / loop_s:,.0f}", "1.0×", "—"]]
        for batch in (int(b) for b in args.batches.split(",")):
            fp32.batch = batch
            secs, scores = timed(lambda: previous_scores(fp32, texts), args.repeat)
            diff = max(abs(a - b) for a, b in zip(scores, loop, strict=True))
            rows.append(["previous HFScorer.score (sorted by characters, tokenized twice)", batch, "float32",
                         f"{secs:.2f}", f"{len(texts) / secs:,.0f}", f"{loop_s / secs:.1f}×", f"{diff:.1e}"])
            for dtype in dict.fromkeys(["float32", pick_dtype(args.dtype, args.device)]):
                scorer = fp32 if dtype == "float32" else HFScorer(f"{folder}#label=toxic,device={args.device},"
                                                                   f"dtype={dtype}")
                scorer.batch = batch
                scorer.score(texts[:64], "en")  # warm-up
                secs, scores = timed(lambda s=scorer: s.score(texts, "en"), args.repeat)
                diff = max(abs(a - b) for a, b in zip(scores, loop, strict=True))
                rows.append([f"HFScorer.score (sorted, padded per batch, {scorer.dtype})", batch, scorer.dtype,
                             f"{secs:.2f}", f"{len(texts) / secs:,.0f}", f"{loop_s / secs:.1f}×", f"{diff:.1e}"])
        tokens = [len(ids) for ids in fp32.tokenizer(texts)["input_ids"]]
    print(f"XLM-R classifier, {n_params / 1e6:.1f} M parameters, hidden {args.hidden}, {args.layers} layers, "
          f"max length {MAX_LENGTH}; "
          f"{len(texts)} texts, {statistics.mean(tokens):.0f} tokens on average (min {min(tokens)}, "
          f"max {max(tokens)}; {sum(n > MAX_LENGTH for n in tokens)} truncated)")
    print(f"device {args.device}; torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
          f"{os.cpu_count()} CPU core(s), load average {os.getloadavg()[0]:.1f}; median of {args.repeat} runs")
    print(tabulate(rows, headers=["path", "batch", "dtype", "seconds", "texts/s", "speed-up", "max |Δ score|"],
                   tablefmt="github"))


if __name__ == "__main__":
    main()
