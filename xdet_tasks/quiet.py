"""Silence one lm-eval warning that every xdet task would print, and nothing else.

lm-eval logs "<task>: Custom kwargs can be passed to `--metadata` ..." (two lines) whenever a task
loads its documents through ``custom_dataset``, whatever the task does with them. Every xdet task
does (that is how the hub protocol and the released files are served), so a full run printed it 144
times. The filter drops exactly that record for tasks named ``xdet_*``; every other lm-eval message,
warnings included, passes.
"""

from __future__ import annotations

import logging

_LOGGER = "lm_eval.api.task"
_MESSAGE = "Custom kwargs can be passed to `--metadata`"


class _CustomKwargsNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("xdet_") and _MESSAGE in message)


_FILTER = _CustomKwargsNotice()


def install() -> None:
    """Idempotent: the task hooks module is loaded once per ``!function`` reference."""
    logger = logging.getLogger(_LOGGER)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
