"""Every option of every ``xdet`` subcommand explains itself and shows its default."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from xdet.cli import build_parser
from xdet_tasks import __version__

XDET = Path(sys.executable).with_name("xdet")


def _subparsers(parser: argparse.ArgumentParser, prefix: str = "xdet"):
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _subparsers(sub, f"{prefix} {name}")


def _problems(parser: argparse.ArgumentParser) -> list[str]:
    out = []
    for name, sub in _subparsers(parser):
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction | argparse._VersionAction | argparse._SubParsersAction):
                continue
            flag = "/".join(action.option_strings) or action.dest
            text = action.help or ""
            if not text.strip() or text == argparse.SUPPRESS:
                out.append(f"{name} {flag}: no help text")
                continue
            switch = isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction | argparse.BooleanOptionalAction)
            if action.option_strings and not action.required and not switch and "default" not in text:
                out.append(f"{name} {flag}: the help does not show the default")
    return out


def test_every_option_has_help_and_shows_its_default():
    parser = build_parser()
    assert len(list(_subparsers(parser))) >= 10  # every command and the scorer subcommands
    problems = _problems(parser)
    assert not problems, "\n".join(problems)


def test_the_walker_finds_an_option_without_help():
    parser = argparse.ArgumentParser(prog="x")
    sub = parser.add_subparsers().add_parser("cmd")
    sub.add_argument("--quiet-flag", type=int, default=3)
    sub.add_argument("--documented", type=int, default=3, help="how many (default: 3)")
    sub.add_argument("--no-default-shown", type=int, default=3, help="how many")
    assert _problems(parser) == ["xdet cmd --quiet-flag: no help text", "xdet cmd --no-default-shown: the help does not show the default"]


def test_a_usage_mistake_is_one_line_naming_the_help():
    proc = subprocess.run([str(XDET), "tables", "r", "--out", "t", "--no-such-flag"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "xdet tables: error: unrecognized arguments: --no-such-flag (see xdet tables --help)"]


def test_version_and_verbose_after_the_command():
    proc = subprocess.run([str(XDET), "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"xdet {__version__}"
    args = build_parser().parse_args(["tables", "r", "--out", "t", "-v"])
    assert args.verbose is True
    assert build_parser().parse_args(["tables", "r", "--out", "t"]).verbose is False
