"""``xdet analyze``: the paper's findings as permutation tests with effect sizes, intervals and Holm."""

from xdet.analyze.analysis import run_analysis
from xdet.analyze.inputs import (
    AmountRow,
    DeltaMatrix,
    Distances,
    LanguageInfo,
    default_language_map,
    load_language_map,
    read_distances,
)
from xdet.analyze.permutation import count_distinct_permutations, distinct_permutations
from xdet.analyze.report import console_summary, one_line, summary_markdown, write_outputs
from xdet.analyze.results import SCHEMA, AnalysisResults, HypothesisResult
from xdet.stats import holm

__all__ = [
    "SCHEMA",
    "AmountRow",
    "AnalysisResults",
    "DeltaMatrix",
    "Distances",
    "HypothesisResult",
    "LanguageInfo",
    "console_summary",
    "count_distinct_permutations",
    "default_language_map",
    "distinct_permutations",
    "holm",
    "load_language_map",
    "one_line",
    "read_distances",
    "run_analysis",
    "summary_markdown",
    "write_outputs",
]
