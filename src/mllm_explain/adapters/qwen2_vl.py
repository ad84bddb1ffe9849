"""Qwen2-VL, Qwen2.5-VL and Qwen3-VL (dense and MoE): native dynamic resolution; 2x2 merged patches form the
vision grid, row-major between the vision start and end tokens.

A scale is a different input size: the size the processor would give the image, times the scale (it then
rounds to whole merged patches).  Scale 1 is the processor's own size.  Above 1 the image is enlarged and the
processor's pixel cap is lifted for that call only (the cap is a default of the processor, not a limit of the
model: Qwen2-VL's is 12.8 MP): one merged patch becomes s^2 of them.  Any scale but 1 is bounded by
`max_vision_tokens`, and one below the processor's smallest input is refused.
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
    frames_per_patch = 1  # how many times the processor's pixel range counts one image (GLM-4V: its temporal patch)

    def vision_grid(self, inputs) -> tuple[int, int]:
        _, height, width = inputs["image_grid_thw"][0].tolist()
        merge = self.model.config.vision_config.spatial_merge_size
        return height // merge, width // merge

    @property
    def _factor(self) -> int:
        """Pixels per merged patch, each way."""
        processor = self.processor.image_processor
        return processor.patch_size * processor.merge_size

    def _pixel_range(self, image: Image.Image) -> tuple[int, int, tuple[int, int]]:
        """The processor's pixel range and the (height, width) it would give `image` at scale 1."""
        processor = self.processor.image_processor
        low, high = processor.size["shortest_edge"], processor.size["longest_edge"]
        return low, high, smart_resize(image.height, image.width, factor=self._factor, min_pixels=low, max_pixels=high)

    def vision_tokens(self, size: tuple[int, int]) -> int:
        """Merged patches of a (width, height) input fed at its own size (rounded to whole merged patches)."""
        factor = self._factor
        return max(1, round(size[0] / factor)) * max(1, round(size[1] / factor))

    def max_scale(self, image: Image.Image) -> float:
        """The largest scale within the processor's own pixel range and `max_vision_tokens`, in whole pixels (at
        least 1)."""
        _, high, (height, width) = self._pixel_range(image)
        largest = min(high / (height * width), self.max_vision_tokens / self.vision_tokens((width, height)))
        scale = math.sqrt(largest)  # then whole pixels, so that rounding stays within the range
        return max(1.0, min(math.floor(width * scale) / width, math.floor(height * scale) / height))

    def check_scale(self, image: Image.Image, scale: float) -> None:
        if scale != 1.0:  # scale 1 is the processor's own size
            self._scaled_size(image, scale)

    def scaled_image(self, image: Image.Image, scale: float) -> tuple[Image.Image, tuple[float, float, float, float]]:
        if scale == 1.0:
            return image, (0.0, 0.0, 1.0, 1.0)
        return image.resize(self._scaled_size(image, scale), Image.BICUBIC), (0.0, 0.0, 1.0, 1.0)

    def processor_kwargs(self, image: Image.Image, scale: float) -> dict:
        """Above scale 1, the processor's pixel cap lifted to the enlarged image's own size (rounded to whole
        merged patches), so that it is fed as enlarged; nothing else changes."""
        if scale <= 1.0:
            return {}
        size = self.processor.image_processor.size
        pixels = self.vision_tokens(image.size) * self._factor ** 2 * self.frames_per_patch
        return {"size": {"shortest_edge": size["shortest_edge"], "longest_edge": max(size["longest_edge"], pixels)}}

    def _scaled_size(self, image: Image.Image, scale: float) -> tuple[int, int]:
        """(width, height) to resize `image` to for `scale`; a UserError below the processor's smallest input or
        beyond `max_vision_tokens`."""
        low, high, (height, width) = self._pixel_range(image)
        size = (round(width * scale), round(height * scale))
        if size[0] * size[1] < low:
            raise UserError(f"scale {scale} gives a {size[0]}x{size[1]} px input, below this model's smallest input "
                            f"of {low} pixels")
        if self.vision_tokens(size) > self.max_vision_tokens:
            raise UserError(f"scale {scale} gives a {size[0]}x{size[1]} px input of {self.vision_tokens(size)} vision "
                            f"tokens, more than max_vision_tokens={self.max_vision_tokens}")
        return size
