"""Qwen2-VL, Qwen2.5-VL and Qwen3-VL (dense and MoE): native dynamic resolution; 2x2 merged patches form the
vision grid, row-major between the vision start and end tokens.

A scale is a different input size: the size the processor would give the image, times the scale
(it then rounds to whole merged patches).  Scales outside the processor's pixel range are refused.
"""

from __future__ import annotations

import math

from PIL import Image
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.errors import UserError


@register_adapter
class Qwen2VLAdapter(ModelAdapter):
    model_types = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe")

    def vision_grid(self, inputs) -> tuple[int, int]:
        _, height, width = inputs["image_grid_thw"][0].tolist()
        merge = self.model.config.vision_config.spatial_merge_size
        return height // merge, width // merge

    def max_scale(self, image: Image.Image) -> float:
        _, high, (height, width) = self._pixel_range(image)
        largest = math.sqrt(high / (height * width))  # then whole pixels, so that rounding stays within the range
        return max(1.0, min(math.floor(width * largest) / width, math.floor(height * largest) / height))

    def _pixel_range(self, image: Image.Image) -> tuple[int, int, tuple[int, int]]:
        """The processor's pixel range and the (height, width) it would give `image` at scale 1."""
        processor = self.processor.image_processor
        factor = processor.patch_size * processor.merge_size
        low, high = processor.size["shortest_edge"], processor.size["longest_edge"]
        return low, high, smart_resize(image.height, image.width, factor=factor, min_pixels=low, max_pixels=high)

    def check_scale(self, image: Image.Image, scale: float) -> None:
        if scale != 1.0:  # scale 1 is the processor's own size
            self._scaled_size(image, scale)

    def scaled_image(self, image: Image.Image, scale: float) -> tuple[Image.Image, tuple[float, float, float, float]]:
        if scale == 1.0:
            return image, (0.0, 0.0, 1.0, 1.0)
        return image.resize(self._scaled_size(image, scale), Image.BICUBIC), (0.0, 0.0, 1.0, 1.0)

    def _scaled_size(self, image: Image.Image, scale: float) -> tuple[int, int]:
        """(width, height) to resize `image` to for `scale`; a UserError outside the processor's pixel range."""
        low, high, (height, width) = self._pixel_range(image)
        size = (round(width * scale), round(height * scale))
        if not low <= size[0] * size[1] <= high:
            raise UserError(f"scale {scale} gives a {size[0]}x{size[1]} px input, outside this model's range of "
                            f"{low}..{high} pixels")
        return size
