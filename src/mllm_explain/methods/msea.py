"""MSEA (visual branch): TAM run per input scale, maps brought to one grid and averaged (DESIGN §4)."""

from dataclasses import dataclass

from mllm_explain.methods.base import TokenActivation
from mllm_explain.methods.registry import register_method


@register_method
@dataclass(kw_only=True)
class MSEA(TokenActivation):
    name = "msea"
    scales: tuple[float, ...] = (1.0, 0.75, 0.5)
