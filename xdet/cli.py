"""The ``xdet`` command line. Each command is a module of :mod:`xdet.commands` exposing ``register``.

A command handler returns an exit code. A problem the user can fix (any
:class:`~xdet_tasks.errors.XdetError`, a missing file) is printed as one line with exit status 2;
Ctrl-C prints one line and exits with 130, and rerunning the same command resumes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn

from xdet.console import configure_logging
from xdet_tasks import __version__
from xdet_tasks.errors import XdetError
from xdet_tasks.io import environment
from xdet_tasks.suites.paradetox import ENV_DATA_DIR

#: Command modules, in the order ``xdet --help`` lists them.
COMMANDS: tuple[str, ...] = ("eval", "scorer", "fluency", "train", "tables", "sweep", "demo", "represent", "analyze")


class _Parser(argparse.ArgumentParser):
    """Usage mistakes as one line, like every other xdet error (``--help`` still prints the usage).

    Flags are never abbreviated (``--max-step`` is not silently ``--max-steps``), and a misspelt flag
    is named (with the closest real one) even when argparse would first complain that a required flag
    is missing, which is what the misspelling caused.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self._given: list[str] = []

    def parse_known_args(self, args=None, namespace=None):
        self._given = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        unknown = [a.split("=", 1)[0] for a in self._given
                   if a.startswith("--") and a.split("=", 1)[0] not in self._option_string_actions]
        if unknown and message.startswith("the following arguments are required"):
            message = unrecognized(self, unknown)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def unrecognized(parser: argparse.ArgumentParser, flags: list[str]) -> str:
    """``unrecognized arguments: --modle (did you mean --model?)``."""
    import difflib

    known = [o for o in parser._option_string_actions if o.startswith("--")]
    hints = [f"{f} (did you mean {m[0]}?)" if (m := difflib.get_close_matches(f, known, n=1)) else f for f in flags]
    return f"unrecognized arguments: {' '.join(hints)}"


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield sub
                yield from _subcommands(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="xdet", description="Cross-lingual detoxification benchmark (Breaking mBad!) on lm-eval.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show every library log line and progress detail")
    parser.add_argument("--version", action="version", version=f"xdet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"xdet.commands.{name}").register(sub)
    for command in _subcommands(parser):  # -v after the command name too
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                             help="show every library log line and progress detail (default: off)")
        command.set_defaults(parser_=command)  # the innermost command's parser names errors
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # argparse would blame the top-level parser; name the command the flag was given to
        args.parser_.error(unrecognized(args.parser_, unknown))
    command = args.parser_.prog.removeprefix("xdet ")
    configure_logging(verbose=args.verbose)
    # --data-dir holds for everything the command loads the splits for: its tasks, training, and the
    # local scorer, which trains on the train split and reads XDET_DATA_DIR like a plain lm_eval run
    data_dir = getattr(args, "data_dir", None)
    try:
        if data_dir and not Path(data_dir).expanduser().is_dir():
            raise XdetError(f"--data-dir {data_dir!r}: does not exist or is not a directory")
        with environment(**{ENV_DATA_DIR: str(Path(data_dir).expanduser().absolute()) if data_dir else None}):
            return int(args.func(args) or 0)
    except (XdetError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
            PermissionError) as err:
        print(f"xdet {command}: error: {_message(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _close_progress_bars()
        print(f"\nxdet {command}: interrupted; finished work is kept, nothing partial is left that looks "
              "complete; rerun the same command to resume", file=sys.stderr)
        return 130


def _close_progress_bars() -> None:
    """Close the bars an interrupt left open (the Trainer's, lm-eval's) now: closed later, at exit, their
    last redraw would land after the interrupt line, which must be the last thing printed."""
    tqdm_module = sys.modules.get("tqdm.std")
    for bar in list(getattr(getattr(tqdm_module, "tqdm", None), "_instances", ())):
        try:
            bar.close()
        except Exception:  # noqa: BLE001 - a bar that cannot close must not hide the interrupt line
            pass


def _message(err: Exception) -> str:
    """An OS error as what it means for an output path (``[Errno 17] File exists: 'x'`` says too little)."""
    if isinstance(err, (FileExistsError, NotADirectoryError)) and err.filename:
        return f"{err.filename}: exists and is not a folder; give a folder path (or a new name) for the output"
    return str(err)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
