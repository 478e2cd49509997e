"""The repro suite: the paper's tables as data, the table code on the paper's numbers, real runs vs paper.

``pytest repro/`` runs the transcription checks and the round trip (no results needed).
``pytest repro/ --results DIR`` (or ``XDET_REPRO_RESULTS=DIR``) also compares tables regenerated from
the runs in DIR (``xdet eval`` run folders or plain ``lm_eval --log_samples --output_path`` output)
with the paper's, using the thresholds in ``repro/tolerances.yaml``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from xdet.tables.compare import Tolerance
from xdet.tables.shape import ShapeTolerance
from xdet_tasks.names import TABLE_MEASURES

REPRO_DIR = Path(__file__).resolve().parent
TOLERANCES_FILE = REPRO_DIR / "tolerances.yaml"
PAPER_TEXT = REPRO_DIR.parents[1] / "shared" / "seed" / "breaking-mbad-paper.txt"
ENV_RESULTS = "XDET_REPRO_RESULTS"
ENV_MODE = "XDET_REPRO_MODE"
NO_RESULTS_REASON = (
    "no results to compare with the paper: pass --results DIR or set XDET_REPRO_RESULTS=DIR, where DIR "
    "holds run folders written by `xdet eval` or `lm_eval --log_samples --output_path` (a zero-shot run and "
    "X-FT runs of the paper's models; the 8B models need a GPU, which CI lacks)"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("xdet repro")
    group.addoption(
        "--results", default=None, help=f"results folder to compare with the paper (or ${ENV_RESULTS})"
    )
    group.addoption(
        "--tables-out", default=None, help="where to write the regenerated tables (default: a temp folder)"
    )
    group.addoption(
        "--from-samples", action="store_true",
        help="rebuild every number from the samples files alone (published samples, no scorer call)",
    )
    group.addoption(
        "--strategy-of", action="append", default=[], metavar="PATH=STRATEGY",
        help="plain lm_eval output: the strategy of runs whose adapter manifest is not here (as in xdet tables)",
    )
    group.addoption(
        "--newest", action="store_true",
        help="where a folder holds two results of a task made with different settings, use the newest (as in xdet tables)",
    )
    group.addoption(
        "--allow-different", action="append", default=[], metavar="SETTING[,SETTING]",
        help="settings a zero-shot and a fine-tuned run may differ in (as in xdet tables; default: none)",
    )
    group.addoption(
        "--mode", default=None, choices=("exact", "shape"),
        help=f"toxicity comparison: exact (per cell) or shape (Spearman, signs, best/worst source); default: "
        f"exact when the results were scored by Perspective like the paper's, else shape (or ${ENV_MODE})",
    )


def load_tolerances(path: Path = TOLERANCES_FILE) -> dict:
    """``{"toxicity": (metric, Tolerance), "perplexity": ..., "shape": {family: ShapeTolerance},
    "modes": {family: fixed mode}, "transcription_abs": x, "round_trip_abs": y}``."""
    with path.open(encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping")
    out: dict = {"shape": {}, "modes": {}}
    fields = {"cell_abs", "cell_rel", "sign_agreement_min", "spearman_min", "require_complete"}
    for family in TABLE_MEASURES:
        entry = dict(raw.get(family) or {})
        metric = entry.pop("metric", None)
        mode = entry.pop("mode", None)
        if mode is not None:
            if mode not in ("exact", "shape"):
                raise ValueError(f"{path}: {family}.mode {mode!r}: expected exact or shape")
            out["modes"][family] = mode
        shape = entry.pop("shape", None)
        if shape is not None:
            try:
                out["shape"][family] = ShapeTolerance(**shape)
            except TypeError as err:
                raise ValueError(f"{path}: section {family}.shape: {err}") from None
        unknown = set(entry) - fields
        if not metric or unknown or "cell_abs" not in entry:
            raise ValueError(
                f"{path}: section {family!r} needs metric and cell_abs; unknown keys {sorted(unknown)}"
            )
        out[family] = (metric, Tolerance(**entry))
    for key in ("transcription_abs", "round_trip_abs"):
        if not isinstance(raw.get(key), (int, float)):
            raise ValueError(f"{path}: {key!r} must be a number, got {raw.get(key)!r}")
        out[key] = float(raw[key])
    return out


@pytest.fixture(scope="session")
def tolerances() -> dict:
    return load_tolerances()


@pytest.fixture(scope="session")
def results_dir(request: pytest.FixtureRequest) -> Path:
    """The real results to compare (``--results`` / ``XDET_REPRO_RESULTS``); skips when none is given."""
    value = request.config.getoption("--results") or os.environ.get(ENV_RESULTS)
    if not value:
        pytest.skip(NO_RESULTS_REASON)
    path = Path(value)
    if not path.is_dir():
        pytest.fail(f"--results {path}: no such folder")
    return path


@pytest.fixture(scope="session")
def tables_out(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    value = request.config.getoption("--tables-out")
    return Path(value) if value else tmp_path_factory.mktemp("regenerated-tables")


@pytest.fixture(scope="session")
def paper_results(tmp_path_factory: pytest.TempPathFactory, tolerances: dict) -> Path:
    """A results folder whose numbers are the paper's (all 24 tables), in our run-folder format."""
    from xdet.tables.paper import write_paper_results

    out = tmp_path_factory.mktemp("paper-results")
    metrics = {family: tolerances[family][0] for family in TABLE_MEASURES}
    write_paper_results(out, n_samples=4, metrics=metrics)
    return out


@pytest.fixture(scope="session")
def paper_text() -> str:
    if not PAPER_TEXT.is_file():
        pytest.skip(f"the paper's text is not at {PAPER_TEXT} (../shared/seed next to the checkout)")
    return PAPER_TEXT.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def strategy_flags(request: pytest.FixtureRequest) -> list[str]:
    """The ``--strategy-of`` options again, for an ``xdet`` command the suite runs."""
    return [f"--strategy-of={value}" for value in request.config.getoption("--strategy-of")]


RUNS_KEY = pytest.StashKey[list]()
ALLOWED_KEY = pytest.StashKey[tuple]()
NOTICES_KEY = pytest.StashKey[list]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Read ``--results`` once, first: a folder that cannot be read (no samples files, a corrupt results
    file, an adapter whose strategy is unknown) stops the session with its one-line reason instead of
    failing every comparison with the same traceback."""
    from xdet.runs import read_results
    from xdet.runs.lm_eval_output import parse_strategy_of
    from xdet.runs.settings import check_allowed
    from xdet.tables.build import build_tables
    from xdet_tasks.errors import XdetError

    config = session.config
    value = config.getoption("--results") or os.environ.get(ENV_RESULTS)
    if not value or not Path(value).is_dir():
        return
    notices: list[str] = []
    try:
        allowed = check_allowed(config.getoption("--allow-different"))
        runs = read_results(value, from_samples=config.getoption("--from-samples"),
                            strategies=parse_strategy_of(config.getoption("--strategy-of")),
                            newest=config.getoption("--newest"), notices=notices)
        build_tables(runs, n_boot=0, allow_different=allowed)  # a Δ of incomparable runs stops here, in one line
    except XdetError as err:
        pytest.exit(f"--results {value}: {err}", returncode=2)
    config.stash[RUNS_KEY] = runs
    config.stash[ALLOWED_KEY] = allowed
    config.stash[NOTICES_KEY] = notices


@pytest.fixture(scope="session")
def real_runs(request: pytest.FixtureRequest, results_dir: Path) -> list:
    """The runs under ``--results``, read once at the start of the session."""
    return request.config.stash[RUNS_KEY]


@pytest.fixture(scope="session")
def allowed_differences(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """The ``--allow-different`` settings, checked at the start of the session."""
    return request.config.stash.get(ALLOWED_KEY, ())


@pytest.fixture(scope="session")
def repro_mode(request: pytest.FixtureRequest, real_runs: list, tolerances: dict) -> tuple[str, str]:
    """``(mode, why)`` of the toxicity comparison, from the scorer the results record (or ``--mode``)."""
    from xdet.tables.compare import choose_mode

    mode, why = choose_mode(real_runs, request.config.getoption("--mode") or os.environ.get(ENV_MODE))
    fixed = "".join(f"; {family} tables always in {m} mode ({TOLERANCES_FILE.name}: the units differ from the "
                    "paper's)" for family, m in tolerances["modes"].items())
    request.config.stash[MODE_KEY] = f"repro: toxicity tables compared in {mode} mode: {why}{fixed}"
    return mode, why


MODE_KEY = pytest.StashKey[str]()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    for notice in config.stash.get(NOTICES_KEY, []):
        terminalreporter.write_line(f"repro: note: {notice}")
    line = config.stash.get(MODE_KEY, None)
    if line:
        terminalreporter.write_line(line)
