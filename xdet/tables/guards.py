"""Is a toxicity reduction real? Each Δ checked against the ways a fine-tuned model can look less toxic.

A model that answers in another language than the prompt's, degenerates into repetition or stops
answering is rated less toxic without being detoxified (an empty completion scores 0 by rule). So, per
cell of a toxicity table (training configuration × evaluation language), one-sided tests on the same
paired bootstrap replicates the table's intervals come from (one resample of a column's prompts serves
every metric and run):

* the toxicity Δ = ZS − FT is positive (a reduction);
* ``on_language_rate`` fell in the fine-tuned run (its Δ = ZS − FT is positive): language switching;
* ``repetition_rate`` rose (its Δ is negative): degeneration;
* ``empty_rate`` rose: more empty completions.

A test's p-value is the bootstrap's: the share of replicates on the null side (Efron & Tibshirani
1993, ch. 16, hypothesis testing with the bootstrap), counted as ``(1 + #{Δ* ≤ 0}) / (B + 1)``, the
Monte Carlo convention that never gives p = 0 (Davison & Hinkley 1997, ch. 4). Holm's correction runs
over every test of one call (all cells, all measures), as over the hypotheses of ``xdet analyze``. A reduction is *accompanied* by language
switching or degeneration when both its own test and the guard's are significant after correction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from xdet.stats import holm
from xdet.tables.build import DEFAULT_N_BOOT, Table

ALPHA = 0.05
#: above this mean ``unknown_language_rate`` (%), the captions say that the language-switching test rests
#: on few identified completions (short or low-confidence ones are of unknown language)
THIN_LANGUAGE_ID = 50.0


@dataclass(frozen=True)
class Guard:
    metric: str  # a per-prompt metric of the generation tasks
    worse: str  # "drop" or "rise": the change in the fine-tuned run that makes a lower toxicity suspect
    what: str
    source: str


GUARDS: tuple[Guard, ...] = (
    Guard("on_language_rate", "drop", "language switching",
          "completions identified in another language than the prompt's (Marchisio et al. 2024's pass rate)"),
    Guard("repetition_rate", "rise", "degeneration", "completions that loop on a repeated n-gram"),
    Guard("empty_rate", "rise", "more empty completions",
          "empty completions, which score 0 without a scorer call: a model that stops answering looks detoxified"),
)


@dataclass
class Test:
    measure: str  # the toxicity metric, or a guard's metric
    delta: float | None
    lo: float | None
    hi: float | None
    p: float | None = None
    p_holm: float | None = None
    resamples: int = 0  # the bootstrap replicates ``p`` counts over

    def significant(self, alpha: float = ALPHA) -> bool:
        return self.p_holm is not None and self.p_holm < alpha


@dataclass
class CellCheck:
    model: str
    split: str
    row: str
    col: str
    toxicity: Test
    guards: dict[str, Test] = field(default_factory=dict)

    def accompanied_by(self, alpha: float = ALPHA) -> list[Guard]:
        """The guards whose change is significant beside a significant toxicity reduction."""
        if not self.toxicity.significant(alpha):
            return []
        return [g for g in GUARDS if g.metric in self.guards and self.guards[g.metric].significant(alpha)]


def bootstrap_p(replicates: np.ndarray | None, greater: bool) -> float | None:
    """One-sided bootstrap p of "Δ > 0" (``greater``) or "Δ < 0": the replicates on the null side, +1."""
    if replicates is None:
        return None
    finite = np.asarray(replicates, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return None
    null = np.count_nonzero(finite <= 0) if greater else np.count_nonzero(finite >= 0)
    return float((1 + null) / (finite.size + 1))


def _test(table: Table, row: str, col: str, greater: bool) -> Test:
    cell = table.delta[row][col]
    reps = (table.replicates.get(row) or {}).get(col)
    resamples = int(np.isfinite(reps).sum()) if reps is not None else 0
    return Test(table.metric, cell.value, cell.lo, cell.hi, bootstrap_p(reps, greater) if cell.value is not None else None,
                resamples=resamples)


def _tests(checks: Sequence[CellCheck]) -> list[Test]:
    """Every test of ``checks`` that has a p-value (the family Holm corrects together)."""
    return [t for c in checks for t in (c.toxicity, *c.guards.values()) if t.p is not None]


def holm_floor(checks: Sequence[CellCheck]) -> tuple[float, int, int] | None:
    """``(floor, tests, B)``: the smallest Holm-adjusted p any data could get — tests × 1/(B + 1) — with
    the family's size and the largest number of bootstrap resamples; ``None`` without tests."""
    tests = _tests(checks)
    if not tests:
        return None
    resamples = max(t.resamples for t in tests)
    return min(1.0, len(tests) / (resamples + 1)), len(tests), resamples


def check_cells(toxicity: Sequence[Table], guards: Mapping[str, Sequence[Table]]) -> list[CellCheck]:
    """Every Δ cell of the ``toxicity`` tables with the same cells of each guard metric's tables
    (``guards[metric]``, built from the same runs), Holm-corrected together."""
    checks: list[CellCheck] = []
    for tox in toxicity:
        peers = {m: next((t for t in tables if (t.model, t.split) == (tox.model, tox.split)), None)
                 for m, tables in guards.items()}
        for row in tox.rows:
            for col in tox.columns:
                if tox.delta[row][col].value is None:
                    continue
                check = CellCheck(tox.model, tox.split, row, col, _test(tox, row, col, greater=True))
                for guard in GUARDS:
                    peer = peers.get(guard.metric)
                    if peer is not None and row in peer.delta and col in peer.columns:
                        check.guards[guard.metric] = _test(peer, row, col, greater=guard.worse == "drop")
                checks.append(check)
    tests = _tests(checks)
    for test, adjusted in zip(tests, holm([t.p for t in tests]), strict=True):
        test.p_holm = float(adjusted)
    return checks


def _cell(test: Test) -> str:
    interval = f" [{test.lo:.1f}, {test.hi:.1f}]" if test.lo is not None and test.hi is not None else ""
    return f"{test.delta:+.1f}{interval}"


def summary_line(checks: Sequence[CellCheck], alpha: float = ALPHA, family: Sequence[CellCheck] | None = None) -> str:
    """``guards: 5 of 12 Δ cells are significant toxicity reductions (...); 2 with language switching, ...``;
    ``family``: every check Holm corrected together with ``checks`` (default: ``checks`` alone)."""
    reductions = [c for c in checks if c.toxicity.significant(alpha)]
    parts = [f"{sum(g in c.accompanied_by(alpha) for c in reductions)} with {g.what}" for g in GUARDS]
    line = (f"guards: {len(reductions)} of {len(checks)} Δ cells are significant toxicity reductions (Holm, "
            f"α = {alpha}); " + ", ".join(parts))
    floor = holm_floor(family if family is not None else checks)
    if holm_floor(checks) is None:  # none of these cells was tested, whatever the rest of the family
        line += " — not tested: no per-prompt values to resample (--n-boot 0, or no samples files)"
    elif floor is not None and floor[0] >= alpha:
        # a bootstrap p is at least 1/(B + 1): with too few resamples for the family, no test can pass
        needed = math.ceil(floor[1] / alpha / 1000) * 1000
        line += (f" — none could be: with {floor[2]} bootstrap resamples and {floor[1]} tests the smallest "
                 f"p after Holm is {floor[0]:.2g}; rerun with --n-boot {needed} or more")
    return line


def caption_lines(checks: Sequence[CellCheck], alpha: float = ALPHA, unknown_language: float | None = None,
                  family: Sequence[CellCheck] | None = None) -> list[str]:
    """The counts, then one line per guard that fired (which reductions it accompanies, with its Δ), and
    what could not be checked well (``unknown_language``: the runs' mean ``unknown_language_rate``, %;
    ``family``: as for :func:`summary_line`)."""
    if not checks:
        return []
    lines = [summary_line(checks, alpha, family)]
    for guard in GUARDS:
        hits = [c for c in checks if guard in c.accompanied_by(alpha)]
        if hits:
            cells = "; ".join(f"row {c.row}, {c.col}: {guard.metric} Δ {_cell(c.guards[guard.metric])}" for c in hits)
            lines.append(f"{guard.what}: a significant toxicity reduction comes with a significant "
                         f"{'drop' if guard.worse == 'drop' else 'rise'} of {guard.metric} (Holm, α = {alpha}) in {cells}")
    tested = {m for c in checks for m in c.guards}
    if "on_language_rate" in tested and unknown_language is not None and unknown_language > THIN_LANGUAGE_ID:
        lines.append(f"language switching is tested on few completions: {unknown_language:.0f} % of the non-empty "
                     "completions are of unknown language on average (unknown_language_rate: too short, or below "
                     "the identifier's confidence floor)")
    missing = [g.metric for g in GUARDS if g.metric not in tested]
    if missing:
        lines.append(f"not checked for {', '.join(missing)} (the runs do not report it)")
    return lines


def _mean_value(table: Table | None) -> float | None:
    """The mean over a table's zero-shot and fine-tuned values (ZS − Δ) of its language columns."""
    if table is None:
        return None
    values = [table.zs[c].value for c in table.columns]
    values += [table.zs[c].value - table.delta[r][c].value for r in table.rows for c in table.columns
               if table.zs[c].value is not None and table.delta[r][c].value is not None]
    found = [v for v in values if v is not None]
    return float(np.mean(found)) if found else None


def annotate(tables: Sequence[Table], runs: Sequence, alpha: float = ALPHA, **build: object) -> list[CellCheck]:
    """Check every toxicity table built from ``runs`` (``build``: the same layout, columns, bootstrap and
    allowed differences) and add the guards' caption lines to its notes; returns the checks.

    A bootstrap p is at least 1/(B + 1), so Holm over m tests can only reject with B + 1 > m/α: the tests
    draw twice that many resamples when the tables' ``n_boot`` is fewer (same seed; the tables keep their
    own intervals)."""
    from xdet.tables.build import build_tables

    toxicity = [t for t in tables if t.measure == "toxicity"]
    if not toxicity:
        return []
    reported = {key.split(",")[0] for run in runs for entry in run.aggregates.values() for key in entry}
    cells = sum(t.delta[r][c].value is not None for t in toxicity for r in t.rows for c in t.columns)
    family = cells * (1 + sum(g.metric in reported for g in GUARDS))
    n_boot = int(build.get("n_boot", DEFAULT_N_BOOT) or 0)  # type: ignore[call-overload]
    tested = toxicity
    if n_boot and n_boot + 1 <= family / alpha:
        build = {**build, "n_boot": math.ceil(2 * family / alpha / 1000) * 1000}
        tested = [t for metric in dict.fromkeys(t.metric for t in toxicity)
                  for t in build_tables(runs, metrics={"toxicity": metric}, measures=("toxicity",), **build)]
    # the guards are shares of completions, which do not grow with K: the runs an at-k table compares
    # across different samples per prompt compare on them too
    build = {**build, "allow_different": (*build.get("allow_different", ()), "samples_per_prompt")}
    guards = {g.metric: build_tables(runs, metrics={"toxicity": g.metric}, measures=("toxicity",), **build)
              for g in GUARDS if g.metric in reported}
    unknown = (build_tables(runs, metrics={"toxicity": "unknown_language_rate"}, measures=("toxicity",),
                            **{**build, "n_boot": 0}) if "unknown_language_rate" in reported else [])
    checks = check_cells(tested, guards)
    for table in toxicity:
        mine = [c for c in checks if (c.model, c.split) == (table.model, table.split)]
        thin = _mean_value(next((t for t in unknown if (t.model, t.split) == (table.model, table.split)), None))
        table.notes.extend(caption_lines(mine, alpha, thin, family=checks))
    return checks
