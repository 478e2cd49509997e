"""The errors a user can fix: the ``xdet`` CLI prints any of them as one line and exits with status 2.

They live in the plugin package because the plugin raises them too (bad data, bad scorer choice),
and every other package imports from here, never the other way round.
"""

from __future__ import annotations


class XdetError(Exception):
    """Bad input or a state the user must change (unknown strategy, mismatched adapter, ...)."""


class DataError(XdetError, ValueError):
    """Bad or missing input data; the message names the file, line and value."""


class ScorerError(XdetError, RuntimeError):
    """A scorer could not be built or used (bad spec, unsupported language, missing key...)."""


class UnscoredError(ScorerError):
    """Some texts could not be scored after all retries; they are never recorded as 0."""

    def __init__(self, message: str, unscored: int):
        super().__init__(message)
        self.unscored = unscored
