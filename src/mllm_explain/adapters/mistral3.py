"""Mistral 3 (Mistral Small 3.1 / 3.2, Ministral 3: `Mistral3ForConditionalGeneration` with `PixtralProcessor`):
native resolution up to a longest edge.  The processor shrinks the image (keeping its aspect) to fit `longest_edge`
and then stretches it up to whole merged patches (`patch_size` x `spatial_merge_size` px); each merged patch is one
[IMG] token, row by row, each row ended by [IMG_BREAK] and the last by [IMG_END] (markers, in no view).  The [IMG]
tokens form one grid over the whole image.

A scale is a different input size: the size the processor would give the image, times the scale.  Scales that
would exceed the longest edge are refused (the processor would shrink the image back), and so are inputs of one
merged patch (28 px or less each way in the checkpoints), which transformers' Mistral 3 cannot take.
"""

from __future__ import annotations

import math

from PIL import Image

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.errors import UserError


@register_adapter
class Mistral3Adapter(ModelAdapter):
    model_types = ("mistral3",)

    def vision_grid(self, inputs) -> tuple[int, int]:
        """Merged patches each way of the resized image, from `image_sizes` as the model splits its features."""
        height, width = inputs["image_sizes"][0].tolist()
        config = self.model.config
        factor = config.vision_config.patch_size * config.spatial_merge_size
        return height // factor, width // factor

    @property
    def longest_edge(self) -> int:
        return self.processor.image_processor.size["longest_edge"]

    def _input_size(self, image: Image.Image) -> tuple[int, int]:
        """(width, height) the processor fits `image` to before rounding up to whole merged patches."""
        ratio = max(image.width, image.height) / self.longest_edge
        if ratio <= 1:
            return image.size
        return math.floor(image.width / ratio), math.floor(image.height / ratio)

    def max_scale(self, image: Image.Image) -> float:
        """The scale that brings the input's longer side to the longest edge."""
        return self.longest_edge / max(self._input_size(image))

    def check_scale(self, image: Image.Image, scale: float) -> None:
        self._scaled_size(image, scale)

    def scaled_image(self, image: Image.Image, scale: float) -> tuple[Image.Image, tuple[float, float, float, float]]:
        size = self._scaled_size(image, scale)
        if scale == 1.0:  # the processor's own size
            return image, (0.0, 0.0, 1.0, 1.0)
        return image.resize(size, Image.BICUBIC), (0.0, 0.0, 1.0, 1.0)

    def _scaled_size(self, image: Image.Image, scale: float) -> tuple[int, int]:
        """(width, height) the processor fits `image` at `scale` to; a UserError beyond its longest edge, or for
        one merged patch, which transformers' `Mistral3Model.get_image_features` cannot take (it squeezes the
        single feature row away)."""
        size = self._input_size(image)
        if scale != 1.0:
            size = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
        merged = self.model.config.vision_config.patch_size * self.model.config.spatial_merge_size
        if max(size) > self.longest_edge:
            raise UserError(f"scale {scale} gives a {size[0]}x{size[1]} px input, beyond this model's longest edge "
                            f"of {self.longest_edge} px")
        if max(size) <= merged:
            raise UserError(f"scale {scale} gives a {size[0]}x{size[1]} px input, one vision token: this model needs "
                            f"an input over {merged} px on one side")
        return size
