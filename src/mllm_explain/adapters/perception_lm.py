"""Perception LM (`perception_lm`): Ovis2's overview-first tiles.  With `vision_input_type="thumb+tile"` (as the
checkpoints ship it) the image processor stretches the image onto one tile (the thumbnail) and onto a canvas of
`columns x rows` tiles, which it cuts row-major; the thumbnail comes *first*, even before a lone tile.  A timm PE
encoder (CLS dropped) sees each tile; the projector average-pools its patch grid `pooling_ratio` x `pooling_ratio`
(448 px / 14 px = 32x32 patches to 16x16 = 256 tokens), row-major, with no separators or markers.

The canvas is the processor's own rule (`_fit_image_to_canvas`, else `_find_closest_aspect_ratio`): of the canvases
of at most `max_num_tiles` tiles that hold the image unshrunk, the one that enlarges it most, so a small image is
already stretched onto the largest canvas that fits its aspect ratio (168x126 px onto 7x5 tiles of 448 px).  An
enlarged input only leaves it fewer canvases that hold it: a scale above 1 never gives more detail, and is refused.
"""

from __future__ import annotations

from PIL import Image

from mllm_explain.adapters.fixed_resolution import refuse_enlarging
from mllm_explain.adapters.ovis2 import Ovis2Adapter
from mllm_explain.adapters.registry import register_adapter


@register_adapter
class PerceptionLMAdapter(Ovis2Adapter):
    model_types = {"perception_lm": "facebook/Perception-LM-1B"}
    layout_text = ("the thumbnail first (the image stretched onto one tile, also before a lone tile), then tiles cut "
                   "row-major from the image stretched onto the canvas that enlarges it most (up to 36 tiles); each "
                   "tile's patches pooled 2x2 (32x32 to 16x16)")
    scales_text = ("<= 1: the processor already stretches the image onto the largest canvas of tiles that holds it, so "
                   "a scale above 1 is refused in one line")

    def tiles(self, size: tuple[int, int]) -> tuple[int, int]:
        """(rows, columns) of tiles the processor cuts an image of `size` (width, height) into, by its own rule."""
        processor = self.processor.image_processor
        if processor.vision_input_type != "thumb+tile" or processor.max_num_tiles <= 1:
            return 1, 1
        width, height = size
        canvas = processor._fit_image_to_canvas(img_width=width, img_height=height, tile_size=processor.tile_size)
        if canvas is None:
            canvas = processor._find_closest_aspect_ratio(img_width=width, img_height=height,
                                                          tile_size=processor.tile_size)
        columns, rows = canvas
        return rows, columns

    def thumbnail(self, tiles: int) -> bool:
        """Whether the processor puts the thumbnail first: always with `thumb+tile`, even before a lone tile."""
        return self.processor.image_processor.vision_input_type == "thumb+tile"

    def tile_side(self, inputs) -> int:
        """Tokens each way of one tile's grid, as the processor counts them: patches over the pooling ratio."""
        return inputs["pixel_values"].shape[-1] // self.processor.patch_size // self.processor.pooling_ratio

    def check_scale(self, image: Image.Image, scale: float) -> None:
        refuse_enlarging(self, scale, "its processor already stretches the image onto the largest canvas of tiles "
                                      "that holds it")

    def max_scale(self, image: Image.Image) -> float:
        """1: no scale above it gives more detail."""
        return 1.0
