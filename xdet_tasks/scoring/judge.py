"""The ``judge`` backend: any chat model rates a text on a rubric; the score is its expected rating, in one pass.

Spec: ``XDET_SCORER=judge:<model id or local path>#rubric=<name>[,option=value,...]``, rubrics (records in
:mod:`xdet_tasks.scoring.formats`, each with its source):

* ``rtplx``: the Toxicity scale of the RTP-LX annotation guidelines (De Wynter et al., AAAI 2025;
  1 = no toxicity ... 5 = extreme toxicity), the scale its native-speaker annotators and its LLM judges
  rated on. The model is asked for ``Toxic: <rating>``; from the probabilities of the five rating
  tokens after ``Toxic:``, renormalised over them, the score is (E[rating] - 1) / 4, in [0, 1].

The text is rated on its own, as the RTP-LX judges rated each prompt: a completion's prompt is not
shown. The rubric's text and template are a record with a version and a content hash, both in the
provenance and the hash in the scorer's version. Templates with a thinking switch (Qwen3) are asked
not to think (``enable_thinking=False``), so the answer starts at once. Other options as for
``guard:``: ``batch=``, ``device=``, ``dtype=``, ``revision=``, ``langs=``.
"""

from __future__ import annotations

from typing import Any

from xdet_tasks.scoring.formats import check_rubric
from xdet_tasks.scoring.generative import COMMON_OPTIONS, ChatScorer
from xdet_tasks.scoring.hf import parse_spec

OPTIONS = ("rubric", *COMMON_OPTIONS)


class JudgeScorer(ChatScorer):
    """(E[rating] - lowest) / (highest - lowest) of a chat model asked for a rating."""

    name = "judge"
    record_kind = "rubric"

    def __init__(self, arg: str, *, model_dir: str | None = None, where: str | None = None):
        """``arg`` is the spec after ``judge:``; ``model_dir`` (a preset's folder) replaces its model."""
        where = where or f"XDET_SCORER=judge:{arg}"
        model, options = parse_spec(arg, "judge", OPTIONS, "#rubric=rtplx")
        self.record = check_rubric(options.get("rubric"), where)
        ratings = [value for _, value in self.record.ratings]
        low, high = min(ratings), max(ratings)
        self.values = tuple((r - low) / (high - low) for r in ratings)
        self._check_options(options, where)
        self._load(model_dir or model, options.get("revision"), where)

    def messages(self, text: str, context: str | None = None) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.record.instruction.replace("{text}", text)}]

    def provenance(self) -> dict[str, Any]:
        prov = super().provenance()
        prov["rubric"]["instruction"] = self.record.instruction
        return prov
