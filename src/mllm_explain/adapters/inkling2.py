"""Inkling 2 (`inkling2`, and `inkling2_loop`, its looped-decoder variant) and Inkling (`inkling_mm_model`): native
resolution with no resize at all: the processor pads the image at the bottom and right to whole 40 px cells and each
cell is one image token, row-major (Inkling 2: 2x2 ViT patches of 20 px, merged; Inkling: raw pixels through an MLP,
one cell at a time, and always one column more than the image needs, `width // 40 + 1`).  The grid shows the image in
its top-left part (`grid_box`); cells past the image's edge show padding only, and the maps are read where the image
is.

A scale resizes the image before the processor, which takes it at that size: any scale within `max_vision_tokens`.
"""

from __future__ import annotations

import math

from PIL import Image
from torch import Tensor

from mllm_explain.adapters.base import ModelAdapter, scaled_size
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.errors import UserError
from mllm_explain.views import Box, View


@register_adapter
class Inkling2Adapter(ModelAdapter):
    model_types = {"inkling2": "thinkingmachines/Inkling-2-Small-MXFP8",
                   "inkling2_loop": "thinkingmachines/Inkling-2-Mini"}
    layout_text = ("one grid of 40 px cells over the image as given (no resize), padded at the bottom and right to "
                   "whole cells; padding-only cells in no map")
    scales_text = "any within `max_vision_tokens` (16,384): the image resized by the scale, one token per 40 px cell"

    @property
    def cell(self) -> tuple[int, int]:
        """(height, width) in pixels of one image token's cell."""
        size = self.processor.image_processor.size
        return size["height"], size["width"]

    def cells(self, size: tuple[int, int]) -> tuple[int, int]:
        """(rows, columns) of cells the processor cuts a (width, height) input into: the last row and column padded."""
        height, width = self.cell
        return math.ceil(size[1] / height), math.ceil(size[0] / width)

    def vision_grid(self, inputs) -> tuple[int, int]:
        _, rows, columns = inputs["image_grid_thw"][0].tolist()
        return rows, columns

    def vision_views(self, inputs, image: Image.Image, grid_box: Box) -> list[View]:
        """One grid of `image`'s cells whose top-left part shows it, the rest padding."""
        rows, columns = self.cells(image.size)
        height, width = self.cell
        shown = (0.0, 0.0, image.height / (rows * height), image.width / (columns * width))
        return [View(self.image_token_positions(inputs), (rows, columns), grid_box=shown)]

    def vision_tokens(self, size: tuple[int, int]) -> int:
        """Image tokens of a (width, height) input: its cells."""
        rows, columns = self.cells(size)
        return rows * columns

    def max_scale(self, image: Image.Image) -> float:
        """The largest scale within `max_vision_tokens` (the processor takes any size as it is), in whole pixels."""
        scale = math.sqrt(self.max_vision_tokens / self.vision_tokens(image.size))
        while scale > 1 and self.vision_tokens(scaled_size(image, scale)) > self.max_vision_tokens:
            scale -= 1 / max(image.size)
        return max(1.0, scale)

    def check_scale(self, image: Image.Image, scale: float) -> None:
        size = scaled_size(image, scale)
        if scale != 1.0:
            self.bound_tokens(scale, self.vision_tokens(size), f"a {size[0]}x{size[1]} px input")


@register_adapter
class InklingAdapter(Inkling2Adapter):
    """Inkling: Inkling 2's grid with one column more than the image needs; its LM divides the final states by
    `logits_mup_width_multiplier` before the LM head, whose rows past `unpadded_vocab_size` are padding."""

    model_types = {"inkling_mm_model": "thinkingmachines/Inkling"}
    logit_divisor_key = "logits_mup_width_multiplier"
    layout_text = ("as Inkling 2, with the processor's always-present extra column of cells (`width // 40 + 1`), "
                   "mostly padding; logits divided by the LM's width multiplier, as the model divides them")

    def cells(self, size: tuple[int, int]) -> tuple[int, int]:
        height, width = self.cell
        return math.ceil(size[1] / height), size[0] // width + 1

    def vision_grid(self, inputs) -> tuple[int, int]:
        raise NotImplementedError("Inkling's processor gives no grid: `cells` of the image fed")

    def check_scale(self, image: Image.Image, scale: float) -> None:
        """Refuse a processor that rescales images itself (`rescale_image_frac`): the fed size would not be the
        image's; then any scale within `max_vision_tokens`."""
        if self.processor.image_processor.rescale_image_frac is not None:
            raise UserError("this Inkling processor rescales images (`rescale_image_frac`), whose layout is not mapped "
                            "yet; save the processor with rescale_image_frac=None")
        super().check_scale(image, scale)

    @property
    def unembedding(self) -> Tensor:
        """The LM head's rows of real tokens: rows past `unpadded_vocab_size` pad the checkpoint and are sliced off
        the model's logits."""
        weight = super().unembedding
        return weight[:self.model.config.text_config.unpadded_vocab_size or len(weight)]
