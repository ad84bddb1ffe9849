"""ARC (textual branch): TAM whose interference leaves out context that predicts like the explained
token, judged by RBO of the top-k next-token predictions (DESIGN §5)."""

from dataclasses import dataclass

from mllm_explain.methods.base import TokenActivation
from mllm_explain.methods.registry import register_method


@register_method
@dataclass(kw_only=True)
class ARC(TokenActivation):
    name = "arc"
    context: str = "arc"
    # Chosen on the validation split over the paper's weight form and τ 0.1-0.5 (docs/RESULTS.md §1); under MSEA
    # (msea_arc) τ = 0.1 won instead.
    arc_form: str = "threshold"
    arc_tau: float = 0.05
