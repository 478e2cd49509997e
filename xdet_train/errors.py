"""User-facing errors of the training wing; the CLI prints them as one line and exits 2."""


class XdetError(RuntimeError):
    """Bad input or a state the user must fix (unknown strategy, mismatched adapter, ...)."""
