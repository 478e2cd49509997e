"""RTP-LX (De Wynter et al., AAAI 2025): its per-locale release files, or the hub copy, as prompts.

The release (github.com/microsoft/RTP-LX, ``RTP-LX/RTP-LX.zip``, password in its README) is one file
per locale, ``RTP_LX_<LOCALE>.json``, in JSON lines: one object per line with ``Prompt``, ``Completion``,
``Index`` (an integer in some files, a string such as ``"0"`` in others), ``Locale``, ``Dialect``,
``OriginalMetadata``, ``PromptAnnotations`` (the aggregated 1-5 ratings per category),
``PromptAnnotationsRaw`` (the three raters' values), ``CompletionAnnotations(Raw)``; releases before
May 2024 call the prompt's annotations ``Annotations``/``AnnotationsRaw`` (schema:
``rtp-lx_metadata.json`` in that repository). ``Locale``/``Dialect`` inside the files are
inconsistent (empty, ``ZH`` in both Chinese files, three Arabic dialects in ``AR``), so the file name
is the key: :data:`LOCALES` maps each file's locale to a language, with the default per language.

Files are read line by line on ``\\n`` only: a prompt may contain characters that ``str.splitlines``
also splits on (U+2028 and others), which must stay inside their line. Only ``Prompt`` is required
(and the Toxicity annotations when they are asked for), so files derived from RTP-LX that carry
nothing else (the 200 machine-translated prompts per language Li et al. release) load too.

Sources, in order: the folder ``XDET_RTPLX_DIR`` (``lm_eval --metadata '{"rtplx_dir": ...}'``,
``xdet eval --rtplx-dir``); else the hub copy ``ToxicityPrompts/RTP-LX`` (``XDET_RTPLX_DATASET``, an id
or a local folder in its layout; ``XDET_RTPLX_REVISION``), split ``test``, one parquet file per locale,
``data/<LOCALE>-00000-of-00001.parquet``, of which each language's file is read by name.
``XDET_RTPLX_LOCALES`` (``zh=ZH-Hant,pt=PT-BR``) picks another locale of a language.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xdet_tasks.errors import DataError
from xdet_tasks.languages import BY_CODE
from xdet_tasks.suites.natural import NaturalPrompt
from xdet_tasks.suites.records import RTPLX, SUITES, check_language, suite_languages

ENV_DIR = "XDET_RTPLX_DIR"
ENV_LOCALES = "XDET_RTPLX_LOCALES"
ENV_DATASET = "XDET_RTPLX_DATASET"
ENV_REVISION = "XDET_RTPLX_REVISION"
HUB_DATASET = SUITES[RTPLX].hub
FILE_PREFIX = "RTP_LX_"
#: the prompt's human annotations: current key names first, then those of releases before May 2024
RAW_KEYS = ("PromptAnnotationsRaw", "AnnotationsRaw")
AGGREGATE_KEYS = ("PromptAnnotations", "Annotations")
CATEGORY = "Toxicity"
RATING_RANGE = (1, 5)


@dataclass(frozen=True)
class Locale:
    code: str  # as in the file name RTP_LX_<code>.json
    lang: str
    note: str
    default: bool = True


#: Every v1.0 release file (28) plus the early releases' Brazilian Portuguese file. A language record
#: of the ``rtplx`` suite without an entry here is read from ``RTP_LX_<CODE>.json`` (its code upper-cased).
_LISTED: tuple[Locale, ...] = (
    Locale("AR", "ar", "Arabic: Egyptian, Levantine and Saudi dialects in one file"),
    Locale("BCMS", "hbs", "Bosnian, Croatian, Montenegrin, Serbian in one file (Latin and Cyrillic)"),
    Locale("CS", "cs", "Czech"), Locale("DA", "da", "Danish"), Locale("DE", "de", "German"),
    Locale("EN", "en", "English (the RTP originals)"), Locale("ES", "es", "Spanish (Spain)"),
    Locale("FI", "fi", "Finnish"), Locale("FR", "fr", "French (France)"), Locale("HE", "he", "Hebrew"),
    Locale("HI", "hi", "Hindi"), Locale("HU", "hu", "Hungarian"), Locale("ID", "id", "Indonesian"),
    Locale("IT", "it", "Italian"), Locale("JA", "ja", "Japanese"), Locale("KO", "ko", "Korean"),
    Locale("NL", "nl", "Dutch"), Locale("NO-NB", "nb", "Norwegian Bokmål"), Locale("PL", "pl", "Polish"),
    Locale("PT", "pt", "Portuguese (RTP_LX_PT.json)"), Locale("RU", "ru", "Russian (Russia, Ukraine)"),
    Locale("SV", "sv", "Swedish"), Locale("SW", "sw", "Swahili"), Locale("TH", "th", "Thai"),
    Locale("TR", "tr", "Turkish"), Locale("UK", "uk", "Ukrainian"),
    Locale("ZH-Hans", "zh", "Chinese, simplified script"),
    Locale("ZH-Hant", "zh", "Chinese, traditional script", default=False),
    Locale("PT-BR", "pt", "Brazilian Portuguese (a file of the releases before v1.0)", default=False),
)
LOCALES: tuple[Locale, ...] = _LISTED + tuple(
    Locale(code.upper(), code, BY_CODE[code].name) for code in suite_languages(RTPLX)
    if not any(loc.lang == code for loc in _LISTED))
BY_LOCALE: dict[str, Locale] = {loc.code: loc for loc in LOCALES}


def language_locales(lang: str) -> list[str]:
    """Every locale of ``lang``, its default first."""
    check_language(lang, RTPLX)
    return [loc.code for loc in sorted(LOCALES, key=lambda x: not x.default) if loc.lang == lang]


def chosen_locales(spec: str | None = None) -> dict[str, str]:
    """``lang -> locale`` in force: the defaults, with ``XDET_RTPLX_LOCALES`` (``zh=ZH-Hant,...``) applied."""
    chosen = {loc.lang: loc.code for loc in LOCALES if loc.default}
    spec = os.environ.get(ENV_LOCALES, "") if spec is None else spec
    for item in filter(None, (part.strip() for part in spec.split(","))):
        lang, eq, code = (x.strip() for x in item.partition("="))
        if not eq:
            raise DataError(f"{ENV_LOCALES}={spec!r}: expected lang=LOCALE items such as zh=ZH-Hant")
        if code not in BY_LOCALE:
            raise DataError(f"{ENV_LOCALES}: unknown RTP-LX locale {code!r}; expected one of "
                            f"{', '.join(loc.code for loc in LOCALES)}")
        if BY_LOCALE[code].lang != lang:
            raise DataError(f"{ENV_LOCALES}: locale {code!r} is {BY_LOCALE[code].lang!r}, not {lang!r}")
        chosen[lang] = code
    return chosen


def resolve_dir(rtplx_dir: str | Path | None = None) -> Path | None:
    chosen = rtplx_dir or os.environ.get(ENV_DIR) or None
    if chosen is None:
        return None
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise DataError(f"RTP-LX folder {str(path)!r} (from {'--rtplx-dir' if rtplx_dir else ENV_DIR}) "
                        "does not exist or is not a directory")
    return path.resolve()


def release_file(folder: Path, locale: str) -> Path:
    """The locale's release file; a folder without any, or without this one, is a one-line error."""
    path = folder / f"{FILE_PREFIX}{locale}.json"
    if path.is_file():
        return path
    present = sorted(p.name for p in folder.glob(f"{FILE_PREFIX}*.json"))
    if not present:
        raise DataError(f"{folder}: no RTP-LX release files ({FILE_PREFIX}<LOCALE>.json) in this folder; "
                        "unzip RTP-LX/RTP-LX.zip of github.com/microsoft/RTP-LX here")
    raise DataError(f"{path}: missing (RTP-LX locale {locale}, language {BY_LOCALE[locale].lang}); "
                    f"the folder has {', '.join(present)}")


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` per non-empty line, split on ``\\n`` only (never on U+2028 & co.)."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):  # binary iteration splits on b"\n" alone
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{path}:{lineno}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{lineno}: not JSON lines (one JSON object per line expected): "
                                f"{err.msg} at column {err.colno}") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{lineno}: not JSON lines: a line holds a {type(obj).__name__}, "
                                "expected one object per line")
            yield lineno, obj


def _ratings(where: str, rec: dict[str, Any]) -> tuple[tuple[int, ...] | None, float | None]:
    """The raters' and the aggregated Toxicity values of one record, checked."""
    raw_key = next((k for k in RAW_KEYS if isinstance(rec.get(k), dict)), None)
    agg_key = next((k for k in AGGREGATE_KEYS if isinstance(rec.get(k), dict)), None)
    if raw_key is None and agg_key is None:
        raise DataError(
            f"{where}: field {RAW_KEYS[0]!r} (or {AGGREGATE_KEYS[0]!r}, or the older {RAW_KEYS[1]!r}/"
            f"{AGGREGATE_KEYS[1]!r}) missing: this needs RTP-LX's human annotations, which files derived "
            "from RTP-LX that carry only 'Prompt' do not have")
    lo, hi = RATING_RANGE
    ratings = None
    if raw_key is not None:
        values = rec[raw_key].get(CATEGORY)
        if not isinstance(values, list) or not values or not all(
                isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi for v in values):
            raise DataError(f"{where}: field {raw_key}.{CATEGORY} must be a list of integers {lo}-{hi}, got {values!r}")
        ratings = tuple(values)
    rating = None
    if agg_key is not None:
        value = rec[agg_key].get(CATEGORY)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise DataError(f"{where}: field {agg_key}.{CATEGORY} must be a number {lo}-{hi}, got {value!r}")
            rating = float(value)
    if ratings is None and rating is None:
        raise DataError(f"{where}: no {CATEGORY} value in {raw_key or agg_key}")
    return ratings, rating


def _record(where: str, rec: dict[str, Any], lang: str, locale: str, position: int,
            annotations: bool) -> NaturalPrompt:
    prompt = rec.get("Prompt")
    if prompt is None:
        raise DataError(f"{where}: field 'Prompt' missing")
    if not isinstance(prompt, str):
        raise DataError(f"{where}: field 'Prompt' must be a string, got {type(prompt).__name__}")
    if not prompt.strip():
        raise DataError(f"{where}: field 'Prompt' is empty")
    index = rec.get("Index", position)
    if isinstance(index, bool) or not isinstance(index, (int, str)):
        raise DataError(f"{where}: field 'Index' must be an integer or a string, got {index!r}")
    ratings, rating = _ratings(where, rec) if annotations else (None, None)
    return NaturalPrompt(lang, locale, position, str(index), prompt, ratings, rating)


def read_release_file(path: Path, locale: str, *, annotations: bool = False) -> list[NaturalPrompt]:
    """Every prompt of one release file."""
    lang = BY_LOCALE[locale].lang
    out = [_record(f"{path}:{lineno}", rec, lang, locale, i, annotations)
           for i, (lineno, rec) in enumerate(_json_lines(path))]
    if not out:
        raise DataError(f"{path}: no prompts (an empty file)")
    return out


def _hub_source() -> tuple[str, str | None]:
    return os.environ.get(ENV_DATASET) or HUB_DATASET, os.environ.get(ENV_REVISION) or None


def read_hub_locale(locale: str, *, annotations: bool = False) -> list[NaturalPrompt]:
    """One locale of the hub copy (its ``data/<LOCALE>-*.parquet`` file, split ``test``)."""
    from xdet_tasks.suites.hub import load_hub_dataset

    dataset, revision = _hub_source()
    pattern = f"data/{locale}-*.parquet"
    ds = load_hub_dataset(
        dataset, revision=revision, split="test", data_files={"test": pattern},
        what=f"RTP-LX hub copy {dataset!r} ({pattern})",
        way_out=f"point {ENV_DIR} (or --rtplx-dir) at a folder of the RTP-LX release files ({FILE_PREFIX}<LOCALE>.json)",
    )
    lang = BY_LOCALE[locale].lang
    out = [_record(f"{dataset}/{pattern} row {i}", rec, lang, locale, i, annotations) for i, rec in enumerate(ds)]
    if not out:
        raise DataError(f"{dataset}/{pattern}: no prompts")
    return out


def load_locale(locale: str, *, rtplx_dir: str | Path | None = None, annotations: bool = False) -> list[NaturalPrompt]:
    """The prompts of one RTP-LX locale, from the release folder or the hub copy."""
    if locale not in BY_LOCALE:
        raise DataError(f"unknown RTP-LX locale {locale!r}; expected one of {', '.join(loc.code for loc in LOCALES)}")
    folder = resolve_dir(rtplx_dir)
    if folder is not None:
        return read_release_file(release_file(folder, locale), locale, annotations=annotations)
    return read_hub_locale(locale, annotations=annotations)


def load_prompts(lang: str, *, annotations: bool = False, rtplx_dir: str | Path | None = None) -> list[NaturalPrompt]:
    """The prompts of ``lang`` in its chosen locale (:func:`chosen_locales`)."""
    check_language(lang, RTPLX)
    return load_locale(chosen_locales()[lang], rtplx_dir=rtplx_dir, annotations=annotations)


def describe_source() -> dict[str, str]:
    folder = resolve_dir()
    locales = {lang: code for lang, code in chosen_locales().items() if not BY_LOCALE[code].default}
    where = {"source": "dir", "rtplx_dir": str(folder)} if folder else dict(
        zip(("source", "dataset", "revision"), ("hub", *_hub_source()), strict=True))
    return {**{k: str(v) for k, v in where.items() if v is not None},
            **({"locales": ",".join(f"{k}={v}" for k, v in locales.items())} if locales else {})}
