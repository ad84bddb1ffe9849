"""InternVL (transformers-native, `InternVLForConditionalGeneration`): an InternViT encoder at one fixed
resolution whose patches are pixel-shuffled by `downsample_ratio`; one tile forms the vision grid."""

from __future__ import annotations

import torch

from mllm_explain.adapters.fixed_resolution import FixedResolutionAdapter
from mllm_explain.adapters.registry import register_adapter


@register_adapter
class InternVLAdapter(FixedResolutionAdapter):
    model_types = ("internvl",)

    def __init__(self, model: torch.nn.Module, processor, name_or_path: str = "") -> None:
        super().__init__(model, processor, name_or_path)
        # The processor tiles images by default (crop_to_patches): several grids plus a thumbnail.  The
        # letterboxed square needs none of that, and one tile is one grid.
        processor.images_kwargs = {**processor.images_kwargs, "crop_to_patches": False}

    def vision_grid(self, inputs) -> tuple[int, int]:
        """Patches each way of the one tile, shrunk by the pixel shuffle (`downsample_ratio`)."""
        tiles, _, height, width = inputs["pixel_values"].shape
        if tiles != 1:
            raise RuntimeError(f"expected one image tile, the processor made {tiles}")
        config = self.model.config
        patch_h, patch_w = config.vision_config.patch_size
        ratio = config.downsample_ratio
        return round(height // patch_h * ratio), round(width // patch_w * ratio)
