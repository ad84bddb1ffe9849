"""TAM (Li et al., ICCV 2025): ECI + joint normalisation + rank Gaussian filter at one scale.
These are the pipeline's defaults, so nothing changes here."""

from dataclasses import dataclass

from mllm_explain.methods.base import TokenActivation
from mllm_explain.methods.registry import register_method


@register_method
@dataclass(kw_only=True)
class TAM(TokenActivation):
    name = "tam"
