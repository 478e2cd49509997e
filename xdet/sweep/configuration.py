"""One configuration of a sweep: the settings every job shares, and what running one configuration does.

Both executors run configurations through :func:`run_config`: the local loop and the submitit
executors (:mod:`xdet.sweep.run`) in this process, SLURM jobs (:mod:`xdet.sweep.slurm`) on a node,
with :class:`SweepSettings` pickled into the job.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xdet.claims import Busy, claim
from xdet.evaluate import run_eval
from xdet.runs.record import read_run_record
from xdet.sweep.matrix import SweepConfig
from xdet_tasks.errors import XdetError
from xdet_tasks.io import remove_partials
from xdet_tasks.names import FAMILY_KEYS, task_names
from xdet_tasks.suites.records import LANGUAGES, PARADETOX
from xdet_train.config import TrainConfig
from xdet_train.manifest import MANIFEST_NAME
from xdet_train.train import train_adapter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepSettings:
    """Everything besides the configuration that a job needs (picklable, sent to SLURM jobs)."""

    out: str
    eval_langs: tuple[str, ...]
    pool_langs: tuple[str, ...] = LANGUAGES
    families: tuple[str, ...] = FAMILY_KEYS
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
    #: data suites evaluated (xdet_tasks.suites): the paper's data, and/or the natural-prompt suites
    suites: tuple[str, ...] = (PARADETOX,)
    protocol: str | None = None  # sampling protocol of every generation task (default: each suite's own)
    #: natural-prompt data sources, as environment variables (xdet_tasks.suites.natural)
    sources: tuple[tuple[str, str], ...] = ()

    def tasks(self) -> list[str]:
        return task_names(self.eval_langs, self.families, self.suites)

    def adapter_dir(self, cfg: SweepConfig) -> Path:
        return Path(self.out) / "adapters" / cfg.id

    def run_dir(self, cfg: SweepConfig) -> Path:
        return Path(self.out) / "runs" / cfg.id


@dataclass
class Outcome:
    """What happened to one configuration: ``done`` (computed now), ``skipped`` (already complete), ``failed``,
    or ``claimed`` (another process holds it; the sweep comes back to it)."""

    config: str
    strategy: str
    status: str
    adapter: str = "-"  # trained / reused / -
    seconds: float = 0.0
    error: str = ""
    job: str = ""  # the SLURM job that ran it


def run_config(cfg: SweepConfig, settings: SweepSettings, status: Callable[[str], Any] | None = None,
               *, wait: bool = True) -> Outcome:
    """Train (or reuse) and evaluate one configuration; never raises for an ordinary failure.

    The configuration is claimed first (:mod:`xdet.claims`), so two processes on one sweep folder never
    train or evaluate it both. Held by another process: ``wait`` waits for it, else the outcome is
    ``claimed`` and its ``error`` names the holder. ``status`` hears which step is running (one
    progress bar for the whole sweep shows it).
    """
    status = status or (lambda step: None)
    start = time.perf_counter()
    outcome = Outcome(cfg.id, cfg.strategy, "failed")
    run_dir = settings.run_dir(cfg)
    try:
        with claim(run_dir, wait=wait, on_wait=lambda holder: log.info(
                "%s: another process is running it (%s); waiting for it", cfg.id, holder)):
            _train_and_evaluate(cfg, settings, status, outcome)
    except Busy as busy:
        return Outcome(cfg.id, cfg.strategy, "claimed", error=f"claimed by {busy.holder}")
    except Exception as err:  # one failed configuration must not stop the others
        log.debug("configuration %s failed:\n%s", cfg.id, traceback.format_exc())
        outcome.error = f"{type(err).__name__}: {err}"
    outcome.seconds = round(time.perf_counter() - start, 1)
    return outcome


def _train_and_evaluate(cfg: SweepConfig, settings: SweepSettings, status: Callable[[str], Any],
                        outcome: Outcome) -> None:
    run_dir = settings.run_dir(cfg)
    before = read_run_record(run_dir)
    adapter = None
    if cfg.trains:
        status("train")
        remove_partials(settings.adapter_dir(cfg).parent, settings.adapter_dir(cfg).name)  # left by a killed run
        existed = (settings.adapter_dir(cfg) / MANIFEST_NAME).is_file()
        adapter = train_adapter(
            cfg.model, cfg.strategy, settings.adapter_dir(cfg), settings.train, data_dir=settings.data_dir,
            seed=settings.train_seed, progress=False, langs=list(settings.pool_langs),
        )
        outcome.adapter = "reused" if existed else "trained"
    status("evaluate")
    run_eval(
        cfg.model, run_dir, tasks=settings.tasks(), protocol=settings.protocol, sources=dict(settings.sources),
        peft=str(adapter) if adapter else None, limit=settings.limit, batch_size=settings.batch_size,
        device=settings.device, scorer=settings.scorer, data_dir=settings.data_dir, seed=settings.seed,
        repeats=settings.repeats, model_args=settings.model_args, backend=settings.backend,
        lora_rank=settings.train.lora_r, progress=False,
    )
    after = read_run_record(run_dir)
    if after is None:
        raise XdetError(f"{run_dir}: evaluation returned without a complete run record")
    unchanged = before is not None and before.get("created") == after.get("created")
    outcome.status = "skipped" if unchanged and outcome.adapter != "trained" else "done"
