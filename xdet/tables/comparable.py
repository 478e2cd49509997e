"""A Δ is comparable or refused: the checks every table makes before it subtracts two runs.

Used by ``xdet tables``, ``xdet analyze`` (which reads tables or builds them) and ``pytest repro
--results`` alike, since all three build their Δs with :func:`xdet.tables.build.build_tables`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from xdet.runs.folder import Run
from xdet.runs.record import ResultsError
from xdet.runs.settings import ALLOWABLE, describe, differences
from xdet_tasks.metrics import at_k
from xdet_tasks.names import parse_task


def refuse_few_shot(runs: Sequence[Run]) -> None:
    """The benchmark is zero-shot; lm-eval would have drawn the examples from the test split itself."""
    for run in runs:
        for task, found in sorted(run.settings.items()):
            shots = found.get("num_fewshot")
            if parse_task(task) and isinstance(shots, int) and shots > 0:
                raise ResultsError(
                    f"{run.path}: {task} ran with {shots} few-shot example(s) (lm_eval --num_fewshot): the benchmark is "
                    "zero-shot, and lm-eval draws the examples from the test split; rerun without --num_fewshot")


def column_scorer(task: str, runs: Iterable[Run | None]) -> str | None:
    """The scorer of a column: its runs agree (a Δ across scorers is refused), so the first one that has it."""
    return next((r.settings[task].get("scorer") for r in runs
                 if r is not None and task in r.settings and r.settings[task].get("scorer")), None)


def check_comparable(task: str, zs: Run, ft: Run, row: str, allowed: tuple[str, ...],
                      seen: dict[str, list[str]]) -> None:
    """Refuse a Δ between runs made with different settings, but those the user allowed (then noted)."""
    if task not in zs.settings or task not in ft.settings:
        return
    diff = differences(zs.settings[task], ft.settings[task])
    blocking = {key: how for key, how in diff.items() if key not in allowed or key not in ALLOWABLE}
    if blocking:
        overridable = [key for key in blocking if key in ALLOWABLE]
        way = (f", or pass --allow-different {','.join(overridable)} to tabulate anyway (the tables then say so)"
               if len(overridable) == len(blocking) else
               " (a Δ across scorers is never taken: their numbers are different metrics)")
        raise ResultsError(
            f"Δ {task} row {row}: the zero-shot run ({zs.path}) and the fine-tuned run ({ft.path}) differ in "
            f"{describe(blocking)}, so their numbers do not measure the same thing: rerun one with the other's "
            f"settings{way}")
    for key, how in diff.items():
        seen.setdefault(key, []).append(f"row {row}, {task.rsplit('_', 1)[-1]}: {how}")


def run_metric(run: Run, task: str, metric: str) -> str:
    """The metric under which ``run`` holds ``metric`` for ``task``: an at-k estimate (``toxicity_probability_at_10``)
    is the plain metric in a run with K = k samples per prompt (the estimate at k = K is the plain value),
    and a run with fewer than k samples is refused, naming it and its K. A run whose K is not recorded
    gives its own at-k value, if it has one."""
    parsed = at_k.parse_metric(metric)
    samples = samples_per_prompt(task, run)
    if parsed is None or samples is None:
        return metric
    base, k = parsed
    if k > samples:
        raise ResultsError(
            f"{metric}: {run.path} has K = {samples} sample(s) per prompt for {task}, and an estimate at k = {k} "
            f"needs k <= K; tabulate at a k of at most {samples} (--at-k) or leave this run out")
    return base if k == samples else metric


def samples_per_prompt(task: str, run: Run | None) -> int | None:
    """K of ``run``'s ``task`` where its files record it."""
    found = run.settings.get(task, {}).get("samples_per_prompt") if run is not None else None
    return found if isinstance(found, int) else None
