"""What a command prints: progress and results at default verbosity, every library's detail with ``-v``.

At default verbosity only xdet's own messages (INFO) and every library's warnings and errors reach
the terminal; the libraries' INFO chatter, their developer warnings (deprecations), the Trainer's
per-step log dictionaries and lm-eval's per-task "building contexts" bars are silenced at their
source. Long steps keep a progress bar: lm-eval's generation and scoring bars, the Trainer's bar,
the sweep's matrix bar.
"""

from __future__ import annotations

import logging
import os
import warnings

from xdet_tasks.quiet import git_commit_hash

_OWN = ("xdet", "xdet_tasks", "xdet_train")
_state = {"verbose": True}


def configure_logging(*, verbose: bool) -> None:
    """Log to stderr; ``-v`` shows debug messages of every library."""
    _state["verbose"] = verbose
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s",
        force=True,  # log to the current stderr even when main() runs again in one process
    )
    if verbose:
        return
    for name in _OWN:
        logging.getLogger(name).setLevel(logging.INFO)
    # read by transformers and datasets when they are imported (lazily, later in this process)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("DATASETS_VERBOSITY", "error")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category)
    # once per distinct prompt fragment, a dozen times a run; xdet_train.dpo logs one count instead
    logging.getLogger("trl.trainer.dpo_trainer").addFilter(
        lambda record: "is not a prefix of the tokenized prompt+completion" not in record.getMessage()
    )


def verbose() -> bool:
    return _state["verbose"]


def quiet_lm_eval(*, bars: bool = True) -> None:
    """Quieten lm-eval where its output is noise for xdet users (call after importing lm_eval).

    Its git lookup runs quietly (:func:`xdet_tasks.quiet.git_commit_hash`), always. At default
    verbosity its per-task "building contexts" bars (72 for the full benchmark), its quick preparation
    bars (tokenizing, rolling windows) and transformers' weight-loading bars are switched off, and with
    ``bars=False`` (a sweep, which shows its own progress per configuration) so are its per-request-type
    bars.
    """
    import lm_eval.api.model
    import lm_eval.api.task
    import lm_eval.evaluator
    import lm_eval.models.huggingface
    from tqdm import tqdm

    class Silent(tqdm):  # overrides the ``disable=`` lm-eval passes explicitly
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "disable": True})

    class RequestBars(tqdm):  # "Running <type> requests"; not the quick passes before them (tokenizing, windows)
        def __init__(self, *args, **kwargs):
            keep = str(kwargs.get("desc") or "").startswith("Running ")
            super().__init__(*args, **{**kwargs, "disable": kwargs.get("disable") or not keep})

    lm_eval.evaluator.get_git_commit_hash = git_commit_hash
    quiet = not verbose()
    lm_eval.api.task.tqdm = Silent if quiet else tqdm
    for module in (lm_eval.api.model, lm_eval.models.huggingface):
        module.tqdm = tqdm if not quiet else RequestBars if bars else Silent
    if quiet:
        import transformers

        transformers.utils.logging.disable_progress_bar()


def quiet_model_loading() -> None:
    """At default verbosity no "Loading weights" bar: loading a model is quick, and its bar is noise
    beside the bars of the long steps (training, generation)."""
    if not verbose():
        import transformers

        transformers.utils.logging.disable_progress_bar()
