"""MSEA + ARC, the seed paper's method and the default: ARC context weights from every MSEA scale (by default
averaged and applied once, after the scales are aggregated)."""

from dataclasses import dataclass

from mllm_explain.methods.base import TokenActivation
from mllm_explain.methods.registry import register_method


@register_method
@dataclass(kw_only=True)
class MSEAARC(TokenActivation):
    name = "msea_arc"
    context: str = "arc"
    # MSEA's and ARC's choices on the validation split (docs/RESULTS.md §1), as in msea.py and arc.py.
    scales: tuple[float, ...] = (1.0, 0.75)
    aggregation: str = "confidence"
    context_stage: str = "after"
    arc_form: str = "threshold"
    arc_tau: float = 0.1
