"""Mistral 3 (Mistral Small 3.1 / 3.2, Ministral 3: `Mistral3ForConditionalGeneration` with `PixtralProcessor`):
native resolution up to a longest edge.  The processor shrinks the image (keeping its aspect) to fit `longest_edge`
and then stretches it up to whole merged patches (`patch_size` x `spatial_merge_size` px); each merged patch is one
[IMG] token, row by row, each row ended by [IMG_BREAK] and the last by [IMG_END] (markers, in no view).  The [IMG]
tokens form one grid over the whole image.

A scale is a different input size: the size the processor would give the image, times the scale.  Scale 1 is the
processor's own size; above it the processor's longest edge is lifted for that call only (a default of the
processor, not a limit of the model), so an enlarged image is fed as enlarged.  Any scale but 1 is bounded by
`max_vision_tokens`, and inputs of one merged patch (28 px or less each way in the checkpoints), which transformers'
Mistral 3 cannot take, are refused.
"""

from __future__ import annotations

import math

from PIL import Image

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.errors import UserError
from mllm_explain.views import Box, View


@register_adapter
class Mistral3Adapter(ModelAdapter):
    model_types = {"mistral3": "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
                   "mistral_large4": "mistralai/Mistral-Large-4-1T-A52B"}
    layout_text = "one native-resolution grid, `[IMG_BREAK]` / `[IMG_END]` separators in no view"
    scales_text = ("any within `max_vision_tokens` and over one merged patch: the processor's size times the scale, "
                   "its longest edge lifted above 1")

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

    def _merged(self) -> int:
        """Pixels per merged patch, each way: one [IMG] token."""
        return self.model.config.vision_config.patch_size * self.model.config.spatial_merge_size

    def vision_tokens(self, size: tuple[int, int]) -> int:
        """[IMG] tokens of a (width, height) input fed at its own size (rounded up to whole merged patches)."""
        merged = self._merged()
        return math.ceil(size[0] / merged) * math.ceil(size[1] / merged)

    def max_scale(self, image: Image.Image) -> float:
        """The scale that brings the input's longer side to the processor's own longest edge, within
        `max_vision_tokens` (at least 1)."""
        width, height = self._input_size(image)
        scale = min(self.longest_edge / max(width, height),
                    math.sqrt(self.max_vision_tokens / self.vision_tokens((width, height))))
        while scale > 1 and self.vision_tokens((round(width * scale), round(height * scale))) > self.max_vision_tokens:
            scale -= 1 / max(width, height)
        return max(1.0, scale)

    def processor_kwargs(self, image: Image.Image, scale: float) -> dict:
        """Above scale 1, the longest edge lifted to the enlarged image's, so the processor keeps its size."""
        if scale <= 1.0 or max(image.size) <= self.longest_edge:
            return {}
        return {"size": {"longest_edge": max(image.size)}}

    def check_scale(self, image: Image.Image, scale: float) -> None:
        self._scaled_size(image, scale)

    def scaled_image(self, image: Image.Image, scale: float) -> tuple[Image.Image, tuple[float, float, float, float]]:
        size = self._scaled_size(image, scale)
        if scale == 1.0:  # the processor's own size
            return image, (0.0, 0.0, 1.0, 1.0)
        return image.resize(size, Image.BICUBIC), (0.0, 0.0, 1.0, 1.0)

    def _scaled_size(self, image: Image.Image, scale: float) -> tuple[int, int]:
        """(width, height) the processor fits `image` at `scale` to; a UserError beyond `max_vision_tokens`, or for
        one merged patch, which transformers' `Mistral3Model.get_image_features` cannot take (it squeezes the
        single feature row away)."""
        size = self._input_size(image)
        if scale != 1.0:
            size = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
            self.bound_tokens(scale, self.vision_tokens(size), f"a {size[0]}x{size[1]} px input")
        merged = self._merged()
        if max(size) <= merged:
            raise UserError(f"scale {scale} gives a {size[0]}x{size[1]} px input, one vision token: this model needs "
                            f"an input over {merged} px on one side")
        return size


@register_adapter
class LightOnOcrAdapter(Mistral3Adapter):
    """LightOnOCR: Mistral 3's Pixtral encoder and 2x2 merge around a Qwen3 text model; its processor writes the image
    tokens with no row separators, and its image processor rounds the image to whole patches (14 px), not merged
    ones, so the merge drops an odd last row or column of patches: the grid shows the image less that strip."""

    model_types = {"lighton_ocr": "lightonai/LightOnOCR-1B-1025"}
    layout_text = ("as Mistral 3 without row separators; an odd last row or column of patches, which the 2x2 merge "
                   "drops, in no view")

    def vision_views(self, inputs, image: Image.Image, grid_box: Box) -> list[View]:
        """The one grid, showing the merged patches' part of the resized image (`image_sizes`)."""
        height, width = inputs["image_sizes"][0].tolist()
        rows, cols = self.vision_grid(inputs)
        merged = self._merged()
        image_box = (0.0, 0.0, rows * merged / height, cols * merged / width)
        return [View(self.image_token_positions(inputs), (rows, cols), image_box=image_box, grid_box=grid_box)]
