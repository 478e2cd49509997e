"""Run folders: reading, writing and recognising them, one module per job.

* :mod:`~xdet.runs.record`: ``xdet_run.json``, the record written last (a run's identity, its strategy);
* :mod:`~xdet.runs.folder`: an ``xdet eval`` run folder as a :class:`~xdet.runs.folder.Run`;
* :mod:`~xdet.runs.lm_eval_output`: plain ``lm_eval --log_samples --output_path`` folders as runs;
* :mod:`~xdet.runs.samples`: lm-eval's samples files and their per-sample values;
* :mod:`~xdet.runs.fluency`: the fluency files ``xdet fluency`` writes beside them;
* :mod:`~xdet.runs.writer`: a run folder written from given per-sample values (the paper's numbers, tests);

:func:`read_results` recognises both kinds of folder under one path, which is what ``xdet tables``,
``xdet analyze`` and ``pytest repro --results`` read.
"""

from __future__ import annotations

from pathlib import Path

from xdet.runs.folder import Run, find_runs, read_run
from xdet.runs.lm_eval_output import read_plain_runs
from xdet.runs.record import RUN_FILE, ResultsError


def read_results(results_dir: str | Path, *, from_samples: bool = False, strategies: dict[str, str] | None = None,
                 newest: bool = False, notices: list[str] | None = None) -> list[Run]:
    """All complete runs under ``results_dir``: ``xdet eval`` run folders and plain ``lm_eval
    --log_samples --output_path`` output (:mod:`xdet.runs.lm_eval_output`; ``strategies`` are the
    ``--strategy-of`` answers for adapters whose manifest is not here). ``newest`` lets the newest of two
    differing results of one task win (``--newest``); results files that cannot be placed are named in
    ``notices``. None at all is an error."""
    root = Path(results_dir)
    if not root.is_dir():
        raise ResultsError(f"results folder not found: {root}")
    runs = [read_run(p, from_samples=from_samples, newest=newest) for p in find_runs(root)]
    runs += read_plain_runs(root, strategies, from_samples=from_samples, newest=newest, notices=notices)
    if not runs:
        raise ResultsError(
            f"{results_dir}: no results found: neither xdet eval run folders ({RUN_FILE}) nor lm_eval output "
            "(results_*.json with xdet tasks, from lm_eval --log_samples --output_path DIR)"
        )
    return runs
