"""``xdet eval``: a thin wrapper over lm-eval's Python API that writes one complete run folder.

It adds what a plain ``lm_eval run`` would need flags for (the plugin's include path, the data source,
the scorer, the adapter) and writes lm-eval's normal output (results JSON + samples JSONL) under
``<out>/lm_eval``, then ``<out>/xdet_run.json`` last and atomically: a folder without it is incomplete
and is redone from scratch by the next run; a folder with it for the same configuration is skipped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from xdet_tasks import TASK_DIR, __version__, task_config
from xdet_tasks.data import EVAL_SETS, LANGUAGES, SPLITS, check_language, data_fingerprint, describe_source
from xdet_tasks.io import atomic_write_json
from xdet_tasks.scoring import ENV_SCORER, get_scorer
from xdet_train.errors import XdetError

RUN_FILE = "xdet_run.json"
RUN_SCHEMA = "xdet-run/1"
LMEVAL_DIR = "lm_eval"
#: Task families: generation (toxicity), perplexity, preference.
FAMILIES = ("gen", "ppl", "pref")
#: lm-eval model backends: ``hf`` (transformers + PEFT) and ``vllm`` (GPU, adapter as a LoRA request).
BACKENDS: tuple[str, ...] = ("hf", "vllm")
log = logging.getLogger(__name__)


def task_names(langs: Sequence[str] = LANGUAGES, families: Sequence[str] = FAMILIES,
               eval_sets: Sequence[str] = EVAL_SETS) -> list[str]:
    """The xdet task names for ``langs`` (all three evaluation sets, every family asked for)."""
    names: list[str] = []
    for lang in langs:
        check_language(lang)
        for eval_set in eval_sets:
            slug = eval_set.replace("-", "_")
            if "gen" in families:
                names.append(f"xdet_{slug}_{lang}")
            if "ppl" in families:
                names.append(f"xdet_ppl_{slug}_{lang}")
        if "pref" in families:
            names.extend(f"xdet_pref_{split}_{lang}" for split in SPLITS)
    return names


def lm_eval_model_args(
    backend: str, model: str, adapter: str | None, *, lora_rank: int = 16, seed: int = 1234, extra: str = ""
) -> tuple[str, str]:
    """``(lm-eval model name, model_args)`` for ``backend``.

    ``hf`` loads the adapter through PEFT (``peft=<dir>``). ``vllm`` serves the base model and applies
    the adapter per request (``lora_local_path``; lm-eval then sets vLLM's ``enable_lora``), with
    ``max_lora_rank`` at least the adapter's rank.
    """
    if backend == "hf":
        args = [f"pretrained={model}"] + ([f"peft={adapter}"] if adapter else [])
        return "hf", ",".join(args + ([extra] if extra else []))
    if backend == "vllm":
        args = [f"pretrained={model}", f"seed={seed}"]
        if adapter:
            args += [f"lora_local_path={adapter}", f"max_lora_rank={lora_rank}"]
        return "vllm", ",".join(args + ([extra] if extra else []))
    raise XdetError(f"--backend {backend!r}: expected one of {', '.join(BACKENDS)}")


def model_display_name(model: str) -> str:
    return Path(model.rstrip("/")).name or model


def _run_identity(info: dict[str, Any]) -> dict[str, Any]:
    keys = ("model", "peft", "tasks", "limit", "seed", "batch_size", "repeats", "backend")
    return {k: info.get(k) for k in keys} | {"scorer": (info.get("scorer") or {}).get("version"),
                                             "data_hash": (info.get("data") or {}).get("fingerprint")}


def read_run(run_dir: str | Path) -> dict[str, Any] | None:
    """The run record of a complete run folder, or ``None`` if the folder holds no complete run."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise XdetError(f"{path}: corrupt run record ({err.msg} at line {err.lineno}); delete the folder to redo") from None


@contextmanager
def _env(**values: str | None):
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is not None:
                os.environ[k] = v
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _adapter_info(peft: str | None, model: str) -> dict[str, Any]:
    if not peft:
        return {"strategy": "zs", "train_langs": [], "pct": None, "adapter_manifest": None}
    from xdet_train.train import check_adapter_base, read_manifest

    manifest = read_manifest(peft)
    check_adapter_base(peft, model)
    return {
        "strategy": manifest.get("strategy"),
        "train_langs": manifest.get("train_langs", []),
        "pct": manifest.get("pct"),
        "adapter_manifest": manifest,
    }


def run_eval(
    model: str,
    out_dir: str | Path,
    *,
    tasks: Sequence[str] | None = None,
    langs: Sequence[str] = LANGUAGES,
    peft: str | None = None,
    limit: int | None = None,
    batch_size: int | str = 8,
    device: str | None = None,
    scorer: str | None = None,
    data_dir: str | None = None,
    seed: int = 1234,
    repeats: int | None = None,
    model_args: str = "",
    force: bool = False,
    backend: str = "hf",
    lora_rank: int = 16,
) -> Path:
    """Evaluate ``model`` (+ ``peft`` adapter) on xdet tasks and write a complete run folder."""
    import lm_eval
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    out = Path(out_dir)
    task_list = list(tasks) if tasks else task_names(langs)
    if isinstance(batch_size, str) and batch_size.isdigit():
        batch_size = int(batch_size)
    with _env(**{ENV_SCORER: scorer, "XDET_DATA_DIR": data_dir}):
        active_scorer = get_scorer() if any(_is_generation(t) for t in task_list) else None
        if active_scorer is not None:  # refuse unsupported languages before any model is loaded
            for lang in sorted({lang for t in task_list if _is_generation(t) for lang in task_languages(t)}):
                active_scorer.check_language(lang)
        eval_langs = sorted({lang for t in task_list for lang in task_languages(t)})
        data = describe_source() | {"langs": eval_langs, "fingerprint": data_fingerprint(eval_langs)}
        info: dict[str, Any] = {
            "schema": RUN_SCHEMA,
            "model": model,
            "model_name": model_display_name(model),
            "peft": str(Path(peft).resolve()) if peft else None,
            **_adapter_info(peft, model),
            "seed": seed,
            "tasks": task_list,
            "limit": limit,
            "batch_size": batch_size,
            "repeats": repeats,
            "backend": backend,
            "scorer": active_scorer.provenance() if active_scorer else None,
            "data": data,
            "xdet_version": __version__,
        }
        existing = read_run(out)
        if existing and not force:
            if _run_identity(existing) == _run_identity(info):
                log.info("%s: already complete, skipping", out)
                return out
            raise XdetError(
                f"{out} already holds a different complete run ({existing.get('model')}, "
                f"{existing.get('strategy')}); choose another --out or pass --force"
            )
        _check_writable(out)
        task_manager = TaskManager(include_path=str(TASK_DIR), include_defaults=False)
        unknown = [t for t in task_list if t not in task_manager.all_tasks]
        if unknown:
            raise XdetError(
                f"unknown task or group {', '.join(map(repr, unknown))}; xdet names look like xdet_toxic_test_de, "
                "xdet_ppl_neutral_test_de, xdet_pref_test_de, xdet_de, xdet_ppl (see `lm_eval ls tasks`)"
            )
        # The completion marker goes first: a kill between these two lines must not leave a "complete"
        # record (skipped by the next run) whose results file is already deleted.
        (out / RUN_FILE).unlink(missing_ok=True)
        shutil.rmtree(out / LMEVAL_DIR, ignore_errors=True)  # leftovers of an interrupted run

        lm_name, args = lm_eval_model_args(backend, model, peft, lora_rank=lora_rank, seed=seed, extra=model_args)
        if device is None:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        tracker = EvaluationTracker(output_path=str(out / LMEVAL_DIR))
        lm_tasks: list[Any] = list(task_list)
        if repeats and repeats > 1:  # K samples per prompt for the expected maximum toxicity
            lm_tasks = [task_config(t, repeats=repeats) if _is_generation(t) else t for t in task_list]
        results = lm_eval.simple_evaluate(
            model=lm_name,
            model_args=args,
            tasks=lm_tasks,
            limit=limit,
            batch_size=batch_size,
            device=device,
            log_samples=True,
            evaluation_tracker=tracker,
            task_manager=task_manager,
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
            bootstrap_iters=1000,
            metadata={"data_dir": data_dir} if data_dir else None,
        )
        if results is None:  # non-zero rank in distributed runs
            return out
        samples = results.pop("samples")
        results["xdet"] = {k: info[k] for k in ("model", "peft", "strategy", "train_langs", "pct", "scorer", "data")}
        tracker.save_results_aggregated(results=results, samples=samples)
        for task_name in results["configs"]:
            tracker.save_results_samples(task_name=task_name, samples=samples[task_name])
        results_files = sorted((out / LMEVAL_DIR).glob("**/results_*.json"))
        info["results_file"] = str(results_files[-1].relative_to(out)) if results_files else None
        info["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        atomic_write_json(out / RUN_FILE, info)
    return out


def task_languages(task: str) -> list[str]:
    """The languages an xdet task or group evaluates (all nine for the cross-language groups)."""
    suffix = task.rsplit("_", 1)[-1]
    return [suffix] if suffix in LANGUAGES else list(LANGUAGES)


def _is_generation(task: str) -> bool:
    return not task.startswith(("xdet_ppl", "xdet_pref"))


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".xdet-write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise XdetError(f"output directory {str(out)!r} is not writable: {err.strerror}") from None


def _cmd(args: argparse.Namespace) -> int:
    tasks = [t for t in (args.tasks or "").split(",") if t] or None
    langs = [x for x in args.langs.split(",") if x]
    families = [f for f in args.families.split(",") if f]
    if tasks is None:
        unknown = set(families) - set(FAMILIES)
        if unknown:
            raise XdetError(f"--families: unknown {', '.join(sorted(unknown))}; expected {', '.join(FAMILIES)}")
        tasks = task_names(langs, families)
    out = run_eval(
        args.model, args.out, tasks=tasks, peft=args.peft, limit=args.limit, batch_size=args.batch_size,
        device=args.device, scorer=args.scorer, data_dir=args.data_dir, seed=args.seed,
        model_args=args.model_args, force=args.force, repeats=args.repeats, backend=args.backend,
    )
    print(f"run folder: {out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="evaluate a model (+ adapter) on xdet tasks via lm-eval")
    p.add_argument("--model", required=True, help="hub id or local path of the base model")
    p.add_argument("--peft", help="LoRA adapter directory (made by `xdet train`)")
    p.add_argument("--out", required=True, help="run folder to write")
    p.add_argument("--tasks", help="comma-separated lm-eval task/group names (default: all for --langs)")
    p.add_argument("--langs", default=",".join(LANGUAGES), help="evaluation languages (default: all nine)")
    p.add_argument("--families", default=",".join(FAMILIES), help="gen,ppl,pref (default: all)")
    p.add_argument("--limit", type=int, help="documents per task (for smoke runs)")
    p.add_argument("--batch-size", default="8", help="lm-eval batch size (int or 'auto')")
    p.add_argument("--device", help="torch device, e.g. cuda:0 (default: lm-eval's choice)")
    p.add_argument("--scorer", help=f"toxicity scorer (default: ${ENV_SCORER} or local)")
    p.add_argument("--data-dir", help="released split files directory (default: $XDET_DATA_DIR or the hub)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--repeats", type=int, help="K completions per prompt (expected maximum toxicity over K)")
    p.add_argument("--model-args", default="", help="extra lm-eval model_args, e.g. dtype=bfloat16")
    p.add_argument("--backend", choices=BACKENDS, default="hf",
                   help="lm-eval model backend: hf, or vllm (CUDA GPU + vllm package; adapter as LoRA request)")
    p.add_argument("--force", action="store_true", help="redo a complete run folder")
    p.set_defaults(func=_cmd)
