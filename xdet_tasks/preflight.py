"""What the plugin does while lm-eval loads a task, before any generation: configuration checks that end
a plain ``lm_eval`` run in one line, and the sampling stream that pairs every run with its zero-shot run.

lm-eval builds the model first and the tasks second. Each task's document loader checks what the task
needs (its data, and for a scored task the scorer and its language) the moment lm-eval loads it. A
problem is logged as one ``xdet: ...`` error line; under the ``lm_eval`` command the process then ends
with exit status 2 and no traceback (the message is the whole story), and anywhere else (``xdet
eval``, lm-eval's Python API) the :class:`XdetError` propagates to the caller.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from xdet_tasks.errors import XdetError

log = logging.getLogger("xdet_tasks")
T = TypeVar("T")
_checked: set[tuple[str, str]] = set()
EXIT_STATUS = 2


def under_lm_eval_command() -> bool:
    """Whether this process is the ``lm_eval`` command (or ``python -m lm_eval``)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name in ("lm_eval", "lm_eval.__main__"):
        return True
    return bool(sys.argv) and Path(sys.argv[0]).name in ("lm_eval", "lm-eval")


def checked(what: Callable[[], T]) -> T:
    """Run ``what``; an :class:`XdetError` is logged as one line, then ends the ``lm_eval`` command or
    propagates."""
    try:
        return what()
    except XdetError as err:
        log.error("xdet: %s", err)
        if under_lm_eval_command():
            raise SystemExit(EXIT_STATUS) from None
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


def restart_sampling_stream() -> None:
    """Re-seed torch's generators with the seed lm-eval gave them, once the model exists.

    lm-eval seeds before it builds the model, and building a PEFT adapter's LoRA layers draws from
    torch's generator: an adapter run would sample its completions from another point of the stream
    than the zero-shot run, and a Δ per prompt would not be paired. Tasks load after the model, so
    restarting the stream here gives every run of one seed the same stream (``xdet eval`` seeds after
    building the model and gets the same one).
    """
    import torch

    torch.manual_seed(torch.initial_seed())


LAUNCH_PREFIX = "xdet launch: "


class LaunchDirectory:
    """Stands in each task's metadata and prints, when lm-eval saves the results, as the directory the
    run was launched from: a relative ``peft=`` path in the results file then resolves to the adapter
    lm-eval loaded, whichever directory the results are read from later."""

    def __str__(self) -> str:
        return LAUNCH_PREFIX + json.dumps({"cwd": os.getcwd()}, ensure_ascii=False)

    __repr__ = __str__

    def __deepcopy__(self, memo: dict) -> LaunchDirectory:
        return self


def launch_directory_of(config: Any) -> str | None:
    """The launch directory a results file's task config recorded (:class:`LaunchDirectory`), or ``None``."""
    text = ((config or {}).get("metadata") or {}).get("launched_from") if isinstance(config, dict) else None
    if not isinstance(text, str) or not text.startswith(LAUNCH_PREFIX):
        return None
    try:
        cwd = json.loads(text[len(LAUNCH_PREFIX):]).get("cwd")
    except (json.JSONDecodeError, AttributeError):
        return None
    return cwd if isinstance(cwd, str) else None
