"""A throw-away natural-prompt suite's loader, as a newcomer would write one (the ARCHITECTURE recipe).

``tests/test_architecture.py`` copies this file into a copy of the packages as
``xdet_tasks/suites/toy.py`` and adds one ``Suite`` record naming it: nothing else is edited. Its data
is a folder of ``<lang>.jsonl`` files with one ``{"text": ...}`` object per line (``XDET_TOY_DIR``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from xdet_tasks.errors import DataError
from xdet_tasks.suites.natural import NaturalPrompt
from xdet_tasks.suites.records import check_language

ENV_DIR = "XDET_TOY_DIR"


def load_prompts(lang: str, *, annotations: bool = False) -> list[NaturalPrompt]:
    check_language(lang, "toy")
    if annotations:
        raise DataError("the toy suite has no human ratings")
    path = Path(os.environ.get(ENV_DIR, "")) / f"{lang}.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: no toy prompts for {lang} ({ENV_DIR})")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [NaturalPrompt(lang, lang.upper(), i, str(i), json.loads(line)["text"]) for i, line in enumerate(lines)]


def describe_source() -> dict[str, str]:
    return {"source": "folder", "path": os.environ.get(ENV_DIR, "")}
