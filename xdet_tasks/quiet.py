"""Silence two pieces of lm-eval noise that xdet runs would print, and nothing else.

lm-eval logs "<task>: Custom kwargs can be passed to `--metadata` ..." (two lines) whenever a task
loads its documents through ``custom_dataset``, whatever the task does with them. Every xdet task
does (that is how the hub protocol and the released files are served), so a full run printed it 144
times. The filter drops exactly that record for tasks named ``xdet_*``; every other lm-eval message,
warnings included, passes. And lm-eval records the git commit of the working folder by running
``git describe`` with the terminal as its stderr, which prints "fatal: not a git repository" outside a
checkout; :func:`git_commit_hash` asks git the same question with its stderr discarded.
"""

from __future__ import annotations

import logging
import subprocess

_LOGGER = "lm_eval.api.task"
_MESSAGE = "Custom kwargs can be passed to `--metadata`"


class _CustomKwargsNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("xdet_") and _MESSAGE in message)


_FILTER = _CustomKwargsNotice()


def install() -> None:
    """Idempotent: the task hooks module is loaded once per ``!function`` reference."""
    import lm_eval.evaluator

    logger = logging.getLogger(_LOGGER)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    lm_eval.evaluator.get_git_commit_hash = git_commit_hash


def git_commit_hash() -> str | None:
    """The working folder's ``git describe --always``, or ``None`` outside a checkout; never prints."""
    try:
        out = subprocess.run(["git", "describe", "--always"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None
