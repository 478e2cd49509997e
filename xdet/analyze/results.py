"""The record every hypothesis test produces, and the list ``run_analysis`` returns."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from xdet.analyze.inputs import LanguageInfo

SCHEMA = "xdet-analysis/1"
HYPOTHESES: dict[str, str] = {
    "H1": "same-script transfer",
    "H2": "Indo-European source advantage",
    "H3": "in-language vs cross-lingual",
    "H4": "representation distance",
    "H5": "data amount",
}
#: The direction each hypothesis claims: ``+`` a positive effect, ``-`` a negative correlation (H4).
CLAIMS: dict[str, str] = {"H1": "+", "H2": "+", "H3": "+", "H4": "-", "H5": "+"}
CLAIM_SIGN: dict[str, str] = {"+": "> 0", "-": "< 0"}


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: they become null, so the file stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


@dataclass
class HypothesisResult:
    """One hypothesis on one table. ``effect`` is in the hypothesis' own units (Δ points or ρ).

    ``claim`` is the sign the paper's statement predicts for ``effect``; ``p`` is one-sided in that
    direction unless ``alternative`` is "two-sided". ``p_floor`` is the smallest p this design can
    produce whatever the data: a table whose floor exceeds the threshold can never be significant.
    """

    table: str
    model: str
    metric: str
    measure: str
    split: str
    hypothesis: str
    description: str
    claim: str  # "+" or "-"
    alternative: str
    status: str = "tested"  # "tested" | "untestable"
    reason: str | None = None
    effect: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    ci_method: str | None = None  # "sample-bootstrap" | "cell-bootstrap"
    p: float | None = None
    p_holm: float | None = None
    p_floor: float | None = None
    n_cells: int = 0
    n_permutations: int = 0
    exact: bool = False
    detail: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def tested(self) -> bool:
        return self.status == "tested"

    def significant(self, alpha: float = 0.05) -> bool:
        return self.tested and self.p_holm is not None and self.p_holm <= alpha

    def in_claimed_direction(self) -> bool | None:
        if self.effect is None or not math.isfinite(self.effect):
            return None
        return self.effect > 0 if self.claim == "+" else self.effect < 0

    def to_json(self) -> dict[str, Any]:
        return _clean(asdict(self))


class AnalysisResults(list[HypothesisResult]):
    """A plain list of records that also remembers the language map and settings it was run with."""

    def __init__(
        self,
        records: list[HypothesisResult] | None = None,
        *,
        languages: dict[str, LanguageInfo] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(records or [])
        self.languages = dict(languages or {})
        self.settings = dict(settings or {})
        #: each toxicity Δ checked by the guards (xdet.tables.guards), runs only
        self.guards: list = []
