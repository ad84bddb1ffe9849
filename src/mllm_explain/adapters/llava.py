"""LLaVA-1.5 in the llava-hf layout: a CLIP encoder at one fixed resolution; its patches (CLS dropped)
form the vision grid."""

from __future__ import annotations

from mllm_explain.adapters.fixed_resolution import FixedResolutionAdapter
from mllm_explain.adapters.registry import register_adapter


@register_adapter
class LlavaAdapter(FixedResolutionAdapter):
    model_types = ("llava",)

    def vision_grid(self, inputs) -> tuple[int, int]:
        """Patches each way of the pixels the processor produced (its crop size), not a fixed 24x24."""
        height, width = inputs["pixel_values"].shape[-2:]
        patch = self.model.config.vision_config.patch_size
        return height // patch, width // patch
