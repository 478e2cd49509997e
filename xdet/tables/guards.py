"""Is a toxicity reduction real? Each Δ checked against the ways a fine-tuned model can look less toxic.

A model that answers in another language than the prompt's, or degenerates into repetition, is rated
less toxic by most classifiers without being detoxified. So, per cell of a toxicity table (training
configuration × evaluation language), three one-sided tests on the same paired bootstrap replicates
the table's intervals come from (one resample of a column's prompts serves every metric and run):

* the toxicity Δ = ZS − FT is positive (a reduction);
* ``on_language_rate`` fell in the fine-tuned run (its Δ = ZS − FT is positive): language switching;
* ``repetition_rate`` rose (its Δ is negative): degeneration.

A test's p-value is the bootstrap's: the share of replicates on the null side (Efron & Tibshirani
1993, ch. 16, hypothesis testing with the bootstrap), counted as ``(1 + #{Δ* ≤ 0}) / (B + 1)``, the
Monte Carlo convention that never gives p = 0 (Davison & Hinkley 1997, ch. 4). Holm's correction runs over every test of one call (all cells, all three
measures), as over the hypotheses of ``xdet analyze``. A reduction is *accompanied* by language
switching or degeneration when both its own test and the guard's are significant after correction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from xdet.stats import holm
from xdet.tables.build import Table

ALPHA = 0.05


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
)


@dataclass
class Test:
    measure: str  # the toxicity metric, or a guard's metric
    delta: float | None
    lo: float | None
    hi: float | None
    p: float | None = None
    p_holm: float | None = None

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
    return Test(table.metric, cell.value, cell.lo, cell.hi, bootstrap_p(reps, greater) if cell.value is not None else None)


def check_cells(toxicity: Sequence[Table], guards: Mapping[str, Sequence[Table]], alpha: float = ALPHA) -> list[CellCheck]:
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
    tests = [t for c in checks for t in (c.toxicity, *c.guards.values()) if t.p is not None]
    for test, adjusted in zip(tests, holm([t.p for t in tests]), strict=True):
        test.p_holm = float(adjusted)
    return checks


def _cell(test: Test) -> str:
    interval = f" [{test.lo:.1f}, {test.hi:.1f}]" if test.lo is not None and test.hi is not None else ""
    return f"{test.delta:+.1f}{interval}"


def caption_lines(checks: Sequence[CellCheck], alpha: float = ALPHA) -> list[str]:
    """One line per guard that fired in a table: which reductions it accompanies, with its Δ."""
    lines = []
    for guard in GUARDS:
        hits = [c for c in checks if guard in c.accompanied_by(alpha)]
        if hits:
            cells = "; ".join(f"row {c.row}, {c.col}: {guard.metric} Δ {_cell(c.guards[guard.metric])}" for c in hits)
            lines.append(f"{guard.what}: a significant toxicity reduction comes with a significant "
                         f"{'drop' if guard.worse == 'drop' else 'rise'} of {guard.metric} (Holm, α = {alpha}) in {cells}")
    tested = {m for c in checks for m in c.guards}
    missing = [g.metric for g in GUARDS if g.metric not in tested]
    if checks and missing:
        lines.append(f"not checked for {', '.join(missing)} (the runs do not report it)")
    return lines


def annotate(tables: Sequence[Table], runs: Sequence, alpha: float = ALPHA, **build: object) -> list[CellCheck]:
    """Check every toxicity table built from ``runs`` (``build``: the same layout, columns, bootstrap and
    allowed differences) and add the guards' caption lines to its notes; returns the checks."""
    from xdet.tables.build import build_tables

    toxicity = [t for t in tables if t.measure == "toxicity"]
    if not toxicity:
        return []
    reported = {key.split(",")[0] for run in runs for entry in run.aggregates.values() for key in entry}
    # the guards are shares of completions, which do not grow with K: the runs an at-k table compares
    # across different samples per prompt compare on them too
    build = {**build, "allow_different": (*build.get("allow_different", ()), "samples_per_prompt")}
    guards = {g.metric: build_tables(runs, metrics={"toxicity": g.metric}, measures=("toxicity",), **build)
              for g in GUARDS if g.metric in reported}
    checks = check_cells(toxicity, guards, alpha)
    for table in toxicity:
        mine = [c for c in checks if (c.model, c.split) == (table.model, table.split)]
        table.notes.extend(caption_lines(mine, alpha))
    return checks
