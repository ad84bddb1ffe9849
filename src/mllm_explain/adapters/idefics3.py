"""Idefics3 and SmolVLM (`Idefics3ForConditionalGeneration`, `SmolVLMForConditionalGeneration`): image splitting.

The image processor resizes the image's long edge to `size["longest_edge"]` (4 tiles in the checkpoints, so small
images are upscaled), stretches the result to whole tiles of `max_image_size` px, rows x cols of them (no padding:
the tiles partition the image), and adds the whole image stretched to one tile, the global image.  The prompt holds
`<fake_token_around_image><row_r_col_c>` and a tile's vision tokens for each tile, row-major, "\\n" after each row of
tiles, then `\\n<fake_token_around_image><global-img>`, the global image's tokens and `<fake_token_around_image>`.
A sub-image's tokens are a square grid, row-major: its patches pixel-shuffled by `scale_factor`.  An image the
processor does not split (`do_image_splitting` off, or a `size` of one tile) is the global image alone.

Scales: below 1 the image is shrunk before the processor, which resizes its long edge to `size` again: the tiling
stays, only the detail changes.  Above 1 the processor's `size["longest_edge"]` is lifted to `scale` times its own
for that call (`max_image_size`, the tile, is kept) and it resizes the image once, to that edge: the enlarged image
is split into more tiles of the same size (`scale` times as many each way, to whole tiles) and the global image
stays one tile, so the tiles see finer detail.  Such a scale is bounded by `max_vision_tokens` (`image_seq_len` per
tile and for the global image) and by the longest edge the processor allows at all (`MAX_IMAGE_SIZE`, 4096 px),
and needs image splitting on.

A video (SmolVLM2, `smolvlm`): each sampled frame is resized to one tile (its long edge to the video processor's
`size`, then stretched to the `max_image_size` square, never split) and written as a global image of its own after
"\nFrame from MM:SS:" (the processor's intro with the frame count and duration before them all): one view per frame.
"""

from __future__ import annotations

import math
import re

import torch
from PIL import Image
from transformers.models.idefics3.image_processing_idefics3 import MAX_IMAGE_SIZE  # SmolVLM's is the same

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.errors import UserError
from mllm_explain.video import Video
from mllm_explain.views import FULL_BOX, Box, View, frame_views

_TILE_MARKER = re.compile(r"<row_(\d+)_col_(\d+)>")


@register_adapter
class Idefics3Adapter(ModelAdapter):
    """Tiles (row-major, each the part of the image it was cut from) and the global image as the overview."""

    model_types = {"idefics3": "HuggingFaceM4/Idefics3-8B-Llama3"}  # Idefics3 and SmolVLM (v1) checkpoints
    layout_text = ("sub-images partitioning the resized image, row-major (`<row_r_col_c>` markers in no view), then "
                   "the global image")
    scales_text = ("below 1 only blurs (the processor resizes the long edge back); above 1 the processor's longest "
                   "edge is lifted to s times its own (up to its 4096 px cap), so more tiles of the same size (2x: "
                   "about 4x the tiles); within `max_vision_tokens`")

    @property
    def final_norm(self) -> torch.nn.Module:
        return self.model.model.text_model.norm

    @property
    def last_attention(self) -> torch.nn.Module:
        return self.model.model.text_model.layers[-1].self_attn

    @property
    def last_layer(self) -> torch.nn.Module:
        return self.model.model.text_model.layers[-1]

    def vision_views(self, inputs, image: Image.Image, grid_box: Box) -> list[View]:
        """The tiles, row-major, each the part of the image it was cut from, then the global image (the only view
        when there are no tiles).  A sub-image is a run of image tokens; its marker is the text between the
        `<fake_token_around_image>` before it and the run (a tokenizer without `<row_r_col_c>` tokens spells it
        out in several).  `grid_box` is the whole grid: the base `scaled_image` does not pad."""
        ids = inputs["input_ids"][0].cpu()
        positions = self.image_token_positions(inputs)
        starts = torch.cat([positions[:1], positions[1:][positions[1:] - positions[:-1] != 1]]).tolist()
        fake = (ids == self.tokenizer.convert_tokens_to_ids(self.processor.fake_image_token)).nonzero().flatten()
        markers = [self.tokenizer.decode(ids[int(fake[fake < start].max()) + 1:start]).strip() for start in starts]
        tiles = [_TILE_MARKER.fullmatch(marker) for marker in markers[:-1]]
        cells = [(int(tile[1]), int(tile[2])) for tile in tiles if tile]
        rows, cols = cells[-1] if cells else (0, 0)
        if cells != [(r, c) for r in range(1, rows + 1) for c in range(1, cols + 1)] or len(cells) != len(tiles):
            raise RuntimeError(f"the sub-image markers {markers} are no row-major grid of tiles and a global image")
        runs = positions.reshape(len(starts), -1)  # sub-images of one size
        side = math.isqrt(runs.shape[1])
        views = [View(run, (side, side), ((r - 1) / rows, (c - 1) / cols, r / rows, c / cols), kind="tile")
                 for run, (r, c) in zip(runs, cells)]
        return [*views, View(runs[-1], (side, side), kind="overview" if views else "image")]

    @property
    def longest_edge(self) -> int:
        """The processor's own long edge: every image's long edge is resized to it at scale 1."""
        return self.processor.image_processor.size["longest_edge"]

    def edge(self, scale: float) -> int:
        """The long edge the processor is given for `scale` above 1."""
        return round(self.longest_edge * scale)

    def tiles(self, image: Image.Image, edge: int) -> tuple[int, int]:
        """(rows, columns) of tiles the processor splits `image` into with its long edge resized to `edge` px
        ((0, 0): the global image alone), as its own `get_number_of_image_patches` counts them."""
        _, rows, columns = self.processor.image_processor.get_number_of_image_patches(
            image.height, image.width, {"size": {"longest_edge": edge}})
        return rows, columns

    def vision_tokens(self, image: Image.Image, edge: int) -> int:
        """Image tokens of `image` with its long edge resized to `edge` px: `image_seq_len` per tile and for the
        global image."""
        rows, columns = self.tiles(image, edge)
        return (rows * columns + 1) * self.processor.image_seq_len

    def check_scale(self, image: Image.Image, scale: float) -> None:
        """Any scale up to 1 (the processor resizes the image back); above it, one the processor can split within
        its largest edge and `max_vision_tokens`."""
        if scale <= 1:
            return
        if not self.processor.image_processor.do_image_splitting:
            raise UserError(f"scale {scale} is not possible for {type(self).__name__} with image splitting off: "
                            "its processor resizes any input to one tile")
        edge = self.edge(scale)
        if edge > MAX_IMAGE_SIZE:
            raise UserError(f"scale {scale} gives a long edge of {edge} px, beyond the {MAX_IMAGE_SIZE} px this "
                            "model's processor shrinks any image to")
        tokens = self.vision_tokens(image, edge)
        rows, columns = self.tiles(image, edge)
        self.bound_tokens(scale, tokens, f"{rows}x{columns} tiles and the global image")

    def processor_kwargs(self, image: Image.Image, scale: float) -> dict:
        """Above scale 1, the long edge lifted to `edge(scale)` for this call; the tile size stays."""
        return {"size": {"longest_edge": self.edge(scale)}} if scale > 1 else {}

    def scaled_image(self, image: Image.Image, scale: float) -> tuple[Image.Image, Box]:
        """Above scale 1, the image as given, which the processor resizes once, to the lifted edge; below 1, the base's
        shrunk image."""
        if scale <= 1:
            return super().scaled_image(image, scale)
        self.check_scale(image, scale)
        return image, FULL_BOX


@register_adapter
class SmolVLMAdapter(Idefics3Adapter):
    """SmolVLM2 (`smolvlm`): Idefics3's layout; a video's frames each one global image."""

    model_types = {"smolvlm": "HuggingFaceTB/SmolVLM2-2.2B-Instruct"}
    video_model_types = frozenset({"smolvlm"})

    def video_views(self, inputs, video: Video) -> list[View]:
        """One view per frame, in order: the frame stretched to one tile, `image_seq_len` tokens in a square grid."""
        positions, count = self.image_token_positions(inputs), len(video.frames)
        per_frame = self.processor.image_seq_len
        side = math.isqrt(per_frame)
        if len(positions) != count * per_frame or side * side != per_frame:
            raise RuntimeError(f"{len(positions)} image tokens are not {count} frames of {per_frame}")
        return frame_views(positions.reshape(count, per_frame), (side, side), video.timestamps)
