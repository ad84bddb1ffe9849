"""InternVL (transformers-native, `InternVLForConditionalGeneration`), tiled as the checkpoints ship it.

`InternVLProcessor` sets `crop_to_patches`: `GotOcr2ImageProcessor` picks the `columns x rows` canvas of tiles
(between `min_patches` and `max_patches` of them) whose aspect ratio is nearest the image's, stretches the image
onto it and cuts it row-major into squares of the encoder's side (448 px); with more than one tile it adds the
whole image stretched onto one tile, the thumbnail, last.  Each tile's InternViT patches are pixel-shuffled by
`downsample_ratio` into one grid (16x16 at 448 px); the sequence holds `<img>`, the tiles' `<IMG_CONTEXT>`
tokens tile after tile, then `</img>`, with nothing between tiles.
"""

from __future__ import annotations

import copy

import torch
from PIL import Image
from transformers.models.got_ocr2.image_processing_got_ocr2 import get_optimal_tiled_canvas

from mllm_explain.adapters.base import ModelAdapter, View
from mllm_explain.adapters.fixed_resolution import FixedResolutionAdapter
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.maps import Box


@register_adapter
class InternVLAdapter(ModelAdapter):
    """Tiles (row-major, each the part of the image it was cut from) and the thumbnail as an overview; an
    image the processor leaves in one tile is one view of the whole image."""

    model_types = ("internvl",)

    def _setting(self, key: str):
        """An image-processing option as the processor's call resolves it: its own default over the image
        processor's."""
        return self.processor.images_kwargs.get(key, getattr(self.processor.image_processor, key))

    def tiles(self, image: Image.Image, tile: tuple[int, int]) -> tuple[int, int]:
        """(rows, columns) of `tile`-sized (height, width) tiles the processor cuts `image` into."""
        if not self._setting("crop_to_patches"):
            return 1, 1
        columns, rows = get_optimal_tiled_canvas((image.height, image.width), tuple(tile),
                                                 self._setting("min_patches"), self._setting("max_patches"))
        return rows, columns

    def vision_views(self, inputs, image: Image.Image, grid_box: Box) -> list[View]:
        count, _, height, width = inputs["pixel_values"].shape
        rows, columns = self.tiles(image, (height, width))
        if count != rows * columns + (rows * columns > 1):
            raise RuntimeError(f"the processor made {count} tiles of the {image.width}x{image.height} image, "
                               f"not the {rows}x{columns} tiles (and thumbnail) expected")
        patch_h, patch_w = self.model.config.vision_config.patch_size
        ratio = self.model.config.downsample_ratio
        grid = round(height // patch_h * ratio), round(width // patch_w * ratio)
        positions = self.image_token_positions(inputs).reshape(count, -1)
        if count == 1:
            return [View(positions[0], grid, grid_box=grid_box)]
        views = [View(positions[i], grid, kind="tile",
                      image_box=(i // columns / rows, i % columns / columns,
                                 (i // columns + 1) / rows, (i % columns + 1) / columns))
                 for i in range(count - 1)]
        return [*views, View(positions[-1], grid, kind="overview")]


class InternVLLetterboxAdapter(FixedResolutionAdapter, InternVLAdapter):
    """InternVL on one tile: the image letterboxed onto a square, undistorted (not registered; wrap a loaded
    model in it, e.g. `InternVLLetterboxAdapter(adapter.model, adapter.processor, adapter.name_or_path)`)."""

    model_types = ()

    def __init__(self, model: torch.nn.Module, processor, name_or_path: str = "") -> None:
        processor = copy.copy(processor)  # untiled for this adapter only
        processor.images_kwargs = {**processor.images_kwargs, "crop_to_patches": False}
        super().__init__(model, processor, name_or_path)
