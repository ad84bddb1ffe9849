"""MSEA + ARC, the seed paper's method and the default: ARC's context weights at every MSEA scale, interference
removed per scale before the scales are aggregated."""

from dataclasses import dataclass

from mllm_explain.methods.base import TokenActivation
from mllm_explain.methods.registry import register_method


@register_method
@dataclass(kw_only=True)
class MSEAARC(TokenActivation):
    name = "msea_arc"
    context: str = "arc"
    # MSEA's choice on the validation split (msea.py), then ARC's under it (docs/RESULTS.md §1), as arc.py's.
    scales: tuple[float, ...] = (1.0, 2.0)
    arc_form: str = "threshold"
    arc_tau: float = 0.1
