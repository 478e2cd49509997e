"""The README says what the code does: its test command is CI's, its analysis table is the analysis's."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BEGIN, END = "<!-- xdet analyze --paper: begin -->", "<!-- xdet analyze --paper: end -->"


def test_the_readme_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    (readme,) = re.findall(r"^\.venv/bin/pytest .*$", README, flags=re.M)
    assert ci == readme


def test_the_readme_analysis_table_is_current():
    """Regenerate with: python -c 'from tests.test_readme import current_table; print(current_table())'."""
    printed = README[README.index(BEGIN) + len(BEGIN):README.index(END)].strip()
    assert printed == current_table(), "the README's analysis table is stale: paste current_table() between the markers"


def current_table() -> str:
    from xdet.analyze import run_analysis, summary_markdown
    from xdet.analyze.sources import paper_matrices

    return summary_markdown(run_analysis(paper_matrices())).strip()


def test_every_test_the_guarantees_name_exists():
    names = re.findall(r"`((?:tests|repro)/[\w/]+\.py)(?:::(\w+))?`", README)
    assert len(names) > 20
    for path, test in names:
        source = (ROOT / path).read_text(encoding="utf-8")
        assert not test or f"def {test}(" in source, f"{path}::{test} named in the README does not exist"


def readme_commands() -> list[str]:
    """Every command of the README's ``bash`` blocks, continuation lines joined."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        commands += [c.strip() for c in block.replace("\\\n", " ").splitlines() if c.strip()]
    return commands


def test_every_readme_command_runs_in_a_fresh_shell():
    """No bare `xdet`/`lm_eval` (a fresh shell has no activated venv), no `<placeholder>` or `[optional]`
    argument that cannot run as written, and every `xdet` command parses with xdet's own parser."""
    import shlex

    from xdet.cli import build_parser

    commands = readme_commands()
    assert len(commands) > 10
    parser = build_parser()
    for command in commands:
        assigned = re.match(r'^[A-Z_]+="(.*)"$', command)  # SWEEP=".venv/bin/xdet sweep ..." then $SWEEP
        command = assigned.group(1) if assigned else command
        programs = [part.split()[0] for part in re.split(r"&&|\|", command)]
        for program in programs:
            # squeue: SLURM's own, on a cluster's login node
            assert program.startswith((".venv/bin/", "export", "python3", "XDET_", "#", "$", "squeue")), command
        assert not re.search(r"<[a-z][^>]*>|\s\[--?\w", command), f"placeholder in: {command}"
        for part in re.split(r"&&", command):
            words = shlex.split(re.sub(r'"\$\([^)]*\)"', "DIR", part), comments=True)
            words = [w for w in words if not re.match(r"^[A-Z_]+=", w)]
            if words and words[0] == ".venv/bin/xdet":
                args, unknown = parser.parse_known_args(words[1:])
                assert not unknown, f"{command}: unknown {unknown}"
