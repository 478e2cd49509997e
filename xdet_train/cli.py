"""The ``xdet`` command line. Each command lives in its own module exposing ``register(subparsers)``.

A command handler returns an exit code. Expected failures (bad input, unscored samples...) are
raised as exceptions listed in :data:`USER_ERRORS` and printed as one clear line, exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

#: Command modules, in the order ``xdet --help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "xdet_train.evaluate",
    "xdet_train.scorer_cmd",
    "xdet_train.train",
    "xdet_train.tables_cmd",
    "xdet_train.sweep",
    "xdet_train.demo",
    "xdet_train.represent",
)


def _user_errors() -> tuple[type[BaseException], ...]:
    from xdet_tasks.data import DataError
    from xdet_tasks.scoring import ScorerError

    errors: list[type[BaseException]] = [DataError, ScorerError, FileNotFoundError, PermissionError]
    try:
        from xdet_train.errors import XdetError

        errors.append(XdetError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xdet", description="Cross-lingual detoxification benchmark (Breaking mBad!) on lm-eval."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:  # command not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s",
        force=True,  # log to the current stderr even when main() runs again in one process
    )
    try:
        return int(args.func(args) or 0)
    except _user_errors() as err:
        print(f"xdet {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
