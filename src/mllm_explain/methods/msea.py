"""MSEA (visual branch): TAM run per input scale, maps brought to one grid and aggregated (DESIGN §4)."""

from dataclasses import dataclass

from mllm_explain.methods.base import TokenActivation
from mllm_explain.methods.registry import register_method


@register_method
@dataclass(kw_only=True)
class MSEA(TokenActivation):
    name = "msea"
    # Chosen on the validation split over the paper's (1.0, 0.75, 0.5), mean and context removal at every
    # scale (docs/RESULTS.md §1).
    scales: tuple[float, ...] = (1.0, 0.75)
    aggregation: str = "confidence"
    context_stage: str = "after"
