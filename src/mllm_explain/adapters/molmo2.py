"""Molmo 2 (AI2, `Molmo2ForConditionalGeneration` with `Molmo2Processor`): a low-res grid of the whole image, then a
high-res grid of the whole image stitched from overlapping crops.

`Molmo2ImageProcessor` stretches the image onto one square crop (`size`, 378 px: 27x27 patches of 14 px) for the
low-res view, and onto a canvas of `tiling` crops (`compute_crop_geometry`: at most `max_crops`, each crop advancing
by its side less its two `overlap_margins`) that it cuts into overlapping crops.  Each crop's margin patches that
overlap a neighbour are dropped, so the kept patches tile the canvas exactly: one stitched patch grid of the whole
image.  Both patch grids are attention-pooled `pooling_size` (2x2) into one token per window, the windows padded at
the end of an odd row or column (27 patches: 14 windows, the last pooling one row), so a grid's last cells show
half a window.  The sequence holds `<low_res_im_start>`, the low-res grid row by row, each row ended by `<im_col>`,
`<im_end>`, then `<im_start>`, the high-res grid likewise, `<im_end>`: only the `<im_patch>` tokens carry features
(added onto their embeddings), the markers and `<im_col>` row ends are in no view.  All of these tokens attend to
one another (`mm_token_type_ids` makes them one bidirectional block).

Views: the low-res grid as an overview and the high-res grid as one tile view of the whole image, each with the
part of its grid the image fills (the padding of the pooling windows left out).

A scale resizes the image before the processor, whose crops are the encoder's fixed side: while a canvas of at most
`max_crops` crops holds the image, the tiling is the smallest that does, so it grows with the image; once none does,
it is the one that shrinks the image least, which follows the aspect ratio, not the size (it can jump there: a
640x480 image takes 2x2 crops, 645x484 2x3), and enlarging further only resamples the same crops.  The low-res
grid never changes.  Any scale but 1 is bounded by `max_vision_tokens`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from PIL import Image
from transformers.models.molmo2.image_processing_molmo2 import compute_crop_geometry

from mllm_explain.adapters.base import ModelAdapter, scaled_size
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.errors import UserError
from mllm_explain.views import Box, View


def _pooled_box(patches: tuple[int, int], pooling: tuple[int, int]) -> Box:
    """The part of a grid of `pooling` windows over `patches` (rows, columns) that the patches fill: the windows are
    padded as `arange_for_pooling` pads them, half the padding (rounded down) before, the rest after."""
    spans = []
    for count, size in zip(patches, pooling):
        total = size * math.ceil(count / size)
        before = (total - count) // 2
        spans.append((before / total, (before + count) / total))
    (top, bottom), (left, right) = spans
    return top, left, bottom, right


@register_adapter
class Molmo2Adapter(ModelAdapter):
    """The low-res grid (overview) and the stitched high-res grid (one tile view), both of the whole image."""

    model_types = {"molmo2": "allenai/Molmo2-8B"}
    layout_text = ("a low-res grid of the image squashed to one crop (overview), then the high-res grid stitched from "
                   "overlapping crops (one view of the whole image); 2x2 pooled, `<im_col>` row ends in no view")
    scales_text = ("any within `max_vision_tokens`: the image resized before the processor; enlarged, it takes more "
                   "crops (up to `max_crops`) until it outgrows every canvas, then the same crops resampled")

    def _setting(self, key: str):
        return getattr(self.processor.image_processor, key)

    def vision_tokens(self, size: tuple[int, int]) -> int:
        """`<im_patch>` tokens of an image of `size` (width, height): both pooled grids."""
        return self.processor.image_processor.get_number_of_image_patches(size[1], size[0])

    def check_scale(self, image: Image.Image, scale: float) -> None:
        """Any scale within `max_vision_tokens`."""
        if scale == 1.0:
            return
        tokens = self.vision_tokens(scaled_size(image, scale))
        if tokens > self.max_vision_tokens:
            raise UserError(f"scale {scale} gives {tokens} vision tokens (low-res and high-res grids), more than "
                            f"max_vision_tokens={self.max_vision_tokens}")

    def max_scale(self, image: Image.Image) -> float:
        """The smallest scale that gives `image` the most vision tokens within `max_vision_tokens`, searched a pixel
        of its shorter side at a time up to where it outgrows the largest canvas (beyond that the crops stay)."""
        crop, patch = self._setting("size")["height"], self._setting("patch_size")
        margins = sum(self._setting("overlap_margins")) * patch
        largest = self._setting("max_crops") * (crop - margins) + margins  # the longest side of any canvas, px
        shorter = min(image.size)
        best, best_tokens = 1.0, self.vision_tokens(image.size)
        for pixels in range(shorter + 1, max(shorter, largest) + 2):
            scale = pixels / shorter
            tokens = self.vision_tokens(scaled_size(image, scale))
            if best_tokens < tokens <= self.max_vision_tokens:
                best, best_tokens = scale, tokens
        return best

    def encode(self, image: Image.Image | Sequence[Image.Image], prompt: str, answer_ids: Sequence[int] = (),
               scale: float = 1.0):
        """As the base, with each row's `image_token_pooling` offset to its own patches: the processor numbers every
        image's patches from 0, and the model pools from the patches of all rows flattened."""
        inputs = super().encode(image, prompt, answer_ids, scale)
        rows = len(inputs["input_ids"])
        if rows > 1:
            pixels = inputs["pixel_values"]
            pooling = inputs["image_token_pooling"].unflatten(0, (rows, -1))
            offsets = torch.arange(rows, device=pooling.device)[:, None, None] * (len(pixels) // rows * pixels.shape[1])
            inputs["image_token_pooling"] = torch.where(pooling >= 0, pooling + offsets, pooling).flatten(0, 1)
        return inputs

    def vision_views(self, inputs, image: Image.Image, grid_box: Box) -> list[View]:
        crop, patch = self._setting("size")["height"], self._setting("patch_size")
        pooling = tuple(self._setting("pooling_size"))
        _, _, canvas_height, canvas_width = compute_crop_geometry(image.height, image.width, self._setting("max_crops"),
                                                                  self._setting("overlap_margins"), crop, patch)
        low_patches, high_patches = (crop // patch, crop // patch), (canvas_height // patch, canvas_width // patch)
        low = tuple(math.ceil(n / p) for n, p in zip(low_patches, pooling))
        high = tuple(math.ceil(n / p) for n, p in zip(high_patches, pooling))
        if inputs["image_grids"][0].tolist() != [*low, *high]:
            raise RuntimeError(f"the processor made grids {inputs['image_grids'][0].tolist()} of the "
                               f"{image.width}x{image.height} image, not the {[*low, *high]} expected")
        positions = self.image_token_positions(inputs)
        return [View(positions[:math.prod(low)], low, grid_box=_pooled_box(low_patches, pooling), kind="overview"),
                View(positions[math.prod(low):], high, grid_box=_pooled_box(high_patches, pooling), kind="tile")]
