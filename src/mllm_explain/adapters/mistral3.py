"""Mistral 3 (Mistral Small 3.1 / 3.2, Ministral 3: `Mistral3ForConditionalGeneration` with `PixtralProcessor`):
native resolution up to a longest edge.  The processor shrinks the image (keeping its aspect) to fit `longest_edge`
and then stretches it up to whole merged patches (`patch_size` x `spatial_merge_size` px); each merged patch is one
[IMG] token, row by row, each row ended by [IMG_BREAK] and the last by [IMG_END] (markers, in no view).  The [IMG]
tokens form one grid over the whole image.

A scale is a different input size: the size the processor would give the image, times the scale.  Scale 1 is the
processor's own size; above it the processor's longest edge is lifted for that call only (a default of the
processor, not a limit of the model), so an enlarged image is fed as enlarged.  Any scale but 1 is bounded by
`max_vision_tokens`, and inputs of one merged patch (28 px or less each way in the checkpoints), which transformers'
Mistral 3 cannot take, are refused.

LightOnOCR (no row separators) and Fuyu (raw patches, `|NEWLINE|` separators, padding) declare what differs.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import ClassVar

import torch
from PIL import Image
from transformers.models.fuyu.processing_fuyu import BEGINNING_OF_ANSWER_STRING

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.errors import UserError
from mllm_explain.views import Box, View


@register_adapter
class Mistral3Adapter(ModelAdapter):
    model_types = {"mistral3": "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
                   "mistral_large4": "mistralai/Mistral-Large-4-1T-A52B"}
    layout_text = "one native-resolution grid, `[IMG_BREAK]` / `[IMG_END]` separators in no view"
    scales_text = ("any within `max_vision_tokens` and over one merged patch: the processor's size times the scale, "
                   "its longest edge lifted above 1")
    one_token_fails: ClassVar[bool] = True  # an input of one vision token is refused (see `_scaled_size`)

    def vision_grid(self, inputs) -> tuple[int, int]:
        """Merged patches each way of the resized image, from `image_sizes` as the model splits its features."""
        height, width = inputs["image_sizes"][0].tolist()
        config = self.model.config
        factor = config.vision_config.patch_size * config.spatial_merge_size
        return height // factor, width // factor

    @property
    def longest_edge(self) -> int:
        return self.processor.image_processor.size["longest_edge"]

    def _input_size(self, image: Image.Image) -> tuple[int, int]:
        """(width, height) the processor fits `image` to before rounding up to whole merged patches."""
        ratio = max(image.width, image.height) / self.longest_edge
        if ratio <= 1:
            return image.size
        return math.floor(image.width / ratio), math.floor(image.height / ratio)

    def _merged(self) -> int:
        """Pixels per merged patch, each way: one [IMG] token."""
        return self.model.config.vision_config.patch_size * self.model.config.spatial_merge_size

    def vision_tokens(self, size: tuple[int, int]) -> int:
        """[IMG] tokens of a (width, height) input fed at its own size (rounded up to whole merged patches)."""
        merged = self._merged()
        return math.ceil(size[0] / merged) * math.ceil(size[1] / merged)

    def max_scale(self, image: Image.Image) -> float:
        """The scale that brings the input's longer side to the processor's own longest edge, within
        `max_vision_tokens` (at least 1)."""
        width, height = self._input_size(image)
        scale = min(self._room(width, height),
                    math.sqrt(self.max_vision_tokens / self.vision_tokens((width, height))))
        while scale > 1 and self.vision_tokens((round(width * scale), round(height * scale))) > self.max_vision_tokens:
            scale -= 1 / max(width, height)
        return max(1.0, scale)

    def _room(self, width: int, height: int) -> float:
        """The scale that brings a (width, height) input to the processor's own bound: its longest edge."""
        return self.longest_edge / max(width, height)

    def processor_kwargs(self, image: Image.Image, scale: float) -> dict:
        """Above scale 1, the longest edge lifted to the enlarged image's, so the processor keeps its size."""
        if scale <= 1.0 or max(image.size) <= self.longest_edge:
            return {}
        return {"size": {"longest_edge": max(image.size)}}

    def check_scale(self, image: Image.Image, scale: float) -> None:
        self._scaled_size(image, scale)

    def scaled_image(self, image: Image.Image, scale: float) -> tuple[Image.Image, tuple[float, float, float, float]]:
        size = self._scaled_size(image, scale)
        if scale == 1.0:  # the processor's own size
            return image, (0.0, 0.0, 1.0, 1.0)
        return image.resize(size, Image.BICUBIC), (0.0, 0.0, 1.0, 1.0)

    def _scaled_size(self, image: Image.Image, scale: float) -> tuple[int, int]:
        """(width, height) the processor fits `image` at `scale` to; a UserError beyond `max_vision_tokens`, or for
        one merged patch, which transformers' `Mistral3Model.get_image_features` cannot take (it squeezes the
        single feature row away)."""
        size = self._input_size(image)
        if scale != 1.0:
            size = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
            self.bound_tokens(scale, self.vision_tokens(size), f"a {size[0]}x{size[1]} px input")
        merged = self._merged()
        if self.one_token_fails and max(size) <= merged:
            raise UserError(f"scale {scale} gives a {size[0]}x{size[1]} px input, one vision token: this model needs "
                            f"an input over {merged} px on one side")
        return size


@register_adapter
class LightOnOcrAdapter(Mistral3Adapter):
    """LightOnOCR: Mistral 3's Pixtral encoder and 2x2 merge around a Qwen3 text model; its processor writes the image
    tokens with no row separators, and its image processor rounds the image to whole patches (14 px), not merged
    ones, so the merge drops an odd last row or column of patches: the grid shows the image less that strip."""

    model_types = {"lighton_ocr": "lightonai/LightOnOCR-1B-1025"}
    layout_text = ("as Mistral 3 without row separators; an odd last row or column of patches, which the 2x2 merge "
                   "drops, in no view")

    def vision_views(self, inputs, image: Image.Image, grid_box: Box) -> list[View]:
        """The one grid, showing the merged patches' part of the resized image (`image_sizes`)."""
        height, width = inputs["image_sizes"][0].tolist()
        rows, cols = self.vision_grid(inputs)
        merged = self._merged()
        image_box = (0.0, 0.0, rows * merged / height, cols * merged / width)
        return [View(self.image_token_positions(inputs), (rows, cols), image_box=image_box, grid_box=grid_box)]


@register_adapter
class FuyuAdapter(Mistral3Adapter):
    """Fuyu (`fuyu`, `FuyuForCausalLM` with `FuyuProcessor`): no vision encoder.  The processor only shrinks an image
    (aspect kept, sizes truncated to whole pixels) to fit `size` (1080x1920 px), never enlarges it, pads it bottom/right
    and cuts it into 30 px patches, ceil(height / 30) rows of ceil(width / 30): the last row and column show the image
    in part and the processor's (near-black) padding in the rest, so the grid shows the image in its top-left part.
    Each patch's raw pixels are projected linearly (`vision_embed_tokens`) into one `|SPEAKER|` token, row by row, each
    row ended by a `|NEWLINE|` token (a marker, in no view): Mistral 3's grid with another separator.  After the image
    come `<s>`, the prompt and the beginning-of-answer byte `<0x04>`, where the answer starts (no chat template).

    Scales as Mistral 3's: the size the processor would give the image, times the scale, its `size` lifted above 1 (to
    whole patches) for that call only.  An input of one patch is fine (there is no encoder to fail on it).
    """

    model_types = {"fuyu": "adept/fuyu-8b"}
    several_images = False  # its processor writes one image before the prompt (no placeholder in the text)
    layout_text = ("one grid of raw 30 px patches of the image, shrunk to fit 1080x1920 px and padded bottom/right to "
                   "whole patches (the padding in no map); `|NEWLINE|` separators in no view")
    scales_text = ("any within `max_vision_tokens`: the processor's size times the scale, its 1080x1920 px bound "
                   "lifted above 1")
    one_token_fails = False

    @property
    def final_norm(self) -> torch.nn.Module:
        return self.model.model.language_model.final_layernorm

    def chat_text(self, prompt: str) -> str:
        """The prompt alone: the processor writes the image's tokens, `<s>` and the beginning of the answer."""
        return prompt

    @cached_property
    def control_tokens(self) -> list[str]:
        """The tokenizer's special tokens and the processor's image tokens and beginning of answer, which are plain
        vocabulary entries: in user text they would be read as the image's or the answer's start."""
        markers = [self.processor.image_token, self.processor.image_newline_token, BEGINNING_OF_ANSWER_STRING]
        return [*super().control_tokens, *markers]

    def vision_grid(self, inputs) -> tuple[int, int]:
        """(rows, columns) of patches, from the tokens: one `|NEWLINE|` ends each row of `|SPEAKER|`s."""
        ids = inputs["input_ids"][0]
        rows = int((ids == self.processor.image_newline_id).sum())
        return rows, int((ids == self.image_token_id).sum()) // rows

    @property
    def _bound(self) -> tuple[int, int]:
        """(height, width) the processor shrinks an image to fit within."""
        size = self.processor.image_processor.size
        return size["height"], size["width"]

    def _merged(self) -> int:
        """Pixels per patch, each way: one `|SPEAKER|` token."""
        return self.model.config.patch_size

    def _input_size(self, image: Image.Image) -> tuple[int, int]:
        """(width, height) the processor shrinks `image` to (its own rule and rounding), or its own size if it fits;
        a UserError where a side would round to nothing (the processor fails on it)."""
        height, width = self._bound
        if image.width <= width and image.height <= height:
            return image.size
        factor = min(height / image.height, width / image.width)
        size = int(image.width * factor), int(image.height * factor)
        if not min(size):
            raise UserError(f"the processor would shrink the {image.width}x{image.height} image to {size[0]}x{size[1]} "
                            f"px to fit {width}x{height}: it is too elongated for this model")
        return size

    def _room(self, width: int, height: int) -> float:
        """The scale that brings a (width, height) input to the processor's bound, each way."""
        bound_height, bound_width = self._bound
        return min(bound_height / height, bound_width / width)

    def processor_kwargs(self, image: Image.Image, scale: float) -> dict:
        """The patches as `pixel_values` (not the deprecated `image_patches`); above scale 1, the processor's bound
        lifted to the enlarged image's whole patches (its padded canvas must cut into whole patches)."""
        kwargs = {"return_legacy_image_output": False}
        height, width = self._bound
        if scale > 1.0 and (image.height > height or image.width > width):
            patch = self._merged()
            kwargs["size"] = {"height": max(height, math.ceil(image.height / patch) * patch),
                              "width": max(width, math.ceil(image.width / patch) * patch)}
        return kwargs

    def scaled_image(self, image: Image.Image, scale: float) -> tuple[Image.Image, tuple[float, float, float, float]]:
        """Mistral 3's input at `scale`, and the top-left part of the grid the image fills: the rest of the last row
        and column is padding."""
        fed, _ = super().scaled_image(image, scale)
        width, height = self._scaled_size(image, scale)
        patch = self._merged()
        return fed, (0.0, 0.0, height / (math.ceil(height / patch) * patch),
                     width / (math.ceil(width / patch) * patch))
