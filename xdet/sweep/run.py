"""Running the sweep: the paper's experiment matrix -- train (or reuse) each adapter, evaluate it, tabulate.

A *configuration* is one model under one learning strategy: ``zs`` (the base model), ``x-ft:<lang>``
for every source language in ``--train-langs``, ``p-ft:<pct>`` for every ``--pcts`` percentage and
``m-ft`` (both pooled over ``--pool-langs``, default all nine as the released code pools them), and
optionally ``dpo``. Each configuration is evaluated on every ``xdet_*`` task of ``--eval-langs``, so
it fills one row of every table. Its id is ``<model>__<strategy>`` (``tiny__x-ft-de``) and it owns
two folders::

    <out>/adapters/<id>/   the LoRA adapter (``xdet train``'s output, reused when its manifest matches)
    <out>/runs/<id>/       the run folder (``xdet eval``'s output; ``xdet_run.json`` last = complete)
    <out>/tables/          ``xdet tables <out>/runs --langs all`` at the end (sharded: once all shards are done)

Resumable and idempotent: a configuration whose run folder is complete for the same request is
skipped without loading a model or calling the scorer; a half-written run folder or adapter (the run
was killed) is redone from scratch, so killing the sweep at any point and rerunning it loses and
doubles nothing. Several sweeps on one folder (two terminals, a local sweep beside a SLURM array)
share the work: each configuration is claimed first (:mod:`xdet.claims`); one held by another process
is put off until the others are done, then waited for, so every sweep's tables include it. ``--shard i/N`` runs configurations ``i, i+N, i+2N, ...`` of the matrix (0-based,
deterministic, disjoint, together complete). ``--executor slurm`` submits one job per configuration
through submitit (``submitit-local`` and ``submitit-debug`` take the same path without a cluster).

``--backend vllm`` evaluates with lm-eval's vLLM model and the adapter as a LoRA request
(``pretrained=<base>,lora_local_path=<adapter>,max_lora_rank=<r>``, see :func:`lm_eval_model_args`);
it needs a CUDA GPU, the ``vllm`` package and a causal model (vLLM does not serve mT5).
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path

from xdet.claims import claim
from xdet.evaluate import check_run_settings, data_record
from xdet.runs import read_results
from xdet.runs.record import ResultsError, read_run_info, read_run_record
from xdet.sweep.configuration import Outcome, SweepSettings, run_config
from xdet.sweep.matrix import SweepConfig, enumerate_matrix, parse_shard, shard
from xdet.sweep.scheduler import SlurmOptions
from xdet.tables.build import build_tables, row_label
from xdet.tables.guards import annotate
from xdet.tables.output import write_tables
from xdet_tasks.errors import XdetError
from xdet_tasks.io import atomic_write_json, environment, remove_partials, staged_dir
from xdet_tasks.languages import PAPER_TRAIN_LANGUAGES
from xdet_tasks.names import GENERATION
from xdet_tasks.scoring import get_scorer
from xdet_train.manifest import normalize_model_id
from xdet_train.model import check_model
from xdet_train.strategies import PAPER_PCTS

log = logging.getLogger(__name__)

EXECUTORS: tuple[str, ...] = ("local", "slurm", "submitit-local", "submitit-debug")
SWEEP_FILE = "sweep.json"
#: Seconds between two looks at configurations that other processes hold.
CLAIM_POLL_S = 1.0


# --------------------------------------------------------------------------------------------- executors


def make_executor(kind: str, folder: str | Path):
    """A submitit executor that runs the jobs on this machine: ``submitit-local`` or ``submitit-debug``."""
    import submitit

    cluster = {"submitit-local": "local", "submitit-debug": "debug"}.get(kind)
    if cluster is None:
        raise XdetError(f"--executor {kind!r}: expected one of {', '.join(EXECUTORS)}")
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    executor.update_parameters(name="xdet-sweep")
    return executor


def _run_submitit(configs: list[SweepConfig], settings: SweepSettings, kind: str, progress: bool) -> list[Outcome]:
    from tqdm.auto import tqdm

    executor = make_executor(kind, Path(settings.out) / "submitit")
    jobs = executor.map_array(run_config, configs, [settings] * len(configs))  # no status: another process
    print(f"submitted {len(jobs)} job(s) via submitit ({kind}); logs in {Path(settings.out) / 'submitit'}")
    outcomes = []
    for cfg, job in tqdm(list(zip(configs, jobs, strict=True)), desc="matrix", unit="config", disable=not progress):
        try:
            outcomes.append(job.result())
        except Exception as err:  # the job itself died
            outcomes.append(Outcome(cfg.id, cfg.strategy, "failed", error=f"job {job.job_id}: {err}"))
    return outcomes


def execute(configs: list[SweepConfig], settings: SweepSettings, executor: str = "local",
            slurm: SlurmOptions | None = None, progress: bool = True, fail_fast: bool = False,
            partition: str | None = None) -> list[Outcome]:
    """Run ``configs`` with ``executor``; outcomes in matrix order."""
    from tqdm.auto import tqdm

    if executor == "slurm":
        from xdet.console import verbose
        from xdet.sweep.slurm import run_slurm

        return run_slurm(configs, settings, slurm or SlurmOptions(), partition or "", quiet=not verbose())
    if executor != "local":
        return _run_submitit(configs, settings, executor, progress)
    outcomes: dict[str, Outcome] = {}
    deferred: list[SweepConfig] = []  # claimed by another process: run the others first, then come back
    bar = tqdm(configs, desc="matrix", unit="config", disable=not progress, file=sys.stderr)

    def one(cfg: SweepConfig) -> Outcome:
        outcome = run_config(cfg, settings, status=lambda step: bar.set_postfix_str(f"{cfg.id}: {step}"), wait=False)
        if outcome.status == "failed":
            log.error("configuration %s failed: %s", cfg.id, outcome.error)
        if outcome.status != "claimed":
            outcomes[cfg.id] = outcome
        return outcome

    stop = False
    for cfg in bar:
        outcome = one(cfg)
        if outcome.status == "claimed":
            log.info("%s: %s; running the other configurations first, then waiting for it", cfg.id, outcome.error)
            deferred.append(cfg)
        elif outcome.status == "failed" and fail_fast:
            stop = True
            break
    if deferred and not stop:
        log.info("waiting for %d configuration(s) claimed by other processes: %s", len(deferred),
                 ", ".join(c.id for c in deferred))
    while deferred and not stop:  # whichever is released first runs first; an abandoned claim is taken over
        for cfg in list(deferred):
            outcome = one(cfg)
            if outcome.status != "claimed":
                deferred.remove(cfg)
                stop = outcome.status == "failed" and fail_fast
                if stop:
                    break
        if deferred and not stop:
            time.sleep(CLAIM_POLL_S)
    return [outcomes[c.id] for c in configs if c.id in outcomes]


# --------------------------------------------------------------------------------------------- the sweep


def write_sweep_tables(out: str | Path, *, n_boot: int = 1000,
                       png: bool = True, metrics: dict[str, str] | None = None) -> list:
    """``xdet tables <out>/runs --out <out>/tables --langs all`` (every file atomic; same runs -> same tables)."""
    runs = read_results(Path(out) / "runs")
    tables = build_tables(runs, metrics=metrics, n_boot=n_boot, seed=0)
    annotate(tables, runs, n_boot=n_boot, seed=0)  # language switching, degeneration, empty completions beside each Δ
    if not tables:
        raise XdetError(f"{out}/runs: no toxicity/perplexity results to tabulate")
    with claim(Path(out) / "tables"):  # another sweep on this folder may be writing them too
        remove_partials(out, "tables")  # left by a sweep killed while writing them
        with staged_dir(Path(out) / "tables", replace=True) as staging:  # the folder appears complete or not at all
            write_tables(tables, staging, png=png)
    return tables


def summary_text(outcomes: list[Outcome], deltas: dict[str, str] | None = None, split: str = "toxic-test") -> str:
    """Per configuration: status, adapter, time, the headline Δ (when the tables were built), any error."""
    from tabulate import tabulate

    jobs = any(o.job for o in outcomes)
    headers = ["configuration", "status", *(["job"] if jobs else []), "adapter", "seconds"]
    headers += [f"Δ AT {split}, mean over languages [95% CI]"] if deltas is not None else []
    rows = []
    for o in outcomes:
        row = [o.config, o.status, *([o.job or "-"] if jobs else []), o.adapter, f"{o.seconds:.1f}"]
        row += [deltas.get(o.config, "—" if o.strategy != "zs" else "(baseline)")] if deltas is not None else []
        rows.append(row + [o.error[:100]])
    table = tabulate(rows, headers=[*headers, "error"], tablefmt="github", disable_numparse=True)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    counts |= {s: sum(o.status == s for o in outcomes) for s in dict.fromkeys(o.status for o in outcomes)}
    return table + "\n" + ", ".join(f"{n} {s}" for s, n in counts.items())


def sweep(
    models: list[str],
    strategies: list[str],
    settings: SweepSettings,
    *,
    train_langs: tuple[str, ...] = PAPER_TRAIN_LANGUAGES,
    pcts: tuple[int, ...] = PAPER_PCTS,
    shard_spec: str | None = None,
    executor: str = "local",
    slurm: SlurmOptions | None = None,
    progress: bool = True,
    fail_fast: bool = False,
    tables: bool = True,
    n_boot: int = 1000,
    dry_run: bool = False,
) -> list[Outcome]:
    """Enumerate, run this shard of the matrix, then write the tables once every configuration is complete."""
    tasks = settings.tasks()  # refuses unknown languages, families and suites
    check_run_settings(limit=settings.limit, device=settings.device, repeats=settings.repeats, backend=settings.backend)
    settings.train.validate()  # a bad hyper-parameter fails now, not after the configurations before it
    matrix = enumerate_matrix(models, strategies, train_langs, pcts, settings.pool_langs)
    index, count = parse_shard(shard_spec)
    partition = None
    if executor == "slurm" and not dry_run:  # an impossible job request is refused before anything exists
        partition = (slurm or SlurmOptions()).check()
    if not dry_run:
        for model in dict.fromkeys(models):  # config, tokenizer and LoRA targets: no weight is read
            trains = any(c.trains for c in matrix if c.model == model)
            check_model(model, train=settings.train if trains else None)
        if GENERATION.key in settings.families:  # the scorer too, before any training or model loading
            scorer = get_scorer(settings.scorer)
            for lang in settings.eval_langs:
                scorer.check_language(lang)
        with environment(**dict(settings.sources)):
            data_record(tasks)  # the natural-prompt data too: a bad file is named before any training
    mine = shard(matrix, index, count)
    print(
        f"xdet sweep: {len(matrix)} configuration(s) ({sum(c.trains for c in matrix)} with an adapter, trained or reused) x "
        f"{len(settings.eval_langs)} evaluation language(s) = {len(matrix) * len(settings.eval_langs)} cells per "
        f"split; {len(tasks)} lm-eval tasks per configuration"
        + (f"; shard {index}/{count}: {len(mine)} configuration(s)" if count > 1 else "")
    )
    if dry_run:
        for cfg in mine:
            print(f"  {cfg.id}\t{cfg.strategy}\t{cfg.model}")
        return []
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / SWEEP_FILE, {
        "schema": "xdet-sweep/1",
        "models": [normalize_model_id(m) for m in models],
        "strategies": list(strategies),
        "train_langs": list(train_langs),
        "pcts": list(pcts),
        "settings": asdict(settings),
        "configurations": [cfg.id for cfg in matrix],
    })
    outcomes = execute(mine, settings, executor, slurm, progress, fail_fast, partition)
    built = None
    note = ""
    flying = sum(o.status not in ("done", "skipped", "failed") for o in outcomes)
    if flying:
        note = (f"{flying} job(s) in flight; rerun this command to check on them and write the tables from what is "
                "complete (without --detach it waits for them)\n")
    if tables:
        complete = [cfg for cfg in matrix if read_run_record(settings.run_dir(cfg)) is not None]
        if len(complete) == len(matrix) or (count == 1 and complete):
            built = write_sweep_tables(out, n_boot=n_boot)
            note += f"tables: {out / 'tables'} (from {len(complete)} of {len(matrix)} configuration(s))"
        elif flying:
            note += "tables not written yet: no configuration is complete"
        elif count == 1:
            note = "tables not written: no configuration completed (errors above); rerun the same command to retry"
        else:
            note = (f"tables not written: {len(complete)} of {len(matrix)} configuration(s) complete; after the "
                    f"other shards finish, run `xdet tables {out / 'runs'} --out {out / 'tables'}`")
    print(summary_text(outcomes, headline_deltas(built, settings, mine) if built else None,
                       headline_set(built) if built else "toxic-test"))
    if note:
        print(note.rstrip())
    return outcomes


def headline_set(tables: list) -> str:
    """The set the summary's Δ column shows: toxic-test, else the first natural-prompt suite evaluated."""
    splits = [t.split for t in tables if t.measure == "toxicity"]
    return "toxic-test" if "toxic-test" in splits or not splits else splits[0]


def headline_deltas(tables: list, settings: SweepSettings, configs: list[SweepConfig]) -> dict[str, str]:
    """Per configuration: its Δ AT on :func:`headline_set` averaged over the evaluation languages, with its interval."""
    split = headline_set(tables)
    table = {t.model: t for t in tables if t.measure == "toxicity" and t.split == split}
    out = {}
    for cfg in configs:
        try:
            info = read_run_info(settings.run_dir(cfg))
        except ResultsError:
            continue
        t = table.get(info.model_name)
        label = row_label(info)
        cell = t.delta.get(label, {}).get("AVG") if t is not None else None
        if cell is not None and cell.value is not None:
            ci = f" [{cell.lo:.1f}, {cell.hi:.1f}]" if cell.lo is not None else ""
            out[cfg.id] = f"{cell.value:+.1f}{ci}"
    return out
