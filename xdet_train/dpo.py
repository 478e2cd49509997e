"""The ``dpo`` strategy's preference data (beyond the paper, which names DPO as future work).

Li et al. (2024, "Preference Tuning For Toxicity Mitigation Generalizes Across Languages") show
that DPO on one language's preference pairs lowers toxicity in others. Here the pairs come from
the same parallel ParaDetox rows the SFT strategies use: chosen = neutral, rejected = toxic.

Prompt styles (``TrainConfig.dpo_prompt``):

* ``complete-prefix`` (default): mirrors the evaluation prompt. The toxic sentence is cut in half
  (by words; by characters for text without spaces, e.g. zh); the prompt is
  ``Complete the sentence: <first half of the toxic sentence>``, rejected = the toxic sentence's
  own second half, chosen = the neutral paraphrase cut at the same relative position, second half.
  The policy learns to continue a toxic prefix the way the paraphrase does, not the way the
  toxic original does.
* ``rewrite``: the released ``10_DPO_*.py`` scripts' construction, prompt
  ``Rewrite the following text in a neutral way: <toxic sentence>``, chosen = the whole neutral
  sentence, rejected = the whole toxic sentence.

Defaults and their source (see ``train.TrainConfig.resolved``): LoRA r 16 / alpha 32 / dropout 0.05,
learning rate 1e-4, cosine schedule, per-device batch 8 and max grad norm 0.3 come from the
released ``10_DPO_aya_8.py``; beta 0.1 is TRL's default (the released script keeps it). That
script's ``gradient_accumulation_steps=16`` with ``warmup_steps=100`` and one epoch leaves 2-21
optimizer steps that never leave warm-up on 300-2,700 pairs, so we use gradient accumulation 2,
warm-up ratio 0.1 and 3 epochs (our choice, recorded in every manifest).
"""

from __future__ import annotations

from xdet_tasks.data import Pair

DPO_PROMPTS: tuple[str, ...] = ("complete-prefix", "rewrite")
COMPLETE_TEMPLATE = "Complete the sentence: {text}"
REWRITE_TEMPLATE = "Rewrite the following text in a neutral way: {text}"


def _units(sentence: str) -> tuple[list[str], str]:
    """Split into words, or into characters where the text has no word spaces (zh)."""
    words = sentence.split()
    if len(words) >= 2:
        return words, " "
    return list(sentence.strip()), ""


def split_at_fraction(sentence: str, fraction: float) -> tuple[str, str]:
    """``(head, tail)`` with ``head`` the first ``fraction`` of the units (at least one each side)."""
    units, sep = _units(sentence)
    if len(units) < 2:
        return sentence.strip(), ""
    cut = min(max(1, round(len(units) * fraction)), len(units) - 1)
    return sep.join(units[:cut]), sep + sep.join(units[cut:])


def preference_example(pair: Pair, style: str = "complete-prefix") -> dict[str, str]:
    """One TRL preference row (``prompt``, ``chosen``, ``rejected``; plain text, no chat template)."""
    if style == "rewrite":
        return {
            "prompt": REWRITE_TEMPLATE.format(text=pair.toxic),
            "chosen": " " + pair.neutral,
            "rejected": " " + pair.toxic,
        }
    if style != "complete-prefix":
        raise ValueError(f"unknown DPO prompt style {style!r}; expected one of {', '.join(DPO_PROMPTS)}")
    head, toxic_tail = split_at_fraction(pair.toxic, 0.5)
    if not toxic_tail:  # one-unit toxic sentence: nothing to continue, compare whole sentences
        return {
            "prompt": COMPLETE_TEMPLATE.format(text="").rstrip(),
            "chosen": " " + pair.neutral,
            "rejected": " " + pair.toxic,
        }
    _, neutral_tail = split_at_fraction(pair.neutral, 0.5)
    if not neutral_tail:
        neutral_tail = " " + pair.neutral
    return {"prompt": COMPLETE_TEMPLATE.format(text=head), "chosen": neutral_tail, "rejected": toxic_tail}


def preference_rows(pairs: list[Pair] | tuple[Pair, ...], style: str = "complete-prefix") -> list[dict[str, str]]:
    return [preference_example(p, style) for p in pairs]
