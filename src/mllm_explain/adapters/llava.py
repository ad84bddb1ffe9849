"""LLaVA-1.5 in the llava-hf layout: a CLIP encoder at one fixed resolution; its patches (CLS dropped)
form the vision grid."""

from __future__ import annotations

import torch

from mllm_explain.adapters.fixed_resolution import FixedResolutionAdapter
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.errors import UserError


@register_adapter
class LlavaAdapter(FixedResolutionAdapter):
    model_types = ("llava",)

    def __init__(self, model: torch.nn.Module, processor, name_or_path: str = "") -> None:
        if type(processor).__name__ == "PixtralProcessor":  # Pixtral-12B in the llava-hf layout: rows of [IMG_BREAK]
            raise UserError("a 'llava' model with a Pixtral processor (Pixtral-12B) is not supported: its native-"
                            "resolution grid with row separators is not LLaVA-1.5's fixed square")
        super().__init__(model, processor, name_or_path)

    def vision_grid(self, inputs) -> tuple[int, int]:
        """Patches each way of the pixels the processor produced (its crop size), not a fixed 24x24."""
        height, width = inputs["pixel_values"].shape[-2:]
        patch = self.model.config.vision_config.patch_size
        return height // patch, width // patch
