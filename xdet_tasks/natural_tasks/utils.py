"""lm-eval hooks of the natural-prompt tasks: the paper's hooks (:mod:`xdet_tasks.tasks.utils`), which
load natural prompts too. lm-eval resolves ``!function utils.<name>`` beside each YAML, so this folder
needs a ``utils.py`` of its own; one set of hooks serves both plugin folders."""

from xdet_tasks.tasks.utils import (
    ToxicityScoreFilter,
    language_identifier,
    launch_directory,
    load_docs,
    mean_defined,
    process_toxicity,
    scorer_provenance,
    total,
)

__all__ = ["ToxicityScoreFilter", "language_identifier", "launch_directory", "load_docs", "mean_defined", "process_toxicity", "scorer_provenance", "total"]
