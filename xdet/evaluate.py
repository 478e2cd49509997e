"""The evaluation runner behind ``xdet eval`` and the sweep: lm-eval's Python API, one complete run folder.

It adds what a plain ``lm_eval run`` would need flags for (the plugin's include path, the data source,
the scorer, the adapter) and writes lm-eval's normal output (results JSON + samples JSONL) under
``<out>/lm_eval``, then ``<out>/xdet_run.json`` last and atomically (:mod:`xdet.runs`): a folder
without it is incomplete and is redone from scratch by the next run; a folder with it for the same
request is skipped.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from xdet.claims import claim
from xdet.runs.record import (
    LM_EVAL_DIR,
    RUN_FILE,
    RUN_SCHEMA,
    complete_run,
    identity_differences,
    model_display_name,
    read_run_record,
    run_identity,
)
from xdet_tasks import TASK_DIRS, __version__, task_config
from xdet_tasks.errors import XdetError
from xdet_tasks.io import environment
from xdet_tasks.names import collection_tasks, expand, is_generation, parse_task, task_languages, task_names
from xdet_tasks.scoring import get_scorer
from xdet_tasks.scoring.base import ENV_SCORER
from xdet_tasks.scoring.routing import run_provenance
from xdet_tasks.suites import natural
from xdet_tasks.suites.paradetox import ENV_DATA_DIR, data_fingerprint, describe_source
from xdet_tasks.suites.protocols import get_protocol
from xdet_tasks.suites.records import SUITE_OF_SET
from xdet_train.manifest import check_adapter_base, read_manifest
from xdet_train.model import check_model

#: lm-eval model backends: ``hf`` (transformers + PEFT) and ``vllm`` (GPU, adapter as a LoRA request).
BACKENDS: tuple[str, ...] = ("hf", "vllm")
log = logging.getLogger(__name__)


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


def _adapter_info(peft: str | None, model: str) -> dict[str, Any]:
    if not peft:
        return {"strategy": "zs", "train_langs": [], "pct": None, "adapter_manifest": None}
    manifest = read_manifest(peft)
    check_adapter_base(peft, model)
    return {
        "strategy": manifest.get("strategy"),
        "train_langs": manifest.get("train_langs", []),
        "pct": manifest.get("pct"),
        "adapter_manifest": manifest,
    }


def check_tasks(task_list: Sequence[str]) -> None:
    """Refuse names that are no xdet task, tag or group, before anything is created."""
    unknown = [t for t in task_list if not collection_tasks(t)]
    if unknown:
        raise XdetError(
            f"unknown task or group {', '.join(map(repr, unknown))}; xdet names look like xdet_toxic_test_de, "
            "xdet_ppl_neutral_test_de, xdet_pref_test_de, xdet_rtplx_de, xdet_ptp_de, xdet_de, xdet_ppl, xdet_rtplx, "
            "xdet-avg (all of them: lm_eval ls tasks --include_path \"$(python -m xdet_tasks [paper|natural])\")"
        )


def data_record(task_list: Sequence[str]) -> dict[str, Any]:
    """Where every evaluated document comes from and one content hash over them all.

    Natural-prompt data is loaded here, before any model: a folder without RTP-LX files, a bad line
    or an unreachable hub copy stops the run now, with one line naming the file, line and field.
    """
    leaves = [parse_task(t) for t in expand(task_list)]
    paper_langs = sorted({r.lang for r in leaves if r.set not in SUITE_OF_SET or not SUITE_OF_SET[r.set].natural})
    natural_sets = sorted({(SUITE_OF_SET[r.set].key, r.lang) for r in leaves
                           if r.set in SUITE_OF_SET and SUITE_OF_SET[r.set].natural})
    record: dict[str, Any] = describe_source() if paper_langs else {}
    parts = [data_fingerprint(paper_langs)] if paper_langs else []
    for suite, lang in natural_sets:
        parts.append(f"{suite}:{lang}:{natural.prompts_hash(natural.load_prompts(suite, lang))}")
    suites = sorted({suite for suite, _ in natural_sets})
    if suites:
        record["natural"] = {suite: natural.describe_source(suite) for suite in suites}
    langs = sorted({r.lang for r in leaves})
    fingerprint = parts[0] if len(parts) == 1 and paper_langs else hashlib.sha256("|".join(parts).encode()).hexdigest()
    return record | {"langs": langs, "fingerprint": fingerprint}


def _lm_tasks(task_list: Sequence[str], protocol: str | None, repeats: int | None) -> list[Any]:
    """lm-eval task specs: names, or inline configs where a protocol or ``repeats`` changes a generation task.

    A collection with generation tasks is then given as its leaf tasks (lm-eval cannot override a
    group's members), so its averages are not computed by lm-eval; the summary shows every task.
    """
    overrides: dict[str, Any] = {"repeats": repeats} if repeats else {}
    if not (protocol or overrides):
        return list(task_list)
    out: list[Any] = []
    for name in task_list:
        if not is_generation(name):
            out.append(name)
            continue
        for leaf in collection_tasks(name):
            out.append(task_config(leaf, protocol=protocol, **overrides) if is_generation(leaf) else leaf)
    return out


def check_run_settings(*, limit: int | None, device: str | None, repeats: int | None, backend: str = "hf") -> None:
    """Numbers, devices and backends lm-eval would only reject with a traceback, checked first."""
    if backend not in BACKENDS:
        raise XdetError(f"--backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if backend == "vllm":
        if device == "cpu":
            raise XdetError("--backend vllm runs on a CUDA GPU, not --device cpu")
        if importlib.util.find_spec("vllm") is None:
            raise XdetError("--backend vllm needs the vllm package (pip install vllm) and a CUDA GPU")
    if limit is not None and limit < 1:
        raise XdetError(f"--limit must be at least 1 document per task, got {limit}")
    if repeats is not None and repeats < 1:
        raise XdetError(f"--repeats must be at least 1, got {repeats}")
    if device and device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise XdetError(f"--device {device}: this torch ({torch.__version__}) sees no CUDA GPU; use --device cpu")


def run_eval(
    model: str,
    out_dir: str | Path,
    *,
    tasks: Sequence[str] | None = None,
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
    progress: bool = True,
    protocol: str | None = None,
    sources: dict[str, str | None] | None = None,
) -> Path:
    """Evaluate ``model`` (+ ``peft`` adapter) on xdet tasks (default: all of them) and write a complete run folder.

    ``progress=False`` hides lm-eval's per-request bars (the sweep shows its own per configuration).
    ``protocol`` runs every generation task under that sampling protocol instead of its suite's;
    ``sources`` sets natural-prompt data sources (environment variables of :mod:`xdet_tasks.suites.natural`).
    """
    import lm_eval
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    from xdet.console import quiet_lm_eval

    quiet_lm_eval(bars=progress)
    out = Path(out_dir)
    task_list = list(tasks) if tasks else task_names()
    check_tasks(task_list)
    check_run_settings(limit=limit, device=device, repeats=repeats, backend=backend)
    if protocol is not None:
        get_protocol(protocol)
    with environment(**{ENV_SCORER: scorer, ENV_DATA_DIR: data_dir, **(sources or {})}):
        data = data_record(task_list)  # the data first: a bad file is named before a model is even looked up
        # a wrong path, an unreachable hub, an architecture that is no language model or a missing tokenizer
        # fails here, before anything exists (a tokenizer given in --model-args is lm-eval's to load)
        check_model(model, tokenizer="tokenizer" not in _model_arg_keys(model_args))
        if isinstance(batch_size, str) and batch_size.isdigit():
            batch_size = int(batch_size)
        generation = [t for t in task_list if is_generation(t)]
        active_scorer = get_scorer() if generation else None
        scored_langs = sorted({lang for t in generation for lang in task_languages(t)})
        if active_scorer is not None:  # refuse unsupported languages before any model is loaded
            for lang in scored_langs:  # (a routing list chooses each language's scorer here)
                active_scorer.check_language(lang)
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
            "protocol": protocol,
            "backend": backend,
            "scorer": run_provenance(active_scorer, scored_langs) if active_scorer else None,
            "data": data,
            "xdet_version": __version__,
        }
        # one process at a time evaluates into a folder; a second waits and then finds the run complete
        with claim(out, on_wait=lambda holder: log.info("%s: another process is evaluating into it (%s); waiting "
                                                        "for it", out, holder)):
            existing = read_run_record(out)
            _check_out_is_a_run_folder(out, existing)
            if existing and not force:
                if run_identity(existing) == run_identity(info):
                    log.info("%s: already complete, skipping", out)
                    return out
                raise XdetError(
                    f"{out} already holds a different complete run ({'; '.join(identity_differences(existing, info))}); "
                    "choose another --out or pass --force to replace it"
                )
            with _removed_on_failure(out):
                _check_writable(out)
                task_manager = TaskManager(include_path=[str(d) for d in TASK_DIRS], include_defaults=False)
                # The completion marker goes first: a kill between these two lines must not leave a "complete"
                # record (skipped by the next run) whose results file is already deleted.
                (out / RUN_FILE).unlink(missing_ok=True)
                shutil.rmtree(out / LM_EVAL_DIR, ignore_errors=True)  # leftovers of an interrupted run
                for leftover in _record_leftovers(out):
                    leftover.unlink(missing_ok=True)
                lm_name, args = lm_eval_model_args(backend, model, peft, lora_rank=lora_rank, seed=seed, extra=model_args)
                if device is None:
                    import torch

                    device = "cuda" if torch.cuda.is_available() else "cpu"
                tracker = EvaluationTracker(output_path=str(out / LM_EVAL_DIR))
                lm_tasks = _lm_tasks(task_list, protocol, repeats)
                lm = _load_lm(lm_name, args, model_args, batch_size=batch_size, device=device)
                # lm-eval seeds every generator here, after the model (and the adapter's LoRA layers, whose
                # initialisation draws from torch's generator) is built: ZS and every adapter then sample
                # their completions from the same random stream, so a Δ per document is paired.
                results = lm_eval.simple_evaluate(
                    model=lm, model_args=args, tasks=lm_tasks, limit=limit, batch_size=batch_size,
                    device=device, log_samples=True, evaluation_tracker=tracker, task_manager=task_manager,
                    random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
                    bootstrap_iters=1000, metadata={"data_dir": data_dir} if data_dir else None,
                )
                if results is None:  # non-zero rank in distributed runs
                    return out
                samples = results.pop("samples")
                if active_scorer is not None:  # after scoring: dated calls and truncation counts are known now
                    info["scorer"] = run_provenance(active_scorer, scored_langs)
                results["xdet"] = {k: info[k] for k in ("model", "peft", "strategy", "train_langs", "pct", "scorer", "data")}
                tracker.save_results_aggregated(results=results, samples=samples)
                for task_name in results["configs"]:
                    tracker.save_results_samples(task_name=task_name, samples=samples[task_name])
                results_files = sorted((out / LM_EVAL_DIR).glob("**/results_*.json"))
                info["results_file"] = str(results_files[-1].relative_to(out)) if results_files else None
                info["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
                complete_run(out, info)
    return out


def _load_lm(lm_name: str, args: str, model_args: str, *, batch_size: int | str, device: str) -> Any:
    """lm-eval's model object, built as ``simple_evaluate`` would build it from ``lm_name`` and ``args``.

    ``hf`` is :class:`~xdet_tasks.sampling.SharedPromptHFLM`: HFLM whose K samples of a prompt share
    one encoding of it (same arguments, so the recorded ``model_args`` rerun with plain ``--model hf``).
    """
    import lm_eval.api.registry

    if lm_name == "hf":
        from xdet_tasks.sampling import SharedPromptHFLM

        model_cls = SharedPromptHFLM
    else:
        model_cls = lm_eval.api.registry.get_model(lm_name)
    try:
        return model_cls.create_from_arg_string(
            args, {"batch_size": batch_size, "max_batch_size": None, "device": device}
        )
    except TypeError as err:
        key = _rejected_model_arg(err, model_args)
        if key is None:
            raise
        raise XdetError(f"--model-args {model_args!r}: the model does not take {key!r} ({err})") from None


def _model_arg_keys(model_args: str) -> set[str]:
    from lm_eval.utils import simple_parse_args_string

    return set(simple_parse_args_string(model_args)) if model_args else set()


def _rejected_model_arg(err: TypeError, model_args: str) -> str | None:
    """The ``--model-args`` key a constructor's "unexpected keyword argument" names, if it is one of them."""
    match = re.search(r"unexpected keyword argument '([^']+)'", str(err))
    return match.group(1) if match and match.group(1) in _model_arg_keys(model_args) else None


def _check_out_is_a_run_folder(out: Path, record: dict[str, Any] | None) -> None:
    """``--out`` must be new, empty or a run folder (complete, or what an interrupted run leaves):
    an unrelated folder would get lm-eval's output mixed into it, and a failed run removes what it wrote."""
    if record is not None or not out.is_dir():
        return
    leftovers = _record_leftovers(out)
    other = sorted(p.name for p in out.iterdir() if p.name != LM_EVAL_DIR and p not in leftovers)
    if other:
        raise XdetError(
            f"--out {str(out)!r} is not empty and is not an xdet run folder (it holds {', '.join(other[:3])}"
            f"{', ...' if len(other) > 3 else ''}; a run folder holds {RUN_FILE}); choose a new or empty folder"
        )


def _record_leftovers(out: Path) -> list[Path]:
    """Temporary files of the run record's atomic write, left by a process killed while writing it."""
    return list(out.glob(f".{RUN_FILE}.*.tmp"))


@contextmanager
def _removed_on_failure(out: Path) -> Iterator[None]:
    """On an error or Ctrl-C nothing may look like a result: folders this call made (``out`` and any
    parents it needed) go entirely, an existing ``out`` loses its partial lm-eval output (a rerun
    redoes it from scratch)."""
    first_new = next((p for p in reversed((out, *out.parents)) if not p.exists()), None)
    try:
        yield
    except BaseException:
        shutil.rmtree(first_new if first_new is not None else out / LM_EVAL_DIR, ignore_errors=True)
        raise


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):  # created and removed: proves the folder takes files
            pass
    except (FileExistsError, NotADirectoryError):
        raise XdetError(f"--out {str(out)!r}: exists and is not a folder; give a folder path (or a new name)") from None
    except OSError as err:
        raise XdetError(f"output directory {str(out)!r} is not writable: {err.strerror}") from None
