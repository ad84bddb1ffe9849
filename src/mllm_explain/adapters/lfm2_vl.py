"""LFM2-VL (`Lfm2VlForConditionalGeneration`): one native-aspect grid, or tiles and a native-aspect thumbnail.

The image processor tests the image's size rounded to whole tokens (`encoder_patch_size` x `downsample_factor` px,
32 as shipped) against `max_pixels_tolerance` times the pixels of `max_image_tokens` (`_is_image_too_large`).  An
image within it is resized by `smart_resize` to whole tokens each way at about its aspect ratio, its token count kept
within [`min_image_tokens`, `max_image_tokens`]: one grid.  A larger one (with splitting on) is stretched onto the
`columns x rows` canvas of `tile_size` px tiles (between `min_tiles` and `max_tiles` of them) whose aspect ratio is
nearest the image's and cut row-major (`crop_image_to_patches`: no padding, the tiles partition the image); with
`use_thumbnail` the whole image, resized by `smart_resize` as if it were untiled, comes last.  The prompt holds
`<|image_start|>`, per tile `<|img_row_r_col_c|>` and its tokens, then `<|img_thumbnail|>` and the thumbnail's tokens,
`<|image_end|>` (markers in no view).  The SigLIP2 NaFlex tower reads each view's own patch grid (`spatial_shapes`;
the patches padded to `max_num_patches` are masked and dropped), and the projector's pixel unshuffle folds each 2x2
block of patches into one token, row-major over the view's halved grid: nothing of the image is dropped.

The text model is LFM2, a hybrid of short causal convolutions and attention layers: as LFM3-VL's, its final norm is
`embedding_norm` and the attention rows and gradients come from its last attention layer.

A scale resizes the image before the processor: a small image gets more tokens, up to `max_image_tokens`, then is
tiled; a tiled one keeps its aspect's canvas (more tiles only where canvases tie), the tiles resampled.
"""

from __future__ import annotations

import math

from PIL import Image

from mllm_explain.adapters.base import TiledByRule
from mllm_explain.adapters.qwen2_vl import Lfm3VlAdapter
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.views import Box, View, tile_box


@register_adapter
class Lfm2VlAdapter(TiledByRule):
    """One grid of the resized image, or tiles (row-major, each the part of the image it was cut from) and the
    thumbnail as an overview, each view on its own grid."""

    model_types = {"lfm2_vl": "LiquidAI/LFM2-VL-1.6B"}
    layout_text = ("one grid at the image's aspect ratio (64-256 tokens as shipped); a larger image: 512 px tiles "
                   "(16x16 tokens) cut row-major from it, then the thumbnail on its own grid as overview "
                   "(`<|img_row_r_col_c|>` markers in no view); attention rows and gradients from the last attention "
                   "layer (the LM mixes short convolutions in)")
    scales_text = ("any within `max_vision_tokens`: the image resized before the processor; a small image gets more "
                   "tokens up to `max_image_tokens`, then tiles; a tiled one keeps its aspect's canvas")

    final_norm = Lfm3VlAdapter.final_norm  # the LFM hybrid text model's facts, LFM3-VL's too
    last_layer = Lfm3VlAdapter.last_layer
    last_attention = Lfm3VlAdapter.last_attention

    def _setting(self, key: str):
        """An image-processing option of the image processor (the processor passes none of its own)."""
        return getattr(self.processor.image_processor, key)

    def _pixels(self) -> dict:
        """The token-size settings the image processor's resizing rules take."""
        return {key: self._setting(key) for key in ("downsample_factor", "max_image_tokens", "encoder_patch_size")}

    def tiles(self, size: tuple[int, int]) -> tuple[int, int]:
        """(rows, columns) of tiles the processor cuts an image of `size` (width, height) into ((1, 1): none), by
        its own rules."""
        processor = self.processor.image_processor
        splitting = self._setting("do_image_splitting") and self._setting("max_tiles") > 1
        if not splitting or not processor._is_image_too_large(
                size[1], size[0], max_pixels_tolerance=self._setting("max_pixels_tolerance"), **self._pixels()):
            return 1, 1
        columns, rows, *_ = processor._get_grid_layout(size[1], size[0], self._setting("min_tiles"),
                                                       self._setting("max_tiles"), self._setting("tile_size"))
        return rows, columns

    def vision_tokens(self, size: tuple[int, int]) -> int:
        """Image tokens of an image of `size` (width, height): the processor's own counts of a tile's and of the
        resized image's (the one grid, or the thumbnail)."""
        width, height = self.processor.image_processor.smart_resize(
            size[1], size[0], min_image_tokens=self._setting("min_image_tokens"), **self._pixels())
        per_tile, image = self.processor._get_image_num_tokens([height, width])
        tiles = math.prod(self.tiles(size))
        return image if tiles == 1 else tiles * per_tile + image * self._setting("use_thumbnail")

    def vision_views(self, inputs, image: Image.Image, grid_box: Box) -> list[View]:
        """The tiles, row-major, then the thumbnail (or the one grid), each `spatial_shapes` patch grid folded
        `downsample_factor` each way.  `grid_box` is the whole grid: the base `scaled_image` does not pad."""
        factor = self.model.config.downsample_factor
        grids = [(int(h) // factor, int(w) // factor) for h, w in inputs["spatial_shapes"].tolist()]
        rows, columns = self.tiles(image.size)
        tiles = rows * columns if rows * columns > 1 else 0
        positions = self.image_token_positions(inputs)
        counts = [h * w for h, w in grids]
        if len(grids) != max(1, tiles + self._setting("use_thumbnail")) or sum(counts) != len(positions):
            raise RuntimeError(f"the processor made views {grids} ({len(positions)} image tokens) of the "
                               f"{image.width}x{image.height} image, not {rows}x{columns} tiles and a thumbnail")
        runs = positions.split(counts)
        if not tiles:
            return [View(runs[0], grids[0], grid_box=grid_box)]
        views = [View(run, grid, tile_box(i, rows, columns), kind="tile")
                 for i, (run, grid) in enumerate(zip(runs[:tiles], grids[:tiles]))]
        return [*views, *(View(run, grid, kind="overview") for run, grid in zip(runs[tiles:], grids[tiles:]))]
