"""Ovis2 (`ovis2`): overview-first tiles.  With `crop_to_patches` (as the checkpoints ship it) the processor stretches
the image onto a canvas of `columns x rows` tiles of the encoder's side, cuts it row-major and, with more than one
tile, puts the whole image stretched onto one tile *first*: `<IMG_START>`, the thumbnail's `<IMG_ATOM>` tokens,
`<IMG_GRID>`, then the tiles' tokens with `<IMG_COL>` between columns and `<IMG_ROW>` between rows, `<IMG_END>` (the
markers are in no view).  Each tile's ViT patches are grouped `hidden_stride` x `hidden_stride` into one grid of
visual words, row-major.  The canvas is the fewest tiles that cover 90% of the image at the tile's resolution
(`use_covering_area_grid`), else the one whose aspect ratio is nearest the image's.

A scale resizes the image before the processor: a larger image needs more tiles to be covered, up to `max_patches`;
any scale within `max_vision_tokens`.
"""

from __future__ import annotations

import math

from PIL import Image

from mllm_explain.adapters.base import TiledByRule
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.views import Box, View, tile_box


@register_adapter
class Ovis2Adapter(TiledByRule):
    model_types = {"ovis2": "thisisiron/Ovis2-2B-hf"}
    layout_text = ("the thumbnail first (the image stretched onto one tile), then tiles cut row-major from the image "
                   "stretched onto the canvas that covers it (`<IMG_COL>` / `<IMG_ROW>` markers in no view); one tile: "
                   "one view")
    scales_text = ("any within `max_vision_tokens`: the image resized before the processor; a larger image needs more "
                   "tiles to be covered, up to `max_patches`")

    def _setting(self, key: str):
        """An image-processing option of the image processor (the processor passes none of its own)."""
        return getattr(self.processor.image_processor, key)

    def tiles(self, size: tuple[int, int]) -> tuple[int, int]:
        """(rows, columns) of tiles the processor cuts an image of `size` (width, height) into, by its own rule."""
        from transformers.models.ovis2.image_processing_ovis2 import (
            get_min_tile_covering_grid,
            get_optimal_tiled_canvas,
        )

        if not self._setting("crop_to_patches") or self._setting("max_patches") <= 1:
            return 1, 1
        tile = self._setting("size")
        if self._setting("use_covering_area_grid"):
            columns, rows = get_min_tile_covering_grid(size[::-1], target_patch_size=tile["height"],
                                                       max_image_tiles=self._setting("max_patches"))
        else:
            columns, rows = get_optimal_tiled_canvas(size[::-1], (tile["height"], tile["width"]),
                                                     self._setting("min_patches"), self._setting("max_patches"))
        return rows, columns

    def thumbnail(self, tiles: int) -> bool:
        """Whether the processor puts the thumbnail before `tiles` tiles (Ovis2: only before more than one)."""
        return tiles > 1

    def tile_side(self, inputs) -> int:
        """Tokens each way of one tile's grid: its ViT patches grouped `hidden_stride` x `hidden_stride`."""
        config = self.model.config.vision_config
        return math.ceil(inputs["pixel_values"].shape[-1] // config.patch_size / config.hidden_stride)

    def vision_tokens(self, size: tuple[int, int]) -> int:
        """Image tokens of an image of `size` (width, height): `image_seq_length` per tile and for the thumbnail."""
        tiles = math.prod(self.tiles(size))
        return (tiles + self.thumbnail(tiles)) * self.processor.image_seq_length

    def vision_views(self, inputs, image: Image.Image, grid_box: Box) -> list[View]:
        count = inputs["pixel_values"].shape[-4]  # (tiles, 3, h, w), or (images, tiles, 3, h, w)
        rows, columns = self.tiles(image.size)
        if count != rows * columns + self.thumbnail(rows * columns):
            raise RuntimeError(f"the processor made {count} tiles of the {image.width}x{image.height} image, not the "
                               f"{rows}x{columns} tiles (and thumbnail) expected")
        side = self.tile_side(inputs)
        positions = self.image_token_positions(inputs).reshape(count, -1)
        if not self.thumbnail(rows * columns):
            return [View(positions[0], (side, side), grid_box=grid_box)]
        tiles = [View(positions[1 + i], (side, side), kind="tile",
                      image_box=tile_box(i, rows, columns))
                 for i in range(count - 1)]
        return [View(positions[0], (side, side), kind="overview"), *tiles]
