"""Command-line flags generated from a config dataclass, as TRL and PEFT generate theirs.

``--field-name`` per field, type from the annotation, help and choices from the field metadata, the
default shown in the help. One helper serves ``xdet train`` and ``xdet sweep``: a flag that collides
with one of the command's own options (the sweep's evaluation ``--batch-size``) gets the ``prefix``
(``--train-batch-size``), so the two commands share every other name. transformers'
``HfArgumentParser`` builds whole parsers with underscore aliases and cannot rename a colliding
flag, hence this small helper.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from xdet.evaluate import BACKENDS
from xdet.runs.settings import ALLOWABLE as SETTING_KEYS
from xdet_tasks.errors import DataError
from xdet_tasks.names import DEFAULT_METRICS, FAMILY_KEYS
from xdet_tasks.scoring.base import ENV_SCORER
from xdet_tasks.suites import ptp, rtplx
from xdet_tasks.suites.protocols import PROTOCOLS
from xdet_tasks.suites.records import SUITES, check_language


def csv_list(value: str) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")``; an empty list is refused, never read as "all" (an unset
    shell variable must not launch a full evaluation)."""
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {value!r}")
    return items


def add_metric_flag(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """``--metric [MEASURE=]METRIC``, repeatable: the metric a table (and its analysis) shows per measure;
    ``--on-language-only``: its toxicity over the completions in the prompt's language."""
    default = default or ", ".join(f"{f}={m}" for f, m in DEFAULT_METRICS.items())
    parser.add_argument(
        "--metric", action="append", metavar="[MEASURE=]METRIC",
        help=f"metric per measure, repeatable (default: {default}); "
        "e.g. --metric toxic_rate, --metric perplexity=word_perplexity, or --metric toxicity=on_language_rate "
        "(share of non-empty completions in the prompt's language: its Δ table shows language switching)",
    )
    parser.add_argument(
        "--on-language-only", action="store_true",
        help="toxicity over the completions identified as the prompt's language only (avg_toxicity -> "
        "avg_toxicity_on_language; prompts without one are left out) (default: every completion)",
    )


def add_fluency_model_flag(parser: argparse.ArgumentParser) -> None:
    """``--fluency-model REF``: which reference's fluency files to read where a folder has several."""
    parser.add_argument(
        "--fluency-model", metavar="REF",
        help="with --metric fluency: the reference model whose fluency files to read (as given to xdet fluency "
        "--model, its name or its identity hash), where a folder holds several (default: the only one there)")


def add_strategy_of_flag(parser: argparse.ArgumentParser) -> None:
    """``--strategy-of KEY=SPEC``: the strategy of a plain lm_eval run whose adapter manifest is not here."""
    parser.add_argument(
        "--strategy-of", action="append", metavar="PATH=STRATEGY",
        help="for plain lm_eval output: the strategy of the runs in a folder (or of an adapter path as "
        "model_args gave it) whose adapter manifest is not on this machine, e.g. results/ft-de=x-ft:de; "
        "repeatable (default: read from each adapter's xdet_adapter.json)",
    )


def add_results_flags(parser: argparse.ArgumentParser) -> None:
    """How results are read and compared: ``--strategy-of``, ``--newest``, ``--allow-different``."""
    add_strategy_of_flag(parser)
    parser.add_argument(
        "--newest", action="store_true",
        help="where one folder holds two results of a task made with different settings (limit, sampling, "
        "seed, scorer, ...), use the newest (default: refuse, naming both files and how they differ)")
    parser.add_argument(
        "--allow-different", action="append", default=[], metavar="SETTING[,SETTING]",
        help="take a Δ between a zero-shot and a fine-tuned run even though they differ in these settings "
        f"({', '.join(SETTING_KEYS)}, or all); the tables' captions then say so (default: refuse such a Δ; never across scorers)")
    add_validity_cards_flag(parser)


def add_validity_cards_flag(parser: argparse.ArgumentParser) -> None:
    """``--validity-cards PATH``: scorer validity cards to show beside toxicity numbers."""
    parser.add_argument(
        "--validity-cards", action="append", default=[], metavar="PATH",
        help="a scorer validity card (JSON from `xdet scorer evaluate --against rtplx --save`) or a folder of them, "
        "shown beside toxicity numbers before this machine's own; repeatable (default: $XDET_VALIDITY_CARDS, then "
        "the cards saved on this machine)")


def validity_cards_env(args: argparse.Namespace) -> dict[str, str | None]:
    """``--validity-cards`` as ``XDET_VALIDITY_CARDS`` (before the variable's own paths), for the command's
    ``environment(...)``; every card is read now, so a bad one is named before any work."""
    import os

    from xdet.validity.cards import ENV_CARDS, load_cards
    from xdet_tasks.io import environment

    paths = list(getattr(args, "validity_cards", None) or [])
    env = {ENV_CARDS: os.pathsep.join([*paths, *filter(None, [os.environ.get(ENV_CARDS)])]) if paths else None}
    with environment(**env):
        load_cards()
    return env


def results_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of :func:`xdet.runs.read_results` and the allowed differences, checked."""
    from xdet.runs.lm_eval_output import parse_strategy_of
    from xdet.runs.settings import check_allowed

    return {"strategies": parse_strategy_of(args.strategy_of), "newest": args.newest,
            "allow_different": check_allowed(args.allow_different)}


def print_notices(command: str, notices: list[str]) -> None:
    """Results files that could not be placed, one line each (never only in a log)."""
    for notice in notices:
        print(f"xdet {command}: note: {notice}", file=sys.stderr)


def lang_list(value: str) -> tuple[str, ...]:
    """:func:`csv_list` of known language codes (a typo is refused, not shown as an empty column)."""
    try:
        return tuple(check_language(code) for code in csv_list(value))
    except DataError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def batch_size_arg(value: str) -> str:
    """lm-eval's batch size: a positive integer, ``auto`` or ``auto:N`` (re-detected N times)."""
    number = value.removeprefix("auto:") if value.startswith("auto:") else value
    if value != "auto" and not (number.isdigit() and int(number) > 0):
        raise argparse.ArgumentTypeError(f"expected a positive integer, 'auto' or 'auto:N', got {value!r}")
    return value


def positive_int(value: str) -> int:
    """An integer of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _base_type(annotation: Any) -> Any:
    """``int | None`` -> ``int``; ``tuple[str, ...] | None`` -> ``tuple``."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = args[0]
    return typing.get_origin(annotation) or annotation


def add_dataclass_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    prefix: str = "",
    taken: set[str] | None = None,
) -> dict[str, str]:
    """Add one flag per field of ``cls``; returns ``{argparse dest: field name}``.

    ``taken`` holds option strings the command already uses; a field whose flag is taken is added
    as ``--<prefix><name>`` instead.
    """
    hints = typing.get_type_hints(cls)
    taken = set(taken or ())
    dests: dict[str, str] = {}
    for f in fields(cls):
        flag = "--" + f.name.replace("_", "-")
        if flag in taken:
            flag = f"--{prefix}{f.name.replace('_', '-')}"
        names = [flag, *f.metadata.get("aliases", ())]
        dest = flag[2:].replace("-", "_")
        default = f.default if f.default is not MISSING else None
        kind = _base_type(hints[f.name])
        options: dict[str, Any] = {"dest": dest, "default": None}
        text = f.metadata.get("help", "")
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
            options["help"] = f"{text} (default: {'on' if default else 'off'})"
        else:
            options["type"] = csv_list if kind is tuple else kind
            options["metavar"] = "A,B,..." if kind is tuple else f.name.upper()
            if "choices" in f.metadata:
                options["choices"] = f.metadata["choices"]
            shown = "none" if default is None else default
            options["help"] = text if "default" in text else f"{text} (default: {shown})"
        parser.add_argument(*names, **options)
        dests[dest] = f.name
        taken.update(names)
    return dests


def dataclass_from_flags(cls: type, args: argparse.Namespace, dests: dict[str, str]) -> Any:
    """An instance of ``cls`` from the parsed flags: fields left unset keep the dataclass default."""
    values = {name: getattr(args, dest) for dest, name in dests.items() if getattr(args, dest) is not None}
    return cls(**values)


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string ``parser`` already defines (to pass as ``taken``)."""
    return set(parser._option_string_actions)


def add_run_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The evaluation settings ``xdet eval`` and ``xdet sweep`` share, with one help text each."""
    parser.add_argument("--families", type=csv_list, default=FAMILY_KEYS,
                        help=f"task families (default: {','.join(FAMILY_KEYS)})")
    parser.add_argument("--limit", type=int, help="documents per task, for smoke runs (default: all)")
    parser.add_argument("--batch-size", type=batch_size_arg, default="8", help="lm-eval batch size, an integer or 'auto' (default: 8)")
    parser.add_argument("--device", help="torch device, e.g. cuda:0 (default: cuda if available, else cpu)")
    parser.add_argument("--scorer", help=f"toxicity scorer: textdetox, textdetox-v1, local, hf:<model>, perspective, "
                        "or a scorer per language: 'a|b' (each language scored by the first that covers it) "
                        f"(default: ${ENV_SCORER}, else textdetox)")
    parser.add_argument("--data-dir", help="released split files directory (default: $XDET_DATA_DIR, else the hub)")
    parser.add_argument("--seed", type=int, default=1234, help="evaluation sampling seed (default: 1234)")
    parser.add_argument("--repeats", type=int,
                        help="K completions per prompt for expected maximum toxicity (default: 1)")
    parser.add_argument("--model-args", default="",
                        help="extra lm-eval model_args, e.g. dtype=bfloat16 (default: none)")
    parser.add_argument("--backend", choices=BACKENDS, default="hf",
                        help="lm-eval model backend: hf, or vllm (CUDA GPU + vllm package) (default: hf)")
    parser.add_argument("--protocol", choices=PROTOCOLS,
                        help="sampling protocol of every generation task: "
                        + "; ".join(p.describe() for p in PROTOCOLS.values())
                        + " (default: each suite's own: " + ", ".join(f"{s.key} {s.protocol}" for s in SUITES.values()) + ")")
    add_natural_source_flags(parser)


def add_natural_source_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Where the natural-prompt suites' data comes from (each flag sets its environment variable)."""
    parser.add_argument("--rtplx-dir", help=f"folder of RTP-LX release files {rtplx.FILE_PREFIX}<LOCALE>.json "
                        f"(default: ${rtplx.ENV_DIR}, else the hub copy {rtplx.HUB_DATASET})")
    parser.add_argument("--rtplx-locales", metavar="LANG=LOCALE,...",
                        help=f"RTP-LX locale per language, e.g. zh=ZH-Hant,pt=PT-BR (default: ${rtplx.ENV_LOCALES}, "
                        "else ZH-Hans for zh and PT for pt)")
    parser.add_argument("--ptp-split", choices=ptp.SPLITS,
                        help=f"PolygloToxicityPrompts split (default: ${ptp.ENV_SPLIT}, else {ptp.DEFAULT_SPLIT})")


def natural_sources(args: argparse.Namespace) -> dict[str, str | None]:
    """The natural-prompt source flags as environment variables, checked now (before anything exists)."""
    rtplx_dir = getattr(args, "rtplx_dir", None)
    locales = getattr(args, "rtplx_locales", None)
    if rtplx_dir:
        rtplx.resolve_dir(rtplx_dir)
    if locales is not None:
        rtplx.chosen_locales(locales)
    return {
        rtplx.ENV_DIR: str(Path(rtplx_dir).expanduser().absolute()) if rtplx_dir else None,
        rtplx.ENV_LOCALES: locales,
        ptp.ENV_SPLIT: getattr(args, "ptp_split", None),
    }
