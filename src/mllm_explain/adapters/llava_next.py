"""LLaVA-NeXT (LLaVA-1.6) and LLaVA-OneVision in the llava-hf layout: any-resolution tiling.

The processor feeds a base image (the whole image squashed to one encoder tile) and the tiles of the image
resized, aspect kept, into the best of `image_grid_pinpoints` and centred on it (padded).  The model
(`pack_image_features`) puts the base image's patches first, then assembles the tiles' patches into one grid
of the padded canvas, crops it back to the image's aspect ratio (`unpad_image`), for OneVision shrinks it
bilinearly when it is over `anyres_max_N` tiles' worth of patches, and ends each row with `image_newline`.
Every one of those features, the row ends too, has an image placeholder token in `input_ids`, in that order.

Views: the base image (overview) and the unpadded grid as ONE tile view: its rows run across tile borders in
the sequence, so one grid of the canvas is what the language model reads (and after OneVision's shrink no
cell belongs to one tile); its boxes say which part of the image and of the grid show each other (unpadding
is to whole patches, so a strip of padding may remain, or a strip of the image be cropped).  Row ends are in
no view.  An encoder whose tile is no whole number of patches (SigLIP-384/14: 27 patches see 378 of 384 px)
drops a strip at each tile's bottom and right: the overview says so exactly; the tile view spreads each tile's
patches evenly over the tile, centred on what they see, so a cell is at most half that strip (SigLIP: 3 px, a
fifth of a patch) off the patch it stands for.

A scale resizes the image before the processor, which picks its canvas from the new size: an enlarged image
picks a larger pinpoint (more tiles, each seeing finer detail) until it fills the largest one that holds it
(`max_scale`); beyond that the processor shrinks it back into that canvas, so such scales are refused (within
`SCALE_TOLERANCE`).  OneVision's grid over `anyres_max_N` tiles' worth is shrunk back for the language model,
so there more tiles mostly mean finer features at about the same grid.  Any scale but 1 is bounded by
`max_vision_tokens` (the overview's, the tile grid's and its row ends).

A video (LLaVA-NeXT-Video, LLaVA-OneVision) is no tiling: each sampled frame is one encoder tile, its patch grid pooled
2x2 by the model, and the frames' grids follow each other in the sequence, one video placeholder token per pooled
cell, with no marker or time between them: one view per frame.  LLaVA-NeXT-Video resizes the frame's shorter side to
the tile and crops the centre (CLIP-336/14: 24x24 patches, average-pooled to 12x12, an odd row or column dropped);
OneVision squashes the frame to the tile (SigLIP-384/14: 27x27 patches seeing 378 px, resized bilinearly to 14x14,
edge to edge) and ends the video with one `image_newline` token, in no view.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from PIL import Image
from transformers.image_processing_utils import select_best_resolution
from transformers.image_transforms import get_resize_output_image_size

from mllm_explain.adapters.base import ModelAdapter, scaled_size
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.errors import UserError
from mllm_explain.video import Video
from mllm_explain.views import FULL_BOX, Box, View, frame_views

SCALE_TOLERANCE = 0.01  # a scale this far (relatively) beyond the largest pinpoint's is taken: a shrink of <= 1%


def _overlap(grid: tuple[float, float], image: tuple[float, float]) -> tuple[float, float, float, float]:
    """(image from, image to, grid from, grid to): the fractions of a grid's and an image's spans (pixels of
    one canvas axis, [start, end)) that show each other."""
    start, end = max(grid[0], image[0]), min(grid[1], image[1])
    image_length, grid_length = image[1] - image[0], grid[1] - grid[0]
    return ((start - image[0]) / image_length, (end - image[0]) / image_length,
            (start - grid[0]) / grid_length, (end - grid[0]) / grid_length)


@register_adapter
class LlavaNextAdapter(ModelAdapter):
    model_types = {"llava_next": "llava-hf/llava-v1.6-mistral-7b-hf",
                   "llava_next_video": "llava-hf/LLaVA-NeXT-Video-7B-hf"}
    video_model_types = frozenset({"llava_next_video"})
    video_newlines = 0  # `image_newline` tokens after a video's frames (OneVision: one)
    layout_text = ("an overview (the image squashed to one tile), then the any-resolution tiles as one grid unpadded "
                   "to the image; `image_newline` row ends in no view")
    scales_text = ("the image resized before the processor; enlarged, it takes a larger pinpoint (more tiles) up to "
                   "where it fills the largest one; beyond that the processor would shrink it back, so such scales are "
                   "refused in one line")

    def vision_views(self, inputs, image: Image.Image, grid_box: Box) -> list[View]:
        """The base image's grid, then the unpadded grid of the tiles; `grid_box` is the full one of the
        base `scaled_image` (the image is resized, not framed)."""
        vision = self.model.config.vision_config
        side = self.feature_side
        seen = vision.image_size // vision.patch_size * vision.patch_size / vision.image_size  # the rest is dropped
        height, width = (int(n) for n in inputs["image_sizes"][0])
        rows, cols, image_box, tile_box = self._tile_grid(height, width)
        positions = self.image_token_positions(inputs)
        if len(positions) != side * side + rows * (cols + 1):
            raise RuntimeError(f"{len(positions)} image tokens, but a {side}x{side} base image and a {rows}x{cols} "
                               "grid of tiles with one row end per row make "
                               f"{side * side + rows * (cols + 1)}")
        views = [View(positions[:side * side], (side, side), image_box=(0.0, 0.0, seen, seen), kind="overview")]
        if rows * cols:
            tiles = positions[side * side:].reshape(rows, cols + 1)[:, :cols].flatten()
            views.append(View(tiles, (rows, cols), image_box=image_box, grid_box=tile_box, kind="tile"))
        return views

    def video_views(self, inputs, video: Video) -> list[View]:
        """One view per frame, in order: its square grid of pooled cells over the part of the frame the encoder's
        tile shows (`_frame_box`) and its pooled cells cover (`_pooled_seen`)."""
        positions = self.video_token_positions(inputs)
        count = len(video.frames)
        per_frame = (len(positions) - self.video_newlines) // count
        side = math.isqrt(per_frame)
        if side * side != per_frame or count * per_frame + self.video_newlines != len(positions):
            raise RuntimeError(f"{len(positions)} video tokens are not {count} frames of a square grid and "
                               f"{self.video_newlines} row ends")
        top, left, bottom, right = self._frame_box(video.frames[0])
        seen = self._pooled_seen(side)
        box = (top, left, top + (bottom - top) * seen, left + (right - left) * seen)
        return frame_views(positions[:count * per_frame].reshape(count, per_frame), (side, side), video.timestamps,
                           image_box=box)

    def _frame_box(self, frame: Image.Image) -> Box:
        """The part of a frame the video processor feeds the encoder: all of it squashed to `size` (height and width
        given), or the centre crop of `crop_size` after its shorter side is resized to `size`'s shortest edge."""
        processor = self.processor.video_processor
        size, crop = processor.size, processor.crop_size
        if size.get("shortest_edge") is None or not processor.do_center_crop or crop is None:
            return FULL_BOX
        height, width = get_resize_output_image_size(np.zeros((frame.height, frame.width, 1)),
                                                     size=size["shortest_edge"], default_to_square=False,
                                                     input_data_format="channels_last")
        top, left = int((height - crop["height"]) / 2.0), int((width - crop["width"]) / 2.0)
        return (max(top, 0) / height, max(left, 0) / width, min(top + crop["height"], height) / height,
                min(left + crop["width"], width) / width)

    def _pooled_seen(self, side: int) -> float:
        """The share of the encoder's tile (each way) a frame's `side` pooled cells cover: average pooling of stride s
        covers s * side patches (a last odd one dropped)."""
        vision = self.model.config.vision_config
        return min(1.0, side * self.model.config.spatial_pool_stride * vision.patch_size / vision.image_size)

    def fill_scale(self, image: Image.Image) -> tuple[float, tuple[int, int]]:
        """The scale at which the image fills the pinpoint that holds it largest, and that pinpoint (height, width):
        beyond it the processor shrinks the image back into that canvas, and no more of its pixels reach the
        encoder."""
        width, height = image.size
        return max((min(w / width, h / height), (h, w)) for h, w in self.model.config.image_grid_pinpoints)

    def vision_tokens(self, size: tuple[int, int]) -> int:
        """Image tokens of an input of `size` (width, height): the overview's, the tile grid's and its row ends."""
        rows, cols, _, _ = self._tile_grid(size[1], size[0])
        return self.feature_side ** 2 + rows * (cols + 1)

    def check_scale(self, image: Image.Image, scale: float) -> None:
        """Any scale up to the largest pinpoint's (`fill_scale`, within `SCALE_TOLERANCE`) and `max_vision_tokens`."""
        if scale == 1.0:
            return
        largest, (canvas_h, canvas_w) = self.fill_scale(image)
        if scale > 1 and scale > largest * (1 + SCALE_TOLERANCE):
            where = f"at scale {largest:.3g}" if largest > 1 else "already at scale 1"
            raise UserError(f"scale {scale} shows no more: this {image.width}x{image.height} image fills the model's "
                            f"largest canvas of tiles ({canvas_w}x{canvas_h} px) {where}, and its processor shrinks "
                            "any larger input back into it")
        size = scaled_size(image, scale)
        tokens = self.vision_tokens(size)
        if tokens > self.max_vision_tokens:
            raise UserError(f"scale {scale} gives a {size[0]}x{size[1]} px input of {tokens} vision tokens, more than "
                            f"max_vision_tokens={self.max_vision_tokens}")

    def max_scale(self, image: Image.Image) -> float:
        """The largest scale up to the largest pinpoint's (`fill_scale`) within `max_vision_tokens` (at least 1)."""
        scale = self.fill_scale(image)[0]
        while scale > 1 and self.vision_tokens(scaled_size(image, scale)) > self.max_vision_tokens:
            scale -= 1 / max(image.size)
        return max(1.0, scale)

    @property
    def feature_side(self) -> int:
        """Features a side of one tile (the base image, each any-resolution tile) gives the language model: its
        encoder's patches."""
        vision = self.model.config.vision_config
        return vision.image_size // vision.patch_size

    def _tile_grid(self, height: int, width: int) -> tuple[int, int, Box, Box]:
        """(rows, cols, image_box, grid_box) of the unpadded grid of tiles of a `height` x `width` image."""
        config = self.model.config
        tile, side = config.vision_config.image_size, self.feature_side
        canvas_h, canvas_w = select_best_resolution((height, width), config.image_grid_pinpoints)
        # The processor's resize into the canvas (image_processing_utils.get_patch_output_size) and centring.
        scale_w, scale_h = canvas_w / width, canvas_h / height
        if scale_w < scale_h:
            new_h, new_w = min(math.ceil(height * scale_w), canvas_h), canvas_w
        else:
            new_h, new_w = canvas_h, min(math.ceil(width * scale_h), canvas_w)
        top, left = (canvas_h - new_h) // 2, (canvas_w - new_w) // 2
        # The model's crop of the canvas's patch grid (modeling_llava_next.unpad_image), in whole patches.
        grid_h, grid_w = canvas_h // tile * side, canvas_w // tile * side
        pad_y = pad_x = 0
        if width / height > grid_w / grid_h:
            pad_y = (grid_h - int(round(height * (grid_w / width), 7))) // 2
        else:
            pad_x = (grid_w - int(round(width * (grid_h / height), 7))) // 2
        rows, cols = grid_h - 2 * pad_y, grid_w - 2 * pad_x
        if not rows * cols:  # an image too thin for one row or column of patches
            return rows, cols, FULL_BOX, FULL_BOX
        # A tile's patches spread evenly over all of it, centred on those the encoder sees (see the docstring).
        patch = config.vision_config.patch_size
        pitch, shift = tile / side, (tile - tile // patch * patch) / 2
        i_top, i_bottom, g_top, g_bottom = _overlap((pad_y * pitch - shift, (grid_h - pad_y) * pitch - shift),
                                                    (top, top + new_h))
        i_left, i_right, g_left, g_right = _overlap((pad_x * pitch - shift, (grid_w - pad_x) * pitch - shift),
                                                    (left, left + new_w))
        rows, cols = self._shrunk(rows, cols)
        return rows, cols, (i_top, i_left, i_bottom, i_right), (g_top, g_left, g_bottom, g_right)

    def _shrunk(self, rows: int, cols: int) -> tuple[int, int]:
        """The grid's shape as the language model gets it (LLaVA-NeXT: as unpadded)."""
        return rows, cols


@register_adapter
class LlavaOnevisionAdapter(LlavaNextAdapter):
    model_types = {"llava_onevision": "llava-hf/llava-onevision-qwen2-7b-ov-hf"}
    layout_text = "as LLaVA-NeXT (SigLIP, 27x27 per tile), the tile grid shrunk by `anyres_max_9`"
    video_model_types = frozenset({"llava_onevision"})
    video_newlines = 1
    scales_text = ("as LLaVA-NeXT; a grid over 9 tiles' worth is shrunk back, so more tiles mostly give finer features "
                   "at about the same grid")

    def _shrunk(self, rows: int, cols: int) -> tuple[int, int]:
        """An unpadded grid of over `anyres_max_N` tiles' worth of patches (times 1.1^2) is resized bilinearly,
        edge to edge, so it still shows what it showed (modeling_llava_onevision.pack_image_features)."""
        config = self.model.config
        side = config.vision_config.image_size // config.vision_config.patch_size
        ratio = math.sqrt(rows * cols / (int(config.vision_aspect_ratio.removeprefix("anyres_max_")) * side ** 2))
        return (int(rows // ratio), int(cols // ratio)) if ratio > 1.1 else (rows, cols)

    def _pooled_seen(self, side: int) -> float:
        """The encoder's patches resized bilinearly edge to edge (`apply_pooling`): the pooled cells cover what they
        see."""
        vision = self.model.config.vision_config
        return vision.image_size // vision.patch_size * vision.patch_size / vision.image_size



@register_adapter
class Granite4VisionAdapter(LlavaNextAdapter):
    """Granite 4 Vision: LLaVA-NeXT's layout (the base image, then the unpadded tile grid with `image_newline` row
    ends), each tile's patches downsampled by `downsample_rate` (windowed Q-Formers; 2x2 blocks sampled for the
    spatial groups) before packing; the features are added to the image tokens' (zeroed) states at several decoder
    layers (DeepStack), and the Granite LM divides its logits by `logits_scaling`."""

    logit_divisor_key = "logits_scaling"
    model_types = {"granite4_vision": "no checkpoint named in transformers 5.24"}
    layout_text = ("as LLaVA-NeXT with each tile's patch grid scaled by `downsample_rate` (e.g. 1/2 a side); the "
                   "features enter at several decoder layers (DeepStack)")

    @property
    def feature_side(self) -> int:
        """The encoder's patches a side, times `downsample_rate`, as the model and its processor count them."""
        return int(super().feature_side * Fraction(self.model.config.downsample_rate))
