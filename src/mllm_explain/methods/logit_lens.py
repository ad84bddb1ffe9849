"""Logit lens: the raw token activation map (DESIGN §2), no context removal, no filter."""

from dataclasses import dataclass

from mllm_explain.methods.base import TokenActivation
from mllm_explain.methods.registry import register_method


@register_method
@dataclass(kw_only=True)
class LogitLens(TokenActivation):
    name = "logit_lens"
    context: str = "none"
    normalise: str = "map"
    filter: bool = False
