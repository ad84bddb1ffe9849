"""MSEA (visual branch): TAM run per input scale, maps brought to one grid and aggregated (DESIGN §4)."""

from dataclasses import dataclass

from mllm_explain.methods.base import TokenActivation
from mllm_explain.methods.registry import register_method


@register_method
@dataclass(kw_only=True)
class MSEA(TokenActivation):
    name = "msea"
    # Chosen on the validation split over enlarged, downscaled and mixed sets, every aggregation and context stage
    # (docs/RESULTS.md §1): the image and the image enlarged 2x (one merged patch becomes four), averaged, with
    # context removed at every scale -- the paper's aggregation and stage, with its figure's enlargement.
    scales: tuple[float, ...] = (1.0, 2.0)
    aggregation: str = "mean"
    context_stage: str = "per_scale"
