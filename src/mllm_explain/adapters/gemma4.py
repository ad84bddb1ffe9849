"""Gemma 4 (`Gemma4ForConditionalGeneration`) and its encoder-free variant (`Gemma4UnifiedForConditionalGeneration`):
native aspect, one row-major grid of soft tokens between `<boi>` and `<eoi>` (in no view).

The processor resizes the image, aspect kept, to the most 48 px cells (16 px patches, 3x3) its soft-token budget
(`max_soft_tokens`, 280 as shipped) allows; Gemma 4's encoder average-pools each cell's 3x3 patches into one soft
token, the unified model embeds each cell's merged pixels directly.  The grid is read from the processor's output:
the patches' (x, y) `image_position_ids`, 3x3 (or 1x1 merged) per soft token.

A scale is a different input size: the processor's size for the image, times the scale, in whole cells (at least
one each way), fed at that size with the processor's resize off (its budget is a default of the processor, not a
limit of the model, and it admits only five values).  Scale 1 is the processor's own size; any other is bounded by
`max_vision_tokens`.

Two quirks of the language model: its logits are soft-capped (`final_logit_softcapping`, which the base `logits`
repeats), and its KV-shared last layers (Gemma 4 E2B, E4B) reuse an earlier layer's keys and values and compute only the
positions whose logits are kept: every forward whose final-norm states are read runs them on all positions, and the
gradients are those of the states entering the last layer with keys and values of its own.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from PIL import Image
from transformers.models.gemma4.image_processing_gemma4 import get_aspect_ratio_preserving_size

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.errors import UserError

LARGEST_BUDGET = 1120  # the largest `max_soft_tokens` Gemma 4's image processors take (70, 140, 280, 560, 1120)


@register_adapter
class Gemma4Adapter(ModelAdapter):
    model_types = {"gemma4": "google/gemma-4-E2B-it", "gemma4_unified": "google/gemma-4-12B-it"}
    layout_text = ("one native-aspect grid of 48 px cells (16 px patches pooled 3x3; the unified model embeds each "
                   "cell's pixels), its shape read from `image_position_ids`")
    scales_text = ("any within `max_vision_tokens` (16,384): the processor's size for the image (its soft-token "
                   "budget, 280 as shipped), times the scale, in whole 48 px cells, fed with its resize off")

    def vision_grid(self, inputs) -> tuple[int, int]:
        """(rows, columns) of soft tokens: the patches' extent over the patches per soft token, each way."""
        positions = inputs["image_position_ids"][0]
        positions = positions[(positions >= 0).all(-1)]  # padding patches are (-1, -1)
        side = math.isqrt(len(positions) // len(self.image_token_positions(inputs)))  # 3 (pooled) or 1 (merged)
        return (int(positions[:, 1].max()) + 1) // side, (int(positions[:, 0].max()) + 1) // side

    @property
    def _cell(self) -> int:
        """Pixels per soft token, each way."""
        processor = self.processor.image_processor
        return processor.patch_size * processor.pooling_kernel_size

    def _scaled_size(self, image: Image.Image, scale: float) -> tuple[int, int]:
        """(width, height) of `image` at `scale`: the processor's size times `scale`, in whole cells; a UserError
        beyond `max_vision_tokens`."""
        processor = self.processor.image_processor
        height, width = get_aspect_ratio_preserving_size(
            image.height, image.width, patch_size=processor.patch_size,
            max_patches=processor.max_soft_tokens * processor.pooling_kernel_size ** 2,
            pooling_kernel_size=processor.pooling_kernel_size)
        cell = self._cell
        columns, rows = (max(1, round(side * scale / cell)) for side in (width, height))
        if rows * columns > self.max_vision_tokens:
            raise UserError(f"scale {scale} gives a {columns * cell}x{rows * cell} px input of {rows * columns} vision "
                            f"tokens, more than max_vision_tokens={self.max_vision_tokens}")
        return columns * cell, rows * cell

    def max_scale(self, image: Image.Image) -> float:
        """The largest scale whose whole cells are within the processor's largest budget (`LARGEST_BUDGET`) and
        `max_vision_tokens` (at least 1): inputs the model was made to read."""
        columns, rows = (side // self._cell for side in self._scaled_size(image, 1.0))
        largest = math.sqrt(min(LARGEST_BUDGET, self.max_vision_tokens) / (rows * columns))
        return max(1.0, min(math.floor(columns * largest) / columns, math.floor(rows * largest) / rows))

    def check_scale(self, image: Image.Image, scale: float) -> None:
        if scale != 1.0:  # scale 1 is the processor's own size
            self._scaled_size(image, scale)

    def scaled_image(self, image: Image.Image, scale: float) -> tuple[Image.Image, tuple[float, float, float, float]]:
        if scale == 1.0:
            return image, (0.0, 0.0, 1.0, 1.0)
        return image.resize(self._scaled_size(image, scale), Image.BICUBIC), (0.0, 0.0, 1.0, 1.0)

    def processor_kwargs(self, image: Image.Image, scale: float) -> dict:
        """At any scale but 1 the image is fed at `scaled_image`'s size (whole cells): the processor's resize off."""
        return {} if scale == 1.0 else {"do_resize": False}

    @property
    def last_layer(self) -> torch.nn.Module:
        """The last layer that computes its own keys and values: KV-shared layers after it reuse its keys and values,
        so the vision tokens' states entering them reach no other position (their gradients are zero)."""
        text_model = self.model.model.language_model
        return text_model.layers[text_model.config.num_hidden_layers - text_model.config.num_kv_shared_layers - 1]

    @contextmanager
    def _capture(self, module: torch.nn.Module, index: int | None = None, detach: bool = True):
        """The base's capture, with the KV-shared layers run on every position: the text model would otherwise
        pass only the positions whose logits are kept into them (`_maybe_slice_kv_shared_inputs`), and the final
        norm would see only those."""
        text_model = self.model.model.language_model
        first_shared = text_model.first_kv_shared_layer_idx
        text_model.first_kv_shared_layer_idx = -1  # no layer index: nothing is sliced
        try:
            with super()._capture(module, index, detach) as store:
                yield store
        finally:
            text_model.first_kv_shared_layer_idx = first_shared
