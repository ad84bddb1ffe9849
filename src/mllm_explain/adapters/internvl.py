"""InternVL (transformers-native, `InternVLForConditionalGeneration`), tiled as the checkpoints ship it.

`InternVLProcessor` sets `crop_to_patches`: `GotOcr2ImageProcessor` picks the `columns x rows` canvas of tiles
(between `min_patches` and `max_patches` of them) whose aspect ratio is nearest the image's, stretches the image
onto it and cuts it row-major into squares of the encoder's side (448 px); with more than one tile it adds the
whole image stretched onto one tile, the thumbnail, last.  Each tile's InternViT patches are pixel-shuffled by
`downsample_ratio` into one grid (16x16 at 448 px); the sequence holds `<img>`, the tiles' `<IMG_CONTEXT>`
tokens tile after tile, then `</img>`, with nothing between tiles.

A scale resizes the image before the processor, whose tiles are the encoder's fixed side: the canvas follows the
image's aspect ratio, not its size, so an enlarged (or shrunk) image is mostly the same tiles, resampled.  Its size
counts only where canvases of the same ratio tie (a square image: 1x1, 2x2, 3x3 tiles): the processor takes the
larger one once the image's area exceeds half of it (`get_optimal_tiled_canvas`), so there enlarging gives more
tiles (a 448 px square: one tile at scale 1, 2x2 at 1.5, 3x3 above 2.12) and shrinking fewer.  Any scale but 1 is
bounded by `max_vision_tokens` (`image_seq_length` per tile and for the thumbnail).

A video (InternVL): each sampled frame is resized to one tile (squashed, no tiling, no thumbnail), and the processor
writes "Frame1: <img>", the frame's `image_seq_length` `<IMG_CONTEXT>` tokens, "</img>", a newline, and so on: one view
per frame (the "FrameN:" text and the markers in none).

Qianfan-OCR is InternVL throughout (its template's `<image>` is expanded by the processor).  Aya Vision, Command A
Vision and Granite-Docling tile the same way and subclass the adapter with the facts that differ: the tokens of a tile,
the canvas rule, the markers between tiles.
"""

from __future__ import annotations

import copy
import math

import torch
from PIL import Image
from transformers.models.got_ocr2.image_processing_got_ocr2 import (
    get_all_supported_aspect_ratios,
    get_optimal_tiled_canvas,
)
from transformers.models.granite_docling import image_processing_granite_docling as granite_docling

from mllm_explain.adapters.base import ModelAdapter, scaled_size
from mllm_explain.adapters.fixed_resolution import FixedResolutionAdapter
from mllm_explain.adapters.idefics3 import Idefics3Adapter
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.video import Video
from mllm_explain.views import Box, View, frame_views, tile_box


@register_adapter
class InternVLAdapter(ModelAdapter):
    """Tiles (row-major, each the part of the image it was cut from) and the thumbnail as an overview; an
    image the processor leaves in one tile is one view of the whole image."""

    model_types = {"internvl": "OpenGVLab/InternVL3-8B-hf", "qianfan_ocr": "baidu/Qianfan-OCR"}
    layout_text = ("**dynamic tiling as shipped**: up to 12 tiles (16x16 each) stretched from the image, row-major, "
                   "then the thumbnail as overview; one tile: one view. `InternVLLetterboxAdapter` is the untiled, "
                   "letterboxed option")
    scales_text = ("any within `max_vision_tokens`: the image resized before the processor; the tiles follow the "
                   "aspect ratio, so an enlarged image gets more tiles only where canvases of its ratio tie (a 448 px "
                   "square: 1 tile, 2x2 at 1.5x, 3x3 above 2.12x), else the same tiles resampled. "
                   "`InternVLLetterboxAdapter`: <= 1")
    video_model_types = frozenset({"internvl"})
    # (min tiles, max tiles) -> the (columns, rows) canvases the processor chooses from, fewest tiles first
    aspect_ratios = staticmethod(get_all_supported_aspect_ratios)

    def _setting(self, key: str):
        """An image-processing option as the processor's call resolves it: its own default over the image
        processor's (Command A Vision's processor has no defaults of its own)."""
        return getattr(self.processor, "images_kwargs", {}).get(key, getattr(self.processor.image_processor, key))

    @property
    def tile(self) -> tuple[int, int]:
        """(height, width) of a tile: the encoder's input."""
        size = self._setting("size")
        return size["height"], size["width"]

    def tiles(self, size: tuple[int, int], tile: tuple[int, int]) -> tuple[int, int]:
        """(rows, columns) of `tile`-sized (height, width) tiles the processor cuts an image of `size` (width,
        height) into."""
        if not self._setting("crop_to_patches"):
            return 1, 1
        columns, rows = get_optimal_tiled_canvas(size[::-1], tuple(tile), self._setting("min_patches"),
                                                 self._setting("max_patches"))
        return rows, columns

    def vision_tokens(self, size: tuple[int, int]) -> int:
        """Image tokens of an image of `size` (width, height): `image_seq_length` per tile and for the thumbnail."""
        return self._tokens(math.prod(self.tiles(size, self.tile)))

    def _tokens(self, tiles: int) -> int:
        return (tiles + (tiles > 1)) * self.tile_tokens

    @property
    def tile_tokens(self) -> int:
        """Image tokens the processor writes per tile: its `image_seq_length`."""
        return self.processor.image_seq_length

    def tile_grid(self, height: int, width: int) -> tuple[int, int]:
        """(rows, columns) of vision tokens of one `height` x `width` px tile: its encoder patches pixel-shuffled
        by `downsample_ratio`."""
        patch_h, patch_w = self.model.config.vision_config.patch_size
        ratio = self.model.config.downsample_ratio
        return round(height // patch_h * ratio), round(width // patch_w * ratio)

    def check_scale(self, image: Image.Image, scale: float) -> None:
        """Any scale within `max_vision_tokens`."""
        if scale == 1.0:
            return
        size = scaled_size(image, scale)
        tokens = self.vision_tokens(size)
        rows, columns = self.tiles(size, self.tile)
        self.bound_tokens(scale, tokens, f"{rows}x{columns} tiles and the thumbnail")

    def max_scale(self, image: Image.Image) -> float:
        """The smallest scale at which `image` gets the most tiles it can within `max_vision_tokens`: the largest of
        the canvases that tie with its aspect ratio; 1 where enlarging only resamples the same tiles."""
        if not self._setting("crop_to_patches"):
            return 1.0
        (height, width), ratio = self.tile, image.width / image.height
        grids = self.aspect_ratios(self._setting("min_patches"), self._setting("max_patches"))
        best = min(abs(ratio - columns / rows) for columns, rows in grids)
        tied = [(rows, columns) for columns, rows in grids if abs(ratio - columns / rows) == best]
        now = math.prod(self.tiles(image.size, self.tile))
        for rows, columns in reversed(tied):  # the most tiles first
            if rows * columns <= now:
                break
            if self._tokens(rows * columns) > self.max_vision_tokens:
                continue
            scale = math.sqrt(height * width * rows * columns / 2 / (image.width * image.height))
            for _ in range(3):  # to the first whole-pixel size over half the canvas
                if self.tiles(scaled_size(image, scale), self.tile) == (rows, columns):
                    return scale
                scale += 1 / min(image.size)
        return 1.0

    def vision_views(self, inputs, image: Image.Image, grid_box: Box) -> list[View]:
        count, _, height, width = inputs["pixel_values"].shape
        rows, columns = self.tiles(image.size, (height, width))
        if count != rows * columns + (rows * columns > 1):
            raise RuntimeError(f"the processor made {count} tiles of the {image.width}x{image.height} image, "
                               f"not the {rows}x{columns} tiles (and thumbnail) expected")
        grid = self.tile_grid(height, width)
        positions = self.image_token_positions(inputs).reshape(count, -1)
        if count == 1:
            return [View(positions[0], grid, grid_box=grid_box)]
        views = [View(positions[i], grid, kind="tile",
                      image_box=tile_box(i, rows, columns))
                 for i in range(count - 1)]
        return [*views, View(positions[-1], grid, kind="overview")]

    def video_views(self, inputs, video: Video) -> list[View]:
        """One view per frame, in order: the frame squashed to one tile, its tile's grid."""
        count, _, height, width = inputs["pixel_values"].shape
        if count != len(video.frames):
            raise RuntimeError(f"the processor made {count} tiles of a {len(video.frames)}-frame video")
        positions = self.image_token_positions(inputs).reshape(count, -1)
        return frame_views(positions, self.tile_grid(height, width), video.timestamps)


class InternVLLetterboxAdapter(FixedResolutionAdapter, InternVLAdapter):
    """InternVL on one tile: the image letterboxed onto a square, undistorted (not registered; wrap a loaded
    model in it, e.g. `InternVLLetterboxAdapter(adapter.model, adapter.processor, adapter.name_or_path)`)."""

    model_types = {}

    def __init__(self, model: torch.nn.Module, processor, name_or_path: str = "") -> None:
        processor = copy.copy(processor)  # untiled for this adapter only
        processor.images_kwargs = {**processor.images_kwargs, "crop_to_patches": False}
        super().__init__(model, processor, name_or_path)


@register_adapter
class AyaVisionAdapter(InternVLAdapter):
    """Aya Vision: InternVL's tiling (`GotOcr2ImageProcessor`'s canvas, tiles row-major, the thumbnail last) and a
    LLaVA model whose projector pixel-shuffles each tile's SigLIP patches by `downsample_factor`; the processor
    writes `TILE_i` before each tile's `<|IMG_PATCH|>` tokens and `TILE_GLOBAL` before the thumbnail's."""

    model_types = {"aya_vision": "CohereForAI/aya-vision-8b"}
    layout_text = ("as InternVL (up to 12 tiles of 13x13 each, row-major, then the thumbnail as overview); `TILE_i` "
                   "markers in no view")

    def tile_grid(self, height: int, width: int) -> tuple[int, int]:
        """A tile's SigLIP patches pixel-shuffled by `downsample_factor`."""
        patch, factor = self.model.config.vision_config.patch_size, self.model.config.downsample_factor
        return height // patch // factor, width // patch // factor

    @property
    def tile_tokens(self) -> int:
        """`(img_size // patch_size) ** 2`, the processor's count (its `patch_size` is the shuffled patch's)."""
        return (self.processor.img_size // self.processor.patch_size) ** 2


@register_adapter
class Cohere2VisionAdapter(AyaVisionAdapter):
    """Command A Vision: Aya Vision's model and tile order, but its own image processor, whose canvas is the one that
    needs the least upscaling of the image (else the least downscaling): the image's size, not only its aspect ratio,
    sets the tiles, so an enlarged image gets more tiles until it fills the largest canvas.  The processor writes
    `image_processor.patch_size ** 2` tokens per tile, each tile followed by `<|IMG_LINE_BREAK|>`."""

    model_types = {"cohere2_vision": "CohereLabs/command-a-vision-07-2025"}
    layout_text = ("up to 12 tiles of 16x16 each, row-major, on the canvas that needs the least upscaling, then the "
                   "thumbnail as overview; a line break after each tile, in no view")
    scales_text = ("any within `max_vision_tokens`: the image resized before the processor, whose canvas follows the "
                   "image's size, so an enlarged image gets more tiles until it fills the largest canvas; beyond that "
                   "the same tiles, resampled")

    @property
    def tile_tokens(self) -> int:
        return self.processor.image_processor.patch_size ** 2

    def tiles(self, size: tuple[int, int], tile: tuple[int, int]) -> tuple[int, int]:
        """(rows, columns) of tiles as the processor's own `get_optimal_tiled_canvas` picks them (imported on use:
        its module needs torchvision)."""
        from transformers.models.cohere2_vision.image_processing_cohere2_vision import get_optimal_tiled_canvas

        if not self._setting("crop_to_patches"):
            return 1, 1
        columns, rows = get_optimal_tiled_canvas(size[::-1], tuple(tile), self._setting("min_patches"),
                                       self._setting("max_patches"))
        return rows, columns

    def max_scale(self, image: Image.Image) -> float:
        """The scale at which `image` fills the largest canvas it can fill within `max_vision_tokens` (at least 1):
        beyond it the processor shrinks the image into that canvas."""
        from transformers.models.cohere2_vision.image_processing_cohere2_vision import get_all_supported_aspect_ratios

        if not self._setting("crop_to_patches"):
            return 1.0
        height, width = self.tile
        scale = max(min(columns * width / image.width, rows * height / image.height)
                    for columns, rows in get_all_supported_aspect_ratios(self._setting("max_patches"))
                    if self._tokens(columns * rows) <= self.max_vision_tokens)
        while scale > 1 and self.vision_tokens(scaled_size(image, scale)) > self.max_vision_tokens:
            scale -= 1 / max(image.size)
        return max(1.0, scale)


@register_adapter
class GraniteDoclingAdapter(InternVLAdapter):
    """Granite-Docling: InternVL's tiling rule (the canvas nearest the image's aspect ratio, ties to more tiles while
    the image covers over half of them; at most 32 tiles and 16 a side) in Idefics3's prompt (`<row_r_col_c>` before
    each tile, row-major, then `<global-img>` and the thumbnail, only with more than one tile), read as Idefics3's; a
    Granite text model (DeepStack features added to the image tokens of its first layers) that divides its logits by
    `logits_scaling`.  The fine route (processor's `fine_route`) gives 4x the tokens of a tile, twice the side."""

    logit_divisor_key = "logits_scaling"
    model_types = {"granite_docling": "ibm-granite/granite-for-docling-500m"}
    layout_text = ("as InternVL's tiles (up to 32, 16 a side, 8x8 each; 16x16 on the fine route), with Idefics3's "
                   "`<row_r_col_c>` markers (in no view), then the global image only when there is more than one tile")
    aspect_ratios = staticmethod(granite_docling.get_all_supported_aspect_ratios)
    vision_views = Idefics3Adapter.vision_views
    final_norm = Idefics3Adapter.final_norm
    last_attention = Idefics3Adapter.last_attention
    last_layer = Idefics3Adapter.last_layer

    def tiles(self, size: tuple[int, int], tile: tuple[int, int]) -> tuple[int, int]:
        """(rows, columns) of tiles as the image processor's own `get_tile_grid` picks them."""
        return self.processor.image_processor.get_tile_grid(size[1], size[0], {"size": dict(zip(("height", "width"),
                                                                                                 tile))})

    @property
    def tile_tokens(self) -> int:
        """The processor's `image_seq_len`, 4x on the fine route."""
        return self.processor.image_seq_len * (4 if self.processor.image_processor.fine_route else 1)
