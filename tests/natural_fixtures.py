"""Small RTP-LX and PolygloToxicityPrompts copies in their exact published layouts, written by the tests.

Neither dataset can be downloaded here, so the tests write files shaped exactly as published:

* RTP-LX release (github.com/microsoft/RTP-LX, ``RTP-LX/RTP-LX.zip``; the loose files of commits
  ``d64f109``/``aae2534`` show the same layout): ``RTP_LX_<LOCALE>.json`` per locale, JSON lines, keys of
  ``rtp-lx_metadata.json`` (``Prompt, Completion, Index, Locale, Dialect, OriginalMetadata,
  PromptAnnotations, PromptAnnotationsRaw, CompletionAnnotations, CompletionAnnotationsRaw``); the
  files of those commits write ``Index`` as a string (``"0"``) and use the older ``Annotations`` /
  ``AnnotationsRaw`` with aggregated means (``2.6666666666666665``) and the three raters' integers;
  ``Locale`` is ``"ZH"`` in both Chinese files. Toxicity is 1-5, the other categories 1-3.
* Li et al.'s derived files (BatsResearch/cross-lingual-detox): only ``Prompt``.
* RTP-LX hub copy (huggingface.co/datasets/ToxicityPrompts/RTP-LX): one config ``default``, split
  ``test``, one parquet file per locale ``data/<LOCALE>-00000-of-00001.parquet`` (``data/NL-00000-of-00001.parquet``).
* PTP hub copy (huggingface.co/datasets/ToxicityPrompts/PolygloToxicityPrompts): README ``configs``
  ``ptp-<lang>`` (splits ``full``: ``ptp-<lang>/full-*``, ``small``: ``ptp-<lang>/small-*``) and
  ``wildchat-<lang>`` (split ``wildchat``: ``wildchat-<lang>/wildchat-*``), columns as its card lists.

The prompts are ParaDetox test sentences where the language has them (toxic ones rated toxic by all
three "raters", their neutral paraphrases rated 1: labels by construction, not RTP-LX's) and
numbered placeholder sentences elsewhere. The content is made up; the layout is the published one.
"""

from __future__ import annotations

import json
from pathlib import Path

from xdet_tasks.suites.records import LANGUAGES, suite_languages
from xdet_tasks.suites.rtplx import LOCALES

CATEGORIES = ("Toxicity", "IdentityAttack", "Bias", "Microaggression", "Violence", "SelfHarm", "Insult",
              "SexualContent")
#: the raters' Toxicity values cycled through by placeholder prompts: every case of the label rule
RATING_CYCLE = ([1, 1, 1], [1, 1, 2], [2, 2, 1], [3, 4, 3], [5, 5, 4], [1, 2, 4], [1, 3, 5], [2, 2, 2])
#: a character str.splitlines() splits on but a JSON-lines reader must keep (LINE SEPARATOR)
LINE_SEPARATOR = "\u2028"


def _annotations(toxicity: list[int], old: bool) -> dict:
    others = {c: [1, 1, 1] for c in CATEGORIES[1:]}
    raw = {"Toxicity": toxicity, **others}
    if old:  # releases before May 2024: means
        agg = {k: sum(v) / len(v) for k, v in raw.items()}
    else:  # the current release: the authors' vote
        agg = {k: float(max(set(v), key=v.count)) if len(set(v)) < len(v) else float(round(sum(v) / 3))
               for k, v in raw.items()}
    keys = ("Annotations", "AnnotationsRaw") if old else ("PromptAnnotations", "PromptAnnotationsRaw")
    return {keys[0]: agg, keys[1]: raw}


def sentences(lang: str, n: int, data_dir: Path | None) -> list[tuple[str, list[int]]]:
    """``n`` (prompt, raters' Toxicity) pairs for ``lang``."""
    if data_dir is not None and lang in LANGUAGES:
        from xdet_tasks.suites.paradetox import load_pairs

        pairs = load_pairs(lang, "test", data_dir=data_dir)[: (n + 1) // 2]
        out = [(p.toxic.strip(), [4, 5, 4]) for p in pairs] + [(p.neutral.strip(), [1, 1, 1]) for p in pairs]
        return out[:n]
    return [(f"fixture prompt {i} in {lang}, which continues", list(RATING_CYCLE[i % len(RATING_CYCLE)]))
            for i in range(n)]


def rtplx_record(i: int, text: str, toxicity: list[int], locale: str, *, old: bool) -> dict:
    return {
        "Prompt": text, "Completion": "", "Index": str(i) if old else i,
        "Locale": "ZH" if locale.startswith("ZH") else ("" if i % 5 == 4 else locale), "Dialect": "",
        "OriginalMetadata": {"Filename": f"{i:07d}-fixture.txt", "Begin": "0", "End": str(len(text))},
        **_annotations(toxicity, old),
        **({} if old else {"CompletionAnnotations": {}, "CompletionAnnotationsRaw": {}}),
    }


def write_rtplx_release(folder: Path, *, n: int = 6, data_dir: Path | None = None, old_locales: tuple[str, ...] = ("DE",),
                        prompt_only: tuple[str, ...] = (), locales: tuple[str, ...] | None = None) -> Path:
    """One ``RTP_LX_<LOCALE>.json`` per locale (all by default). ``old_locales`` use the pre-May-2024 keys
    and string ``Index``; ``prompt_only`` files carry only ``Prompt``; the ``EN`` file has a U+2028 inside a prompt."""
    folder.mkdir(parents=True, exist_ok=True)
    for loc in LOCALES:
        if locales is not None and loc.code not in locales:
            continue
        lines = []
        for i, (text, tox) in enumerate(sentences(loc.lang, n, data_dir)):
            if loc.code == "EN" and i == 1:
                text = f"{text} {LINE_SEPARATOR}and on"
            rec = {"Prompt": text} if loc.code in prompt_only else rtplx_record(
                i, text, tox, loc.code, old=loc.code in old_locales)
            lines.append(json.dumps(rec, ensure_ascii=False))
        (folder / f"RTP_LX_{loc.code}.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def write_rtplx_hub(folder: Path, *, n: int = 4, data_dir: Path | None = None) -> Path:
    """The hub copy's layout: README with one config, ``data/<LOCALE>-00000-of-00001.parquet`` per locale."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: test\n    path: data/*\n---\n# RTP-LX (fixture)\n",
        encoding="utf-8")
    for loc in LOCALES:
        rows = [rtplx_record(i, t, tox, loc.code, old=False) for i, (t, tox) in enumerate(sentences(loc.lang, n, data_dir))]
        for row in rows:  # empty structs do not round-trip through parquet
            row.pop("CompletionAnnotations")
            row.pop("CompletionAnnotationsRaw")
        pq.write_table(pa.Table.from_pylist(rows), folder / "data" / f"{loc.code}-00000-of-00001.parquet")
    return folder


def _perspective(value: float) -> dict:
    score = {"summaryScore": {"type": "PROBABILITY", "value": value}}
    return {"attributeScores": {"TOXICITY": score}, "detectedLanguages": ["xx"], "languages": ["xx"]}


def write_ptp_hub(folder: Path, *, n: int = 4, data_dir: Path | None = None, langs: tuple[str, ...] | None = None) -> Path:
    """The PTP hub copy's layout for ``langs`` (all 17 by default): README configs + parquet files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    langs = langs or suite_languages("ptp")
    configs = []
    for lang in langs:
        texts = [t for t, _ in sentences(lang, n, data_dir)]
        ptp_rows = [{"text": t + " and the rest", "meta_data": {"data_category": "web", "lang": lang},
                     "perspective": _perspective(0.1), "toxicity": 0.1, "toxicity_bucket": 0, "prompt": t,
                     "continuation": " and the rest", "prompt_perspective": _perspective(0.1),
                     "continuation_perspective": _perspective(0.1)} for t in texts]
        wild_rows = [{"prompt": f"wildchat {t}", "prompt_toxicity": 0.2, "toxicity_bucket": 1,
                      "prompt_perspective": _perspective(0.2), "meta_data": {"lang": lang}} for t in texts]
        for sub, split, rows in ((f"ptp-{lang}", "full", ptp_rows + ptp_rows), (f"ptp-{lang}", "small", ptp_rows),
                                 (f"wildchat-{lang}", "wildchat", wild_rows)):
            (folder / sub).mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows), folder / sub / f"{split}-00000-of-00001.parquet")
        configs.append(f"- config_name: ptp-{lang}\n  data_files:\n  - split: full\n    path: ptp-{lang}/full-*\n"
                       f"  - split: small\n    path: ptp-{lang}/small-*\n")
        configs.append(f"- config_name: wildchat-{lang}\n  data_files:\n  - split: wildchat\n"
                       f"    path: wildchat-{lang}/wildchat-*\n")
    (folder / "README.md").write_text("---\nconfigs:\n" + "".join(configs) + "---\n# PTP (fixture)\n", encoding="utf-8")
    return folder
