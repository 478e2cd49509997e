"""``xdet sweep``: the paper's experiment matrix -- train (or reuse) each adapter, evaluate it, tabulate.

A *configuration* is one model under one learning strategy: ``zs`` (the base model), ``x-ft:<lang>``
for every source language in ``--train-langs``, ``p-ft:<pct>`` for every ``--pcts`` percentage and
``m-ft`` (both pooled over ``--pool-langs``, default all nine as the released code pools them), and
optionally ``dpo``. Each configuration is evaluated on every ``xdet_*`` task of ``--eval-langs``, so
it fills one row of every table. Its id is ``<model>__<strategy>`` (``tiny__x-ft-de``) and it owns
two folders::

    <out>/adapters/<id>/   the LoRA adapter (``xdet train``'s output, reused when its manifest matches)
    <out>/runs/<id>/       the run folder (``xdet eval``'s output; ``xdet_run.json`` last = complete)
    <out>/tables/          ``xdet tables <out>/runs --langs all`` at the end (sharded: once all shards are done)

**How our count relates to the paper's "392 configurations".** With the paper's four models, seven
source and seven evaluation languages and P-FT at 10/20/30 %, this matrix has 4 x (1 ZS + 7 X-FT +
3 P-FT + 1 M-FT) = 48 configurations (48 adapters or base models to evaluate, 44 trainings), which
fill 4 x 12 x 7 = 336 (configuration, evaluation language) cells per split and metric. The paper's
own breakdown does not add up to 392 either way: per model it lists 7 ZS + 49 X-FT pairs + 21 P-FT +
7 M-FT = 84 cells (336 for four models), while its Section A.2 counts "81 language pairs" and "27"
P-FT settings (nine languages: 7 + 81 + 27 + 7 = 122 per model, 488 in all); 392 = 4 x 98 matches
neither. ``xdet sweep`` prints its configuration and cell counts so a run can be compared with either
reading; :func:`paper_matrix_size` gives ours for the paper's setting.

Resumable and idempotent: a configuration whose run folder is complete for the same request is
skipped without loading a model or calling the scorer; a half-written run folder or adapter (the run
was killed) is redone from scratch, so killing the sweep at any point and rerunning it loses and
doubles nothing. ``--shard i/N`` runs configurations ``i, i+N, i+2N, ...`` of the matrix (0-based,
deterministic, disjoint, together complete). ``--executor slurm`` submits one job per configuration
through submitit (``submitit-local`` and ``submitit-debug`` take the same path without a cluster).

``--backend vllm`` evaluates with lm-eval's vLLM model and the adapter as a LoRA request
(``pretrained=<base>,lora_local_path=<adapter>,max_lora_rank=<r>``, see :func:`lm_eval_model_args`);
it needs a CUDA GPU, the ``vllm`` package and a causal model (vLLM does not serve mT5).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import re
import shutil
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from xdet_tasks.data import LANGUAGES, PAPER_EVAL_LANGUAGES, PAPER_TRAIN_LANGUAGES, check_language
from xdet_tasks.io import atomic_write_json
from xdet_train.errors import XdetError
from xdet_train.evaluate import (  # noqa: F401 - lm_eval_model_args is part of the sweep's API
    BACKENDS,
    FAMILIES,
    lm_eval_model_args,
    model_display_name,
    read_run,
    run_eval,
    task_names,
)
from xdet_train.strategies import KINDS, PAPER_PCTS, parse_strategy
from xdet_train.train import TrainConfig, normalize_model_id, train_adapter

log = logging.getLogger(__name__)

EXECUTORS: tuple[str, ...] = ("local", "slurm", "submitit-local", "submitit-debug")
SWEEP_FILE = "sweep.json"
#: The paper's four models (Section A.2), for :func:`paper_matrix_size`.
PAPER_MODELS: tuple[str, ...] = (
    "CohereForAI/aya-expanse-8b", "CohereForAI/aya-23-8B", "google/mt5-large", "bigscience/bloom-7b1",
)


@dataclass(frozen=True)
class SweepConfig:
    """One cell of the matrix: a base model under one (canonical) strategy."""

    model: str
    strategy: str

    @property
    def id(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model_display_name(self.model)).strip("-") or "model"
        return f"{slug}__{self.strategy.replace(':', '-')}"

    @property
    def trains(self) -> bool:
        return self.strategy != "zs"


@dataclass(frozen=True)
class SweepSettings:
    """Everything besides the configuration that a job needs (picklable, sent to SLURM jobs)."""

    out: str
    eval_langs: tuple[str, ...]
    pool_langs: tuple[str, ...] = LANGUAGES
    families: tuple[str, ...] = FAMILIES
    limit: int | None = None
    batch_size: str = "8"
    device: str | None = None
    scorer: str | None = None
    data_dir: str | None = None
    seed: int = 1234
    train_seed: int = 0
    repeats: int | None = None
    model_args: str = ""
    backend: str = "hf"
    train: TrainConfig = field(default_factory=TrainConfig)

    def adapter_dir(self, cfg: SweepConfig) -> Path:
        return Path(self.out) / "adapters" / cfg.id

    def run_dir(self, cfg: SweepConfig) -> Path:
        return Path(self.out) / "runs" / cfg.id


@dataclass
class Outcome:
    """What happened to one configuration: ``done`` (computed now), ``skipped`` (already complete) or ``failed``."""

    config: str
    strategy: str
    status: str
    adapter: str = "-"  # trained / reused / -
    seconds: float = 0.0
    error: str = ""


# --------------------------------------------------------------------------------------------- the matrix


def _expand(kind_spec: str, train_langs: tuple[str, ...], pcts: tuple[int, ...], pool: tuple[str, ...]) -> list[str]:
    """One ``--strategies`` entry -> canonical strategy names (bare kinds expand over langs/pcts)."""
    spec = kind_spec.strip()
    if spec == "x-ft":
        return [f"x-ft:{lang}" for lang in train_langs]
    if spec == "p-ft":
        return [parse_strategy(f"p-ft:{pct}", pool).name for pct in pcts]
    return [parse_strategy(spec, pool).name]


def enumerate_matrix(
    models: list[str] | tuple[str, ...],
    strategies: list[str] | tuple[str, ...],
    train_langs: tuple[str, ...] = PAPER_TRAIN_LANGUAGES,
    pcts: tuple[int, ...] = PAPER_PCTS,
    pool_langs: tuple[str, ...] = LANGUAGES,
) -> list[SweepConfig]:
    """The configurations in a fixed order (model, then strategy as listed); ids must be unique."""
    if not models:
        raise XdetError("--model: at least one model is needed")
    if not strategies:
        raise XdetError("--strategies: the list is empty")
    for lang in train_langs:
        check_language(lang)
    configs: list[SweepConfig] = []
    for model in models:
        names: list[str] = []
        for spec in strategies:
            if spec.split(":")[0] not in KINDS:
                raise XdetError(f"--strategies: unknown strategy {spec!r}; expected {', '.join(KINDS)} (or e.g. x-ft:de)")
            names.extend(n for n in _expand(spec, train_langs, pcts, pool_langs) if n not in names)
        configs.extend(SweepConfig(normalize_model_id(model), name) for name in names)
    seen: dict[str, SweepConfig] = {}
    for cfg in configs:
        if cfg.id in seen and seen[cfg.id] != cfg:
            raise XdetError(
                f"models {seen[cfg.id].model!r} and {cfg.model!r} share the folder name {cfg.id!r}; "
                "give them distinct directory names"
            )
        seen[cfg.id] = cfg
    return list(dict.fromkeys(configs))


def paper_matrix_size() -> dict[str, int]:
    """Our counts for the paper's setting (see the module docstring for the relation to "392")."""
    configs = enumerate_matrix(list(PAPER_MODELS), ["zs", "x-ft", "p-ft", "m-ft"], PAPER_TRAIN_LANGUAGES)
    return {
        "configurations": len(configs),
        "trainings": sum(c.trains for c in configs),
        "cells_per_split": len(configs) * len(PAPER_EVAL_LANGUAGES),
    }


def parse_shard(value: str | None) -> tuple[int, int]:
    """``"i/N"`` -> ``(i, N)`` with ``0 <= i < N``; ``None`` -> ``(0, 1)``."""
    if value is None:
        return 0, 1
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", value)
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise XdetError(f"--shard {value!r}: expected i/N with 0 <= i < N (e.g. 0/4 ... 3/4)")
    return int(m.group(1)), int(m.group(2))


def shard(configs: list[SweepConfig], index: int, count: int) -> list[SweepConfig]:
    """Round-robin over the matrix order: balanced, deterministic, disjoint, and complete over all i."""
    return configs[index::count]


# --------------------------------------------------------------------------------------------- backends


def check_backend(backend: str) -> None:
    """Fail before any work when the vLLM backend cannot run here."""
    if backend == "hf":
        return
    if backend != "vllm":
        raise XdetError(f"--backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if importlib.util.find_spec("vllm") is None:
        raise XdetError("--backend vllm needs the vllm package (pip install vllm) and a CUDA GPU")


# --------------------------------------------------------------------------------------------- one configuration


def _clean_partials(settings: SweepSettings, cfg: SweepConfig) -> None:
    """Remove this configuration's adapter builds left by a killed run (never another config's)."""
    root = Path(settings.out) / "adapters"
    if root.is_dir():
        for stale in root.glob(f".{cfg.id}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)


def run_config(cfg: SweepConfig, settings: SweepSettings, progress: bool = False) -> Outcome:
    """Train (or reuse) and evaluate one configuration; never raises for an ordinary failure."""
    from tqdm.auto import tqdm

    start = time.perf_counter()
    outcome = Outcome(cfg.id, cfg.strategy, "failed")
    run_dir = settings.run_dir(cfg)
    steps = tqdm(total=2, desc=cfg.id, unit="step", leave=False, disable=not progress, file=sys.stderr)
    try:
        before = read_run(run_dir)
        adapter = None
        if cfg.trains:
            steps.set_postfix_str("train")
            _clean_partials(settings, cfg)
            existed = (settings.adapter_dir(cfg) / "xdet_adapter.json").is_file()
            adapter = train_adapter(
                cfg.model, cfg.strategy, settings.adapter_dir(cfg), settings.train, data_dir=settings.data_dir,
                seed=settings.train_seed, progress=False, langs=list(settings.pool_langs),
            )
            outcome.adapter = "reused" if existed else "trained"
        steps.update(1)
        steps.set_postfix_str("eval")
        run_eval(
            cfg.model, run_dir, tasks=task_names(settings.eval_langs, settings.families),
            peft=str(adapter) if adapter else None, limit=settings.limit, batch_size=settings.batch_size,
            device=settings.device, scorer=settings.scorer, data_dir=settings.data_dir, seed=settings.seed,
            repeats=settings.repeats, model_args=settings.model_args, backend=settings.backend,
            lora_rank=settings.train.lora_r,
        )
        steps.update(1)
        after = read_run(run_dir)
        if after is None:
            raise XdetError(f"{run_dir}: evaluation returned without a complete run record")
        unchanged = before is not None and before.get("created") == after.get("created")
        outcome.status = "skipped" if unchanged and outcome.adapter != "trained" else "done"
    except Exception as err:  # one failed configuration must not stop the others
        log.debug("configuration %s failed:\n%s", cfg.id, traceback.format_exc())
        outcome.error = f"{type(err).__name__}: {err}"
    finally:
        steps.close()
    outcome.seconds = round(time.perf_counter() - start, 1)
    return outcome


# --------------------------------------------------------------------------------------------- executors


def make_executor(kind: str, folder: str | Path, slurm: dict[str, Any] | None = None):
    """A submitit executor: ``slurm`` (one job per configuration), ``submitit-local`` or ``submitit-debug``."""
    import submitit

    cluster = {"slurm": "slurm", "submitit-local": "local", "submitit-debug": "debug"}.get(kind)
    if cluster is None:
        raise XdetError(f"--executor {kind!r}: expected one of {', '.join(EXECUTORS)}")
    try:
        executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    except RuntimeError as err:  # e.g. no sbatch on this machine
        raise XdetError(f"--executor {kind}: {err}") from None
    params = {k: v for k, v in (slurm or {}).items() if v is not None}
    executor.update_parameters(name="xdet-sweep", **params)
    return executor


def _run_submitit(configs: list[SweepConfig], settings: SweepSettings, kind: str, slurm: dict[str, Any] | None,
                  progress: bool) -> list[Outcome]:
    from tqdm.auto import tqdm

    executor = make_executor(kind, Path(settings.out) / "submitit", slurm)
    jobs = executor.map_array(run_config, configs, [settings] * len(configs))
    print(f"submitted {len(jobs)} job(s) via submitit ({kind}); logs in {Path(settings.out) / 'submitit'}")
    outcomes = []
    for cfg, job in tqdm(list(zip(configs, jobs, strict=True)), desc="matrix", unit="config", disable=not progress):
        try:
            outcomes.append(job.result())
        except Exception as err:  # the job itself died (node failure, time limit, ...)
            outcomes.append(Outcome(cfg.id, cfg.strategy, "failed", error=f"job {job.job_id}: {err}"))
    return outcomes


def execute(configs: list[SweepConfig], settings: SweepSettings, executor: str = "local",
            slurm: dict[str, Any] | None = None, progress: bool = True, fail_fast: bool = False) -> list[Outcome]:
    """Run ``configs`` with ``executor``; outcomes in matrix order."""
    from tqdm.auto import tqdm

    if executor != "local":
        return _run_submitit(configs, settings, executor, slurm, progress)
    outcomes: list[Outcome] = []
    bar = tqdm(configs, desc="matrix", unit="config", disable=not progress, file=sys.stderr)
    for cfg in bar:
        bar.set_postfix_str(cfg.id)
        outcome = run_config(cfg, settings, progress=progress)
        outcomes.append(outcome)
        if outcome.status == "failed":
            log.error("configuration %s failed: %s", cfg.id, outcome.error)
            if fail_fast:
                break
    return outcomes


# --------------------------------------------------------------------------------------------- the sweep


def write_sweep_tables(out: str | Path, *, columns: str | list[str] = "all", n_boot: int = 1000,
                       png: bool = True, metrics: dict[str, str] | None = None) -> list:
    """``xdet tables <out>/runs --out <out>/tables --langs all`` (every file atomic; same runs -> same tables)."""
    from xdet_tasks.results import read_results
    from xdet_tasks.tables import build_tables, write_tables

    runs = read_results(Path(out) / "runs")
    tables = build_tables(runs, metrics=metrics, columns=columns, n_boot=n_boot, seed=0)
    if not tables:
        raise XdetError(f"{out}/runs: no toxicity/perplexity results to tabulate")
    where = Path(out) / "tables"
    for stale in where.glob(".*.tmp") if where.is_dir() else ():  # temp files of a killed earlier write
        stale.unlink(missing_ok=True)
    write_tables(tables, where, png=png)
    return tables


def summary_text(outcomes: list[Outcome]) -> str:
    from tabulate import tabulate

    rows = [[o.config, o.status, o.adapter, f"{o.seconds:.1f}", o.error[:100]] for o in outcomes]
    table = tabulate(rows, headers=["configuration", "status", "adapter", "seconds", "error"], tablefmt="github")
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
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
    slurm: dict[str, Any] | None = None,
    progress: bool = True,
    fail_fast: bool = False,
    tables: bool = True,
    n_boot: int = 1000,
    dry_run: bool = False,
) -> list[Outcome]:
    """Enumerate, run this shard of the matrix, then write the tables once every configuration is complete."""
    check_backend(settings.backend)
    if settings.backend == "vllm" and settings.device == "cpu":
        raise XdetError("--backend vllm runs on a CUDA GPU, not --device cpu")
    for lang in settings.eval_langs:
        check_language(lang)
    unknown = set(settings.families) - set(FAMILIES)
    if unknown:
        raise XdetError(f"--families: unknown {', '.join(sorted(unknown))}; expected {', '.join(FAMILIES)}")
    matrix = enumerate_matrix(models, strategies, train_langs, pcts, settings.pool_langs)
    index, count = parse_shard(shard_spec)
    mine = shard(matrix, index, count)
    n_tasks = len(task_names(settings.eval_langs, settings.families))
    print(
        f"xdet sweep: {len(matrix)} configuration(s) ({sum(c.trains for c in matrix)} to train) x "
        f"{len(settings.eval_langs)} evaluation language(s) = {len(matrix) * len(settings.eval_langs)} cells per "
        f"split; {n_tasks} lm-eval tasks per configuration"
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
        "settings": {k: v for k, v in asdict(settings).items() if k != "train"} | {"train": asdict(settings.train)},
        "configurations": [cfg.id for cfg in matrix],
    })
    outcomes = execute(mine, settings, executor, slurm, progress, fail_fast)
    print(summary_text(outcomes))
    if tables:
        complete = [cfg for cfg in matrix if read_run(settings.run_dir(cfg)) is not None]
        if len(complete) == len(matrix) or (count == 1 and complete):
            write_sweep_tables(out, n_boot=n_boot)
            print(f"tables: {out / 'tables'} (from {len(complete)} of {len(matrix)} configuration(s))")
        else:
            print(
                f"tables not written: {len(complete)} of {len(matrix)} configuration(s) complete; after the "
                f"other shards finish, run `xdet tables {out / 'runs'} --out {out / 'tables'} --langs all`"
            )
    return outcomes


# --------------------------------------------------------------------------------------------- CLI


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _ints(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in _csv(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {value!r}") from None


_TRAIN_FLAGS = {  # CLI dest -> TrainConfig field
    "epochs": "epochs", "max_steps": "max_steps", "train_batch_size": "batch_size", "grad_accum": "grad_accum",
    "lr": "learning_rate", "max_examples": "max_examples", "max_length": "max_length", "lora_r": "lora_r",
    "quantize": "quantize", "eval_examples": "eval_examples",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sweep", help="train + evaluate the configuration matrix, then write the tables (resumable)",
        description=__doc__.split("\n\n")[0] + " Rerun the same command to resume; see `xdet sweep --dry-run`.",
    )
    p.add_argument("--model", action="append", required=True, help="base model (hub id or directory); repeatable")
    p.add_argument("--strategies", type=_csv, default=("zs", "x-ft", "p-ft", "m-ft"),
                   help="comma-separated: zs, x-ft, p-ft, m-ft, dpo or explicit specs like x-ft:de (default: zs,x-ft,p-ft,m-ft)")
    p.add_argument("--train-langs", type=_csv, default=PAPER_TRAIN_LANGUAGES, help="x-ft source languages (default: the paper's seven)")
    p.add_argument("--eval-langs", type=_csv, default=PAPER_EVAL_LANGUAGES, help="evaluation languages (default: the paper's seven)")
    p.add_argument("--pool-langs", type=_csv, default=LANGUAGES, help="languages pooled by p-ft/m-ft/dpo (default: all nine)")
    p.add_argument("--pcts", type=_ints, default=PAPER_PCTS, help="p-ft percentages (default: 10,20,30)")
    p.add_argument("--families", type=_csv, default=FAMILIES, help="task families gen,ppl,pref (default: all)")
    p.add_argument("--out", required=True, help="sweep folder (adapters/, runs/, tables/)")
    p.add_argument("--limit", type=int, help="documents per task (smoke runs)")
    p.add_argument("--batch-size", default="8", help="lm-eval batch size (int or 'auto')")
    p.add_argument("--device", help="torch device (default: cuda if available)")
    p.add_argument("--scorer", help="toxicity scorer spec (default: $XDET_SCORER or local)")
    p.add_argument("--data-dir", help="released split files (default: $XDET_DATA_DIR or the hub)")
    p.add_argument("--seed", type=int, default=1234, help="evaluation seed")
    p.add_argument("--train-seed", type=int, default=0, help="training (and p-ft sampling) seed")
    p.add_argument("--repeats", type=int, help="K completions per prompt")
    p.add_argument("--model-args", default="", help="extra lm-eval model_args")
    p.add_argument("--backend", choices=BACKENDS, default="hf", help="lm-eval model backend (vllm: GPU + vllm package)")
    g = p.add_argument_group("training (default: the released code's hyper-parameters)")
    g.add_argument("--epochs", type=float)
    g.add_argument("--max-steps", type=int)
    g.add_argument("--train-batch-size", type=int)
    g.add_argument("--grad-accum", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--max-examples", type=int)
    g.add_argument("--max-length", type=int)
    g.add_argument("--lora-r", type=int)
    g.add_argument("--eval-examples", type=int)
    g.add_argument("--quantize", choices=("auto", "4bit", "none"))
    x = p.add_argument_group("execution")
    x.add_argument("--shard", help="run only shard i of N (i/N, 0-based)")
    x.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: sequential here (default); slurm: one submitit job per configuration")
    x.add_argument("--slurm-partition")
    x.add_argument("--slurm-time", type=int, default=24 * 60, help="minutes per job (default 1440)")
    x.add_argument("--slurm-gpus", type=int, default=1, help="GPUs per job (default 1)")
    x.add_argument("--slurm-cpus", type=int, default=8)
    x.add_argument("--slurm-mem-gb", type=int, default=64)
    x.add_argument("--slurm-parallel", type=int, help="at most this many jobs at once")
    x.add_argument("--dry-run", action="store_true", help="print the matrix (this shard) and exit")
    x.add_argument("--fail-fast", action="store_true", help="stop at the first failed configuration")
    x.add_argument("--no-tables", action="store_true")
    x.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the tables")
    x.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    names = {f.name for f in fields(TrainConfig)}
    train = {_TRAIN_FLAGS[k]: v for k, v in vars(args).items() if k in _TRAIN_FLAGS and v is not None}
    assert set(train) <= names
    settings = SweepSettings(
        out=str(Path(args.out).resolve()), eval_langs=tuple(args.eval_langs), pool_langs=tuple(args.pool_langs),
        families=tuple(args.families), limit=args.limit, batch_size=args.batch_size, device=args.device,
        scorer=args.scorer, data_dir=args.data_dir, seed=args.seed, train_seed=args.train_seed,
        repeats=args.repeats, model_args=args.model_args, backend=args.backend, train=TrainConfig(**train),
    )
    slurm = None
    if args.executor == "slurm":
        slurm = {"timeout_min": args.slurm_time, "gpus_per_node": args.slurm_gpus, "cpus_per_task": args.slurm_cpus,
                 "mem_gb": args.slurm_mem_gb, "slurm_partition": args.slurm_partition,
                 "slurm_array_parallelism": args.slurm_parallel}
    outcomes = sweep(
        list(args.model), list(args.strategies), settings, train_langs=tuple(args.train_langs), pcts=args.pcts,
        shard_spec=args.shard, executor=args.executor, slurm=slurm, progress=not args.no_progress,
        fail_fast=args.fail_fast, tables=not args.no_tables, n_boot=args.n_boot, dry_run=args.dry_run,
    )
    return 1 if any(o.status == "failed" for o in outcomes) else 0
