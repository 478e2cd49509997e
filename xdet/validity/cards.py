"""Validity cards: how far a scorer agrees with native speakers, per language, wherever its numbers are shown.

A toxicity number is only as good as its scorer *in that language*. ``xdet scorer evaluate <spec>
--against rtplx --save`` keeps the per-locale result (κ on RTP-LX's 1-5 scale, :mod:`xdet.validity.kappa`,
and ROC-AUC, with their intervals) as the scorer's card, keyed by its identity ``backend@version``
(the score cache's key: another model, revision, tokenizer or precision is another scorer, with no
card until it is measured). A card is one JSON file (:data:`SCHEMA`); cards are found, the first
source winning per locale, in:

1. ``XDET_VALIDITY_CARDS``: card files or folders of them, separated by ``os.pathsep`` (cards shipped
   with a paper, or measured elsewhere), also set by ``--validity-cards``;
2. ``$XDET_CACHE_DIR/validity-cards/<sha256(ident)[:16]>.json``: what ``--save`` wrote on this machine
   (a new measurement of a locale replaces the old one, other locales stay);
3. ``xdet/validity/cards/``: cards shipped with xdet. It holds none: a built-in card must come from a
   real evaluation on RTP-LX's files with the scorer's real weights, and none was possible here.

Wherever toxicity is shown per language (``xdet eval``'s summary, ``xdet tables`` captions, ``xdet
analyze``), :func:`validity_text` gives each language's κ from the card of the scorer that scored it,
or flags it: ``unvalidated`` (no card for that scorer and language) or ``weak`` (κ below the floor).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from xdet.runs.settings import scorer_ident
from xdet.validity.kappa import KAPPA_FLOOR, STATISTIC, is_weak
from xdet_tasks import __version__
from xdet_tasks.errors import DataError
from xdet_tasks.io import atomic_write_json, cache_dir
from xdet_tasks.scoring.routing import language_provenance

SCHEMA = "xdet-validity-card/1"
ENV_CARDS = "XDET_VALIDITY_CARDS"
CACHE_FOLDER = "validity-cards"
BUILTIN_DIR = Path(__file__).resolve().parent / "cards"
#: the interval fields of a card entry (each ``{"value", "lo", "hi"}``, numbers or null)
INTERVALS = ("kappa", "roc_auc")


def card_path(ident: str) -> Path:
    """Where ``--save`` keeps the card of the scorer ``ident`` on this machine."""
    return cache_dir() / CACHE_FOLDER / f"{hashlib.sha256(ident.encode()).hexdigest()[:16]}.json"


def cards_from_report(report: Mapping[str, Any], *, n_boot: int, seed: int) -> dict[str, dict[str, Any]]:
    """The cards an ``--against rtplx`` report makes: one per scorer (a routing list scored languages with
    several), each with the locales that scorer scored."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    cards: dict[str, dict[str, Any]] = {}
    for loc, row in report["rows"].items():
        prov = language_provenance(report["scorer"], row["lang"])
        ident = scorer_ident(prov)
        if prov is None or ident is None:
            continue
        card = cards.setdefault(ident, {"schema": SCHEMA, "ident": ident, "scorer": prov, "against": "rtplx",
                                        "statistic": STATISTIC, "floor": KAPPA_FLOOR, "locales": {}})
        card["locales"][loc] = {
            "lang": row["lang"], "kappa": row["kappa"], "kappa_n": row["kappa_n"], "roc_auc": row["roc_auc"],
            "n": row["n"], "raters_kappa": row.get("raters_kappa"), "prompts_sha256": row["prompts_sha256"],
            "source": report.get("source"), "n_boot": n_boot, "seed": seed, "measured": now,
            "xdet_version": __version__,
        }
    return cards


def save_cards(report: Mapping[str, Any], *, n_boot: int, seed: int) -> list[Path]:
    """Write the report's cards into the cache, each merged into the card already there for its scorer."""
    written = []
    for ident, card in cards_from_report(report, n_boot=n_boot, seed=seed).items():
        path = card_path(ident)
        if path.is_file():
            old = read_card(path)
            card["locales"] = {**old["locales"], **card["locales"]}
        card["updated"] = max(e["measured"] for e in card["locales"].values())
        written.append(atomic_write_json(path, card))
    return written


def _interval(value: Any, where: str) -> None:
    if not isinstance(value, dict) or not {"value", "lo", "hi"} <= set(value):
        raise DataError(f"{where}: expected {{\"value\", \"lo\", \"hi\"}}, got {value!r}")
    for key in ("value", "lo", "hi"):
        x = value[key]
        if x is not None and (isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x)):
            raise DataError(f"{where}.{key}: expected a number or null, got {x!r}")


def read_card(path: Path) -> dict[str, Any]:
    """A card file, checked field by field; a bad one is refused naming the file and field."""
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not a readable validity card ({err})") from None
    if not isinstance(card, dict) or card.get("schema") != SCHEMA:
        found = card.get("schema") if isinstance(card, dict) else type(card).__name__
        raise DataError(f"{path}: field schema: expected {SCHEMA!r}, got {found!r}")
    if not isinstance(card.get("ident"), str) or "@" not in card["ident"]:
        raise DataError(f"{path}: field ident: expected the scorer's backend@version, got {card.get('ident')!r}")
    if not isinstance(card.get("locales"), dict):
        raise DataError(f"{path}: field locales: expected an object of locale -> result")
    for loc, entry in card["locales"].items():
        where = f"{path}: field locales.{loc}"
        if not isinstance(entry, dict) or not isinstance(entry.get("lang"), str):
            raise DataError(f"{where}.lang: expected a language code")
        for key in INTERVALS:
            _interval(entry.get(key), f"{where}.{key}")
        if not isinstance(entry.get("kappa_n"), int) or isinstance(entry.get("kappa_n"), bool):
            raise DataError(f"{where}.kappa_n: expected a count, got {entry.get('kappa_n')!r}")
    return card


def card_files() -> list[Path]:
    """Every card file, in precedence order: ``XDET_VALIDITY_CARDS``, this machine's cache, built in."""
    out: list[Path] = []
    for part in filter(None, (os.environ.get(ENV_CARDS) or "").split(os.pathsep)):
        path = Path(part).expanduser()
        if path.is_dir():
            out += sorted(path.glob("*.json"))
        elif path.is_file():
            out.append(path)
        else:
            raise DataError(f"{ENV_CARDS} / --validity-cards: {part!r} is no card file or folder")
    for folder in (cache_dir() / CACHE_FOLDER, BUILTIN_DIR):
        out += sorted(folder.glob("*.json")) if folder.is_dir() else []
    return out


def load_cards() -> dict[str, dict[str, dict[str, Any]]]:
    """``{ident: {locale: entry}}`` over every card found, the first source winning per locale."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for path in card_files():
        card = read_card(path)
        locales = found.setdefault(card["ident"], {})
        for loc, entry in card["locales"].items():
            locales.setdefault(loc, entry)
    return found


@dataclass(frozen=True)
class Validity:
    """One language's validity under one scorer: ``validated``, ``weak`` or ``unvalidated``."""

    lang: str
    status: str
    #: ``(locale, entry)`` of each measured locale of the language
    entries: tuple[tuple[str, dict[str, Any]], ...] = ()

    def text(self) -> str:
        def num(x: float) -> str:
            shown = f"{x:.2f}"
            return "0.00" if shown == "-0.00" else shown

        def kappa(entry: dict[str, Any]) -> str:
            k = entry["kappa"]
            return num(k["value"]) + (f" [{num(k['lo'])}, {num(k['hi'])}]" if k["lo"] is not None else "")

        if not self.entries:
            return f"{self.lang} unvalidated"
        shown = [(loc, e) for loc, e in self.entries if e["kappa"]["value"] is not None]
        parts = [kappa(e) + (f" {loc}" if len(self.entries) > 1 else "") for loc, e in shown]
        flag = {"weak": " weak", "unvalidated": " unvalidated (κ undefined)"}.get(self.status, "")
        return f"{self.lang} " + ", ".join(parts) + flag if parts else f"{self.lang}{flag}"


def language_validity(ident: str | None, lang: str, cards: Mapping[str, Mapping[str, dict[str, Any]]]) -> Validity:
    """The validity of ``lang`` scored by ``ident``: the card's locales of that language, exactly that scorer's."""
    entries = tuple(sorted((loc, e) for loc, e in (cards.get(ident) or {}).items() if e["lang"] == lang)) \
        if ident else ()
    values = [e["kappa"]["value"] for _, e in entries if e["kappa"]["value"] is not None]
    if not values:
        return Validity(lang, "unvalidated", entries)
    return Validity(lang, "weak" if any(is_weak(v) for v in values) else "validated", entries)


def validity_text(scorer_of: Mapping[str, str | None] | Iterable[tuple[str, str | None]],
                  cards: Mapping[str, Mapping[str, dict[str, Any]]] | None = None) -> str | None:
    """``validity (κ vs RTP-LX raters, weak < 0.4): de 0.52 [0.45, 0.60]; sw unvalidated`` for the
    languages of ``scorer_of`` (language -> the ident of the scorer that scored it); ``None`` if none."""
    pairs = list(scorer_of.items() if isinstance(scorer_of, Mapping) else scorer_of)
    if not pairs:
        return None
    cards = load_cards() if cards is None else cards
    parts = [language_validity(ident, lang, cards).text() for lang, ident in pairs]
    return f"validity (linear κ vs RTP-LX raters on 1-5, weak below {KAPPA_FLOOR:g}): " + "; ".join(parts)
