"""ARC (textual branch): TAM with context weights scaled by 1 - RBO of the top-k predictions,
so coherent context keeps its evidence (DESIGN §5)."""

from dataclasses import dataclass

from mllm_explain.methods.base import TokenActivation
from mllm_explain.methods.registry import register_method


@register_method
@dataclass(kw_only=True)
class ARC(TokenActivation):
    name = "arc"
    context: str = "arc"
