"""What a command prints: logging set up for people at default verbosity, everything with ``-v``."""

from __future__ import annotations

import logging


def configure_logging(*, verbose: bool) -> None:
    """Log to stderr; ``-v`` shows debug messages of every library."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s",
        force=True,  # log to the current stderr even when main() runs again in one process
    )
