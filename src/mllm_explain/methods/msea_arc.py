"""MSEA + ARC, the seed paper's method and the default: ARC context weights at every MSEA scale."""

from dataclasses import dataclass

from mllm_explain.methods.base import TokenActivation
from mllm_explain.methods.registry import register_method


@register_method
@dataclass(kw_only=True)
class MSEAARC(TokenActivation):
    name = "msea_arc"
    context: str = "arc"
    # Chosen on the validation split over the paper's (1.0, 0.75, 0.5) and mean (docs/RESULTS.md §1).
    scales: tuple[float, ...] = (1.0, 0.5)
    aggregation: str = "confidence"
