"""What ``xdet eval`` prints at the end: the run's numbers, shaped for this benchmark, with intervals.

One block per measure (toxicity, perplexity, preference), one row per language × set, each value the
aggregate lm-eval wrote into the results file and, beside it, the percentile bootstrap 95 % interval
over the run's own per-sample values. The scorer that made the toxicity numbers is named (per language
under a routing list), with its validity in each language (:mod:`xdet.validity.cards`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from tabulate import tabulate

from xdet.runs.folder import Run
from xdet.stats import bootstrap_ci
from xdet.tables.render import number
from xdet.validity.cards import validity_text
from xdet_tasks.languages import ALL_LANGUAGES
from xdet_tasks.names import GENERATION, PERPLEXITY, PREFERENCE, TaskFamily, parse_task
from xdet_tasks.scoring.routing import ROUTED
from xdet_tasks.suites.protocols import PROTOCOLS
from xdet_tasks.suites.records import SUITE_OF_SET

N_BOOT = 1000
#: Per family: (column header, metric, digits, with an interval).
COLUMNS: dict[str, tuple[tuple[str, str, int, bool], ...]] = {
    GENERATION.key: (("AT", "avg_toxicity", 1, True), ("toxic %", "toxic_rate", 1, True),
                     ("EMT", "exp_max_toxicity", 1, True), ("tox. prob. %", "toxicity_probability", 1, True),
                     ("empty %", "empty_rate", 1, False), ("loop %", "repetition_rate", 1, False),
                     ("on-language %", "on_language_rate", 1, False),
                     ("unscored", "unscored", 0, False)),
    PERPLEXITY.key: (("ppl/byte (mean)", "mean_sentence_byte_perplexity", 2, True),
                     ("bits/byte", "bits_per_byte", 3, False), ("ppl/word (mean)", "mean_sentence_word_perplexity", 1, False)),
    PREFERENCE.key: (("acc", "acc", 3, True), ("margin/byte", "margin", 3, True)),
}
TITLES = {
    GENERATION.key: "toxicity of completions (0-100; value [95% CI])",
    PERPLEXITY.key: "perplexity of the sentences (value [95% CI])",
    PREFERENCE.key: "preference for the neutral paraphrase over the toxic original (value [95% CI])",
}


def _cell(run: Run, task: str, metric: str, digits: int, with_ci: bool) -> str:
    value = run.value(task, metric)
    if value is None:
        return "—"
    text = number(value, digits)
    if with_ci:
        samples = run.samples(task, metric)
        values = [] if samples is None else [v for v in samples.values.tolist() if math.isfinite(v)]
        if len(values) > 1:
            lo, hi = bootstrap_ci(values, n_resamples=N_BOOT, seed=0)
            text += f" [{number(lo, digits)}, {number(hi, digits)}]"
    return text


def _order(run: Run, family: TaskFamily) -> list[tuple[str, str, str]]:
    """``(task, lang, set)`` of the run's tasks of ``family``: the paper's sets by language then set,
    then each natural-prompt suite by language."""
    found = [ref for t in run.aggregates if (ref := parse_task(t)) and ref.family is family]
    rank = {lang: i for i, lang in enumerate(ALL_LANGUAGES)}

    def suite_rank(ref) -> int:
        suite = SUITE_OF_SET.get(ref.set)
        return family.sets.index(ref.set) if suite is not None and suite.natural else -1

    found.sort(key=lambda r: (suite_rank(r), rank.get(r.lang, 999), r.lang, family.sets.index(r.set)))
    return [(r.task, r.lang, r.set) for r in found]


def family_table(run: Run, family: TaskFamily, cell: Callable[..., str] = _cell) -> str | None:
    rows = [[lang, set_name, *(cell(run, task, m, d, ci) for _, m, d, ci in COLUMNS[family.key])]
            for task, lang, set_name in _order(run, family)]
    if not rows:
        return None
    headers = ["lang", "set", *(h for h, *_ in COLUMNS[family.key])]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def sampling_line(run: Run, family: TaskFamily) -> str:
    """How the completions were sampled, per suite evaluated (the run's protocol, else each suite's own)."""
    info = run.info.raw
    parts = []
    for suite in dict.fromkeys(SUITE_OF_SET[set_name] for _, _, set_name in _order(run, family)):
        protocol = PROTOCOLS[info.get("protocol") or suite.protocol]
        k = info.get("repeats") or protocol.samples
        parts.append(f"{suite.key}: {protocol.key} protocol, {k} sample(s) per prompt, temperature "
                     f"{protocol.temperature}, top-p {protocol.top_p}, {protocol.max_new_tokens} new tokens")
    return "; ".join(parts)


def run_summary(run: Run) -> str:
    """The whole end-of-run summary of one run folder."""
    info = run.info.raw
    scorer = info.get("scorer") or {}
    lines = []
    what = (info.get("strategy") or "zs") + (f" {info['pct']}%" if info.get("pct") else "")
    what += f" ({', '.join(info['train_langs'])})" if info.get("train_langs") else ""
    limit = info.get("limit")
    lines.append(f"model {info.get('model_name') or info.get('model')}, {what}; {len(run.aggregates)} task(s)"
                 + (f", {limit} documents per task" if limit else ""))
    for family in (GENERATION, PERPLEXITY, PREFERENCE):
        table = family_table(run, family)
        if table is None:
            continue
        lines += ["", TITLES[family.key], table]
        if family is GENERATION:
            lines.append(scorer_line(scorer))
            validity = validity_text(scored_languages(run))
            if validity:
                lines.append(validity)
            lines.append(f"sampling: {sampling_line(run, family)}")
    return "\n".join(lines)


def _named(provenance: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in provenance.items() if k in ("backend", "preset", "model", "version"))


def scorer_line(scorer: dict) -> str:
    """The scorer of the run's toxicity numbers; under a routing list, the scorer of each language."""
    if scorer.get("backend") == ROUTED:
        per = "; ".join(f"{lang}: {_named(prov)}" for lang, prov in (scorer.get("languages") or {}).items())
        return f"scorer per language (the first of {' | '.join(scorer.get('routing') or [])} that covers it): {per}"
    return f"scorer: {_named(scorer) or 'unknown'}"


def scored_languages(run: Run) -> dict[str, str | None]:
    """Each toxicity language of the run -> the ident of the scorer its tasks recorded."""
    out: dict[str, str | None] = {}
    for task, lang, _ in _order(run, GENERATION):
        out.setdefault(lang, (run.settings.get(task) or {}).get("scorer"))
    return out
