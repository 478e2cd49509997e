"""Configuration checks a plain ``lm_eval run`` makes while it loads the xdet tasks, before any generation.

lm-eval builds the model first and the tasks second, and prints any exception as a traceback whose
last line is the message. So each task's document loader checks what the task needs (its data,
and for a scored task the scorer and its language) the moment lm-eval loads it, and a problem is
logged as one ``xdet: ...`` error line at once, the first thing on the screen, before the traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from xdet_tasks.errors import XdetError

log = logging.getLogger("xdet_tasks")
T = TypeVar("T")
_checked: set[tuple[str, str]] = set()


def checked(what: Callable[[], T]) -> T:
    """Run ``what``; an :class:`XdetError` is logged as one line before it propagates."""
    try:
        return what()
    except XdetError as err:
        log.error("xdet: %s", err)
        raise


def scorer_ready(lang: str) -> None:
    """Build the scorer now (not after generation) and refuse a language it cannot score; once per
    scorer and language."""
    from xdet_tasks.scoring import get_scorer
    from xdet_tasks.scoring.registry import scorer_spec

    key = (scorer_spec(), lang)
    if key in _checked:
        return
    checked(lambda: get_scorer().check_language(lang))
    _checked.add(key)
