"""The demo: cross-lingual detoxification end to end on a CPU, offline, in a few minutes.

What it does (every step cached or resumable, so a second run only redoes what is missing):

1. builds a toy multilingual causal LM (Llama architecture, :data:`xdet_train.tiny.SIZES` ``toy``
   narrowed to width 192 / FFN 512, 2.0 M parameters; a byte-level BPE tokenizer of 2,048 tokens
   trained on the nine languages) and pre-trains it for 100 steps on the shuffled toxic *and* neutral
   train sentences of all nine languages, so that its completions carry the toxic vocabulary; cached
   under ``XDET_CACHE_DIR`` (``~/.cache/xdet``) keyed by the recipe and the data;
2. runs a small :mod:`xdet.sweep`: ZS plus X-FT (LoRA on the 300 neutral-train sentences) for
   two source languages (en, es), each evaluated on all nine languages x three splits (``--limit``
   documents per task) with the offline ``local`` scorer;
3. writes the paper's Δ tables and heatmaps and prints the toxic-test toxicity Δ table, plus the
   checks of the causal chain: X-FT on a language lowers that language's neutral-test perplexity and
   raises its preference for the neutral paraphrase over the toxic one.

At toy scale the sampled completions are noisy, so the toxicity Δ is reported with its bootstrap
interval whatever its sign; perplexity and preference are the effects a toy model shows clearly.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from xdet.demo.toy import RECIPE_FILE, toy_model
from xdet.runs import read_results
from xdet.stats import bootstrap_ci
from xdet.tables.render import caption_lines, screen_table
from xdet_tasks.errors import XdetError
from xdet_tasks.io import atomic_symlink, cache_dir, idle_cores
from xdet_tasks.names import PERPLEXITY, PREFERENCE
from xdet_tasks.suites.records import LANGUAGES
from xdet_train.config import TrainConfig

log = logging.getLogger(__name__)

DEFAULT_OUT = "xdet-demo"
#: The toy model's name in the output folder (a link to its cache entry): configuration ids, tables and
#: the README's follow-up commands say ``xdet-toy-lm`` (the cache entry's own name).
TOY_LINK = "xdet-toy-lm"
#: English and Spanish: at toy scale X-FT on de lowers de perplexity clearly but moves the de preference
#: margin within noise (+0.002, 95% CI [-0.004, +0.009] over 32 test pairs), while en and es move it
#: beyond their intervals; the demo shows the chain where a toy model can show it.
DEFAULT_SOURCES: tuple[str, ...] = ("en", "es")
#: Documents per task (per language x split): 9 languages x 3 splits x 20 = 540 sampled prompts per model.
DEFAULT_LIMIT = 20
PREF_SPLIT = "test"

#: X-FT in the demo: LoRA as in the paper, a short high-learning-rate schedule that fits a CPU, on the
#: attention projections the released scripts adapt (q, k, v, o): at toy scale PEFT's Llama default (q,
#: v) moves the preference margin within its noise in 30 steps.
DEMO_XFT = TrainConfig(
    max_steps=30, batch_size=16, grad_accum=1, learning_rate=2e-3, max_length=64, eval_examples=0,
    logging_steps=10, target_modules=("q_proj", "k_proj", "v_proj", "o_proj"),
)


def _paired(run_a, run_b, task: str, metric: str, n_boot: int = 1000, seed: int = 0):
    """Mean of per-document ``b - a`` over the documents both runs scored, with a percentile bootstrap CI."""
    a, b = run_a.samples(task, metric), run_b.samples(task, metric)
    if a is None or b is None:
        return None
    va = dict(zip(a.doc_ids.tolist(), a.values.tolist(), strict=True))
    vb = dict(zip(b.doc_ids.tolist(), b.values.tolist(), strict=True))
    diffs = np.array([vb[d] - va[d] for d in sorted(set(va) & set(vb))], dtype=float)
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size == 0:
        return None
    lo, hi = bootstrap_ci(diffs, n_resamples=n_boot, seed=seed)
    return float(np.mean([va[d] for d in va])), float(diffs.mean()), lo, hi


def chain_rows(out: str | Path, sources: tuple[str, ...]) -> list[list[str]]:
    """For each source language: neutral-test perplexity and preference margin, ZS vs X-FT, with CIs."""
    runs = {r.info.strategy + (":" + r.info.train_langs[0] if r.info.train_langs else ""): r
            for r in read_results(Path(out) / "runs")}
    rows = []
    for lang in sources:
        zs, ft = runs.get("zs"), runs.get(f"x-ft:{lang}")
        if zs is None or ft is None:
            continue
        for label, task, metric in (
            ("neutral-test byte perplexity", PERPLEXITY.task("neutral-test", lang), "mean_sentence_byte_perplexity"),
            ("preference margin (neutral − toxic)", PREFERENCE.task(PREF_SPLIT, lang), "margin"),
        ):
            got = _paired(zs, ft, task, metric)
            if got is None:
                continue
            base, diff, lo, hi = got
            rows.append([f"x-ft:{lang}", label, f"{base:.3f}", f"{base + diff:.3f}", f"{diff:+.3f} [{lo:+.3f}, {hi:+.3f}]"])
    return rows


def analysis_line(tables) -> str:
    """The paper's findings tested on the demo's own tables, in one line."""
    from xdet.analyze import one_line, run_analysis
    from xdet.analyze.sources import matrices_from_tables

    matrices = matrices_from_tables(tables)
    return one_line(run_analysis(matrices)) if matrices else "analysis: no X-FT rows to test"


def run_demo(out: str | Path = DEFAULT_OUT, *, limit: int = DEFAULT_LIMIT, sources: tuple[str, ...] = DEFAULT_SOURCES,
             data_dir: str | None = None, batch_size: str = "64", rebuild: bool = False, progress: bool = True,
             threads: int | None = None) -> int:
    import torch

    from xdet.sweep.configuration import SweepSettings
    from xdet.sweep.run import sweep, write_sweep_tables
    from xdet_tasks.scoring.local import load_or_train

    torch.set_num_threads(threads or idle_cores())
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out = Path(out).resolve()
    start = time.perf_counter()
    say = print
    say(f"xdet demo: output folder {out} ({torch.get_num_threads()} torch thread(s))")
    say("[1/4] local toxicity scorer (TF-IDF + logistic regression on the train split; the offline development "
        "scorer)")
    t0 = time.perf_counter()
    load_or_train(data_dir=data_dir)
    say(f"      ready in {time.perf_counter() - t0:.0f} s (cached for the next run under {cache_dir()})")
    say("[2/4] toy multilingual LM: build + pre-train on toxic and neutral train sentences of all nine languages")
    t0 = time.perf_counter()
    cached = toy_model(data_dir, rebuild=rebuild)
    meta = json.loads((cached / RECIPE_FILE).read_text(encoding="utf-8"))
    curve = meta.get("loss_curve") or []
    loss = f"; pre-training loss {curve[0]['loss']:.2f} -> {curve[-1]['loss']:.2f}" if curve else ""
    # a stable name in the output folder (the cache entry is named by a hash), for the commands that follow
    model = atomic_symlink(out / TOY_LINK, cached)
    say(f"      {model} -> {cached} (ready in {time.perf_counter() - t0:.0f} s{loss})")
    say(f"[3/4] ZS + X-FT ({', '.join(sources)}): LoRA on 300 neutral-train sentences each, then evaluation on "
        f"9 languages x 3 splits, {limit} documents per task, local scorer")
    settings = SweepSettings(
        out=str(out), eval_langs=LANGUAGES, limit=limit, batch_size=batch_size, scorer="local",
        data_dir=data_dir, train=DEMO_XFT, device="cpu",
    )
    outcomes = sweep([str(model)], ["zs", "x-ft"], settings, train_langs=tuple(sources), progress=progress,
                     tables=False)
    if any(o.status == "failed" for o in outcomes):
        raise XdetError("demo: a configuration failed (see the summary above); rerun `xdet demo` to retry it")
    say("[4/4] tables (Δ = ZS − X-FT, bootstrap 95% intervals) and heatmaps")
    # per-byte: a toy model's per-*word* perplexity explodes on unspaced text (zh: one "word" a sentence)
    tables = write_sweep_tables(out, n_boot=1000, metrics={"perplexity": "mean_sentence_byte_perplexity"})
    say("\nneutral-test byte perplexity Δ (positive: X-FT lowered perplexity)")
    say(screen_table(tables, "perplexity", "neutral-test", digits=2))
    say("\ncausal chain on each source language (paired over documents; here change = X-FT − ZS, so a lower "
        "perplexity is negative; 95% CI)")
    from tabulate import tabulate

    say(tabulate(chain_rows(out, tuple(sources)), headers=["model", "measure", "ZS", "X-FT", "change [95% CI]"],
                 tablefmt="github", disable_numparse=True))
    say("\ntoxic-test average toxicity (0-100, the offline development scorer `local`: numbers that exercise the "
        "code, not a research result); Δ = ZS − X-FT, positive = less toxic")
    say(screen_table(tables, "toxicity", "toxic-test", digits=1))
    head = next((t for t in tables if t.measure == "toxicity" and t.split == "toxic-test"), None)
    if head is not None:  # which scorer made the numbers, and how far it agrees with native speakers
        say("\n".join(line for line in caption_lines(head) if line not in head.notes))
    say("At toy scale sampled completions are noisy: read each toxicity Δ with its interval, whatever its sign.")
    # the guards' caption lines (xdet.tables.guards): their counts first, then what fired or was thin
    guards = [line.removeprefix("guards: ") for line in (head.notes if head else []) if not line.startswith("not checked")]
    say("is each reduction real? " + ("\n  ".join(guards) if guards else "not checked (no toxicity Δ to check)"))
    say(f"\n{analysis_line(tables)}  (details: xdet analyze --sweep {out} --out <folder>)")
    say(f"\ndone in {time.perf_counter() - start:.0f} s. Tables (CSV/Markdown/LaTeX/PNG): {out / 'tables'}; "
        f"run folders: {out / 'runs'}; adapters: {out / 'adapters'}; toy model: {model}")
    return 0
