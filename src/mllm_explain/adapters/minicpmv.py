"""MiniCPM-V 4.6 and 4.7, MiniCPM-OCR (`MiniCPMV4_6ForConditionalGeneration`, `MiniCPMV4_7...`, `MiniCPMOcr...`):
an overview, then slices, each on its own native grid.

The image processor resizes the whole image to about `scale_resolution` squared px at its aspect ratio (to
multiples of `patch_size` times the merge: 56 px as shipped, 28 px in "4x" mode), the overview; an image larger than
that square is also cut into `rows x cols` slices (`get_sliced_grid`: about its area over the square, at most
`max_slice_nums`, the grid nearest its aspect ratio), the image resized to whole slices of about the square each and
divided evenly, row-major.  The prompt holds `<image>` + the overview's tokens + `</image>`, then per slice
`<slice>` + its tokens + `</slice>`, "\\n" between rows of slices (markers in no view).  The vision tower (NaViT
SigLIP) keeps each view's patch grid: its window merger folds each 2x2 window of patches into one (row-major over the
halved grid; skipped in "4x" mode) and the merger each 2x2 of those, so a token is a 4x4 (2x2 in "4x") block of
patches, row-major over its view (`target_sizes`: the patch grid of each view, overview first).

A scale resizes the image before the processor, which resizes the overview and the slices back to about the square
each: an enlarged image gets more slices (its area over the square, up to `max_slice_nums`), then only resampled
ones; a shrunk one fewer, or none.
"""

from __future__ import annotations

import math

import torch
from PIL import Image
from transformers import BatchFeature

from mllm_explain.adapters.base import ModelAdapter, scaled_size
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.errors import UserError
from mllm_explain.views import Box, View, tile_box


@register_adapter
class MiniCPMVAdapter(ModelAdapter):
    """The overview first, then the slices (row-major, each the part of the image it was cut from), each view on its
    own grid; an image the processor does not slice is one view of the whole image."""

    model_types = {"minicpmv4_6": "openbmb/MiniCPM-V-4.6", "minicpmv4_7": "openbmb/MiniCPM-V-4.7-1B",
                   "minicpm_ocr": "openbmb/MiniCPM-OCR-1.0"}
    layout_text = ("**overview first, then slices**: the image at about 448x448 px (its aspect kept), then up to 9 "
                   "slices of about 448x448 px each, row-major, each on its own grid (a token per 4x4 patches, 2x2 "
                   "in 4x mode as MiniCPM-OCR ships); `<slice>` markers and row newlines in no view")
    scales_text = ("any: the image resized before the processor, which resizes the overview and slices back to about "
                   "448x448 px each, so an enlarged image gets more slices (its area over 448x448, up to 9), then "
                   "the same slices resampled")

    def slices(self, size: tuple[int, int]) -> tuple[int, int]:
        """(rows, columns) of slices the processor cuts an image of `size` (width, height) into ((0, 0): none), as
        its `get_sliced_grid` does."""
        processor = self.processor.image_processor
        if not processor.slice_mode:
            return 0, 0
        grid = processor.get_sliced_grid(size[::-1], processor.max_slice_nums, processor.scale_resolution)
        return tuple(grid) if grid else (0, 0)

    def vision_tokens(self, size: tuple[int, int]) -> int:
        """Image tokens of an image of `size` (width, height), from the processor's own resizing rules: the overview
        and the slices (at most that for MiniCPM-OCR's "adaptive" upsizing, which only ever shrinks a view)."""
        processor = self.processor.image_processor
        rows, columns = self.slices(size)
        rules = (processor.scale_resolution, processor.patch_size, processor.downsample_mode)
        upsize = not rows and getattr(processor, "small_image_upsize", "always") != "never"
        pixels = math.prod(processor.find_best_resize(size[::-1], *rules, allow_upscale=upsize))
        if rows:
            pixels += math.prod(processor.get_refine_size(size[::-1], [rows, columns], *rules, allow_upscale=True))
        return pixels // (processor.patch_size ** 2 * self.processor.image_token_divisor)

    def check_scale(self, image: Image.Image, scale: float) -> None:
        """Any scale within `max_vision_tokens`."""
        if scale == 1.0:
            return
        size = scaled_size(image, scale)
        tokens = self.vision_tokens(size)
        if tokens > self.max_vision_tokens:
            rows, columns = self.slices(size)
            raise UserError(f"scale {scale} gives the overview and {rows}x{columns} slices, {tokens} vision tokens, "
                            f"more than max_vision_tokens={self.max_vision_tokens}")

    def max_scale(self, image: Image.Image) -> float:
        """The smallest scale at which `image` gets the most slices the processor makes (its area over
        `max_slice_nums - 1` squares of `scale_resolution`), within `max_vision_tokens`; 1 where it has them already,
        the processor does not slice, or the bound forbids them."""
        processor = self.processor.image_processor
        if not processor.slice_mode:
            return 1.0
        most = (processor.max_slice_nums - 1) * processor.scale_resolution ** 2
        scale = math.sqrt(most / (image.width * image.height))
        while math.prod(scaled_size(image, scale)) <= most:  # to the first whole-pixel size over it
            scale += 1 / min(image.size)
        if scale <= 1 or self.vision_tokens(scaled_size(image, scale)) > self.max_vision_tokens:
            return 1.0
        return scale

    def vision_views(self, inputs, image: Image.Image, grid_box: Box) -> list[View]:
        """The overview, then the slices, each a grid of its `target_sizes` patches merged `image_token_divisor`
        to a token.  `grid_box` is the whole grid: the base `scaled_image` does not pad."""
        side = math.isqrt(self.processor.image_token_divisor)  # patches per token each way
        grids = [(int(h) // side, int(w) // side) for h, w in inputs["target_sizes"].tolist()]
        rows, columns = self.slices(image.size)
        positions = self.image_token_positions(inputs)
        counts = [h * w for h, w in grids]
        if len(grids) != 1 + rows * columns or sum(counts) != len(positions):
            raise RuntimeError(f"the processor made views {grids} ({len(positions)} image tokens) of the "
                               f"{image.width}x{image.height} image, not an overview and {rows}x{columns} slices")
        runs = positions.split(counts)
        if not rows:
            return [View(runs[0], grids[0], grid_box=grid_box)]
        tiles = [View(run, grid, tile_box(i, rows, columns), kind="tile")
                 for i, (run, grid) in enumerate(zip(runs[1:], grids[1:]))]
        return [View(runs[0], grids[0], kind="overview"), *tiles]

    def encode(self, image, prompt: str, answer_ids=(), scale: float = 1.0):
        """As the base, but several images' rows joined the way the model reads a batch: their NaViT-packed pixels
        along the patch axis (the model reads `pixel_values[:1]` only), their views' `target_sizes` one after
        another."""
        if isinstance(image, Image.Image) or len(image) == 1:
            return super().encode(image, prompt, answer_ids, scale)
        rows = [super(MiniCPMVAdapter, self).encode(one, prompt, answer_ids, scale) for one in image]
        return BatchFeature({key: torch.cat([row[key] for row in rows], dim=-1 if key == "pixel_values" else 0)
                             for key in rows[0]})
