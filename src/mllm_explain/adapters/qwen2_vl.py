"""Qwen2-VL, Qwen2.5-VL and Qwen3-VL (dense and MoE): native dynamic resolution; 2x2 merged patches form the
vision grid, row-major between the vision start and end tokens.

The families that reuse that layout unchanged (`image_grid_thw` in patches, 2x2 merge of the processor's patch order
into a row-major grid, one placeholder token per merged patch): Qwen3.5 (dense, MoE), ERNIE-4.5-VL, EXAONE 4.5,
dots3 note, Cosmos3 Omni, MiniMax M3 VL and the Qwen2.5-Omni and Qwen3-Omni thinkers (their text generators) as they
are, alone or loaded from the full Omni checkpoint (its `thinker.` weights; the talker that speaks the answer is not
loaded); PaddleOCR-VL (its own resize rule), Cohere Compass and HyperCLOVA X Vision V2 (scaled logits) and LFM3-VL
(final norm and last attention layer) and Qwen4-Exp (final norm) with a family fact each.

A scale is a different input size: the size the processor would give the image, times the scale (it then
rounds to whole merged patches).  Scale 1 is the processor's own size.  Above 1 the image is enlarged and the
processor's pixel cap is lifted for that call only (the cap is a default of the processor, not a limit of the
model: Qwen2-VL's is 12.8 MP): one merged patch becomes s^2 of them.  Any scale but 1 is bounded by
`max_vision_tokens`, and one below the processor's smallest input is refused.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from PIL import Image
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.errors import UserError
from mllm_explain.video import Video
from mllm_explain.views import Box, View, frame_views


@register_adapter
class Qwen2VLAdapter(ModelAdapter):
    model_types = {"qwen2_vl": "Qwen/Qwen2-VL-2B-Instruct", "qwen2_5_vl": "Qwen/Qwen2.5-VL-7B-Instruct",
                   "qwen3_vl": "Qwen/Qwen3-VL-8B-Instruct", "qwen3_vl_moe": "Qwen/Qwen3-VL-30B-A3B-Instruct",
                   "qwen3_5": "Qwen/Qwen3.5-27B", "qwen3_5_moe": "Qwen/Qwen3.5-35B-A3B",
                   "ernie4_5_vl_moe": "baidu/ERNIE-4.5-VL-28B-A3B-PT", "exaone4_5": "LGAI-EXAONE/EXAONE-4.5-33B",
                   "dots3_note": "dots-studio/dots3-note-prev", "cosmos3_omni": "nvidia/Cosmos3-Nano",
                   "minimax_m3_vl": "MiniMaxAI/MiniMax-M3", "qwen2_5_omni_thinker": "Qwen/Qwen2.5-Omni-7B",
                   "qwen3_omni_moe_thinker": "Qwen/Qwen3-Omni-30B-A3B-Instruct", "qwen2_5_omni": "Qwen/Qwen2.5-Omni-7B",
                   "qwen3_omni_moe": "Qwen/Qwen3-Omni-30B-A3B-Instruct"}
    submodels = {"qwen2_5_omni": "thinker", "qwen3_omni_moe": "thinker"}  # the full Omni checkpoints: their thinker
    layout_text = ("one native-resolution grid of 2x2-merged patches (Qwen3-VL, Qwen3.5: 16 px patches; DeepStack adds "
                   "vision features in early layers only)")
    scales_text = ("any within `max_vision_tokens` (16,384) and above the processor's smallest input: the size the "
                   "processor gives the image, times the scale, in whole merged patches (above 1 its pixel cap is "
                   "lifted for that forward: 2x makes one patch four)")
    frames_per_patch = 1  # how many times the processor's pixel range counts one image (GLM-4V: its temporal patch)
    resize_rule = staticmethod(smart_resize)  # the processor's (height, width, factor, min_pixels, max_pixels) -> h, w
    pixel_range_keys: ClassVar[tuple[str, str]] = ("shortest_edge", "longest_edge")  # `size`'s least, most pixels
    row_end_slots: ClassVar[int] = 0  # image-token slots after each row that show no image (a newline feature)
    video_model_types = frozenset({"qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe", "qwen3_5", "qwen3_5_moe",
                                   "exaone4_5", "cosmos3_omni"})

    @property
    def wrapper_slots(self) -> int:
        """Image-token slots before the grid, and as many after it, that show no image (HunyuanOCR's begin and end)."""
        return 0

    def vision_grid(self, inputs) -> tuple[int, int]:
        _, height, width = inputs["image_grid_thw"][0].tolist()
        merge = self.model.config.vision_config.spatial_merge_size
        return height // merge, width // merge

    def vision_views(self, inputs, image: Image.Image, grid_box: Box) -> list[View]:
        """The grid's cells: the image-token span less its wrapper and row-end slots."""
        rows, columns = self.vision_grid(inputs)
        span, start, width = self.image_token_positions(inputs), self.wrapper_slots, columns + self.row_end_slots
        cells = span[start:start + rows * width].view(rows, width)[:, :columns]
        return [View(cells.flatten(), (rows, columns), grid_box=grid_box)]

    def video_views(self, inputs, video: Video) -> list[View]:
        """One grid per temporal patch (the frames the vision tower merges, two by default), in order: the video's
        placeholder tokens split into groups of `video_grid_thw`'s merged cells (text between them, such as Qwen3-VL's
        timestamps, is in no view)."""
        groups, height, width = inputs["video_grid_thw"][0].tolist()
        merge = self.model.config.vision_config.spatial_merge_size
        grid = (height // merge, width // merge)
        positions = self.video_token_positions(inputs)
        if len(positions) != groups * grid[0] * grid[1]:
            raise RuntimeError(f"{len(positions)} video tokens for {groups} groups of {grid[0]}x{grid[1]}")
        return frame_views(positions.split(grid[0] * grid[1]), grid, video.timestamps,
                           self.processor.video_processor.temporal_patch_size)

    @property
    def _factor(self) -> int:
        """Pixels per merged patch, each way."""
        processor = self.processor.image_processor
        return processor.patch_size * processor.merge_size

    def _pixel_range(self, image: Image.Image) -> tuple[int, int, tuple[int, int]]:
        """The processor's pixel range and the (height, width) it would give `image` at scale 1."""
        low, high = (self.processor.image_processor.size[key] for key in self.pixel_range_keys)
        return low, high, self.resize_rule(image.height, image.width, factor=self._factor, min_pixels=low,
                                          max_pixels=high)

    def vision_tokens(self, size: tuple[int, int]) -> int:
        """Image tokens of a (width, height) input fed at its own size (rounded to whole merged patches): a merged patch
        each, and the slots."""
        factor = self._factor
        rows, columns = max(1, round(size[1] / factor)), max(1, round(size[0] / factor))
        return rows * (columns + self.row_end_slots) + 2 * self.wrapper_slots

    def max_scale(self, image: Image.Image) -> float:
        """The largest scale within the processor's own pixel range and `max_vision_tokens`, in whole pixels (at
        least 1)."""
        _, high, (height, width) = self._pixel_range(image)
        largest = min(high / (height * width), self.max_vision_tokens / self.vision_tokens((width, height)))
        scale = math.sqrt(largest)  # then whole pixels, so that rounding stays within the range
        scale = min(math.floor(width * scale) / width, math.floor(height * scale) / height)
        while scale > 1 and self.vision_tokens((round(width * scale), round(height * scale))) > self.max_vision_tokens:
            scale -= 1 / max(width, height)  # rounding to whole merged patches went over the bound
        return max(1.0, scale)

    def check_scale(self, image: Image.Image, scale: float) -> None:
        if scale != 1.0:  # scale 1 is the processor's own size
            self._scaled_size(image, scale)

    def scaled_image(self, image: Image.Image, scale: float) -> tuple[Image.Image, tuple[float, float, float, float]]:
        if scale == 1.0:
            return image, (0.0, 0.0, 1.0, 1.0)
        return image.resize(self._scaled_size(image, scale), Image.BICUBIC), (0.0, 0.0, 1.0, 1.0)

    def processor_kwargs(self, image: Image.Image, scale: float) -> dict:
        """Above scale 1, the processor's pixel cap lifted to the enlarged image's own size (rounded to whole
        merged patches), so that it is fed as enlarged; nothing else changes."""
        if scale <= 1.0:
            return {}
        size = self.processor.image_processor.size
        pixels = self.vision_tokens(image.size) * self._factor ** 2 * self.frames_per_patch
        low, high = self.pixel_range_keys
        return {"size": {low: size[low], high: max(size[high], pixels)}}

    def _scaled_size(self, image: Image.Image, scale: float) -> tuple[int, int]:
        """(width, height) to resize `image` to for `scale`; a UserError below the processor's smallest input or
        beyond `max_vision_tokens`."""
        low, high, (height, width) = self._pixel_range(image)
        size = (round(width * scale), round(height * scale))
        if size[0] * size[1] < low:
            raise UserError(f"scale {scale} gives a {size[0]}x{size[1]} px input, below this model's smallest input "
                            f"of {low} pixels")
        self.bound_tokens(scale, self.vision_tokens(size), f"a {size[0]}x{size[1]} px input")
        return size


@register_adapter
class PaddleOCRVLAdapter(Qwen2VLAdapter):
    """PaddleOCR-VL: Qwen2-VL's layout (its patches are row-major, merged 2x2 by the projector into the same grid);
    its processor's `smart_resize` first lifts a side under one merged patch to a whole one, aspect kept."""

    model_types = {"paddleocr_vl": "PaddlePaddle/PaddleOCR-VL"}
    layout_text = "as Qwen2-VL (its own resize: a side under one merged patch is lifted to one, aspect kept)"

    @staticmethod
    def resize_rule(*args, **kwargs) -> tuple[int, int]:
        """PaddleOCR-VL's `smart_resize`, imported on use (a transformers release before the family has none)."""
        from transformers.models.paddleocr_vl.image_processing_paddleocr_vl import smart_resize as paddle_resize

        return paddle_resize(*args, **kwargs)


@register_adapter
class CohereCompassAdapter(Qwen2VLAdapter):
    """Cohere Compass (North Vision): Qwen3-VL's layout and processor with Cohere's tokens; the LM's `logit_scale`."""

    model_types = {"cohere_compass": "CohereLabs/North-Micro-Vision-Instruct"}
    layout_text = "as Qwen3-VL (the LM's logits scaled by its `logit_scale`, as the model scales them)"
    logit_multiplier_key = "logit_scale"


@register_adapter
class HyperCLOVAXVisionV2Adapter(Qwen2VLAdapter):
    """HyperCLOVA X Vision V2: Qwen2.5-VL's tower and Qwen2-VL's grid (EXAONE 4.5's processor); its MuP LM multiplies
    the logits by `logits_scaling`."""

    model_types = {"hyperclovax_vision_v2": "naver-hyperclovax/HyperCLOVAX-SEED-Think-32B"}
    video_model_types = frozenset({"hyperclovax_vision_v2"})
    layout_text = "as Qwen2-VL (the LM's logits scaled by its `logits_scaling`, as the model scales them)"
    logit_multiplier_key = "logits_scaling"


@register_adapter
class Lfm3VlAdapter(Qwen2VLAdapter):
    """LFM3-VL: Qwen3-VL's processor and grid (its projector merges the 2x2 blocks the processor groups); a hybrid
    LFM3 text model whose final norm is `embedding_norm` and whose last layers are short causal convolutions, which
    read only the few tokens before each position: the attention rows and the gradients are those of its last
    attention layer, the last one through which the vision tokens reach an answer token."""

    model_types = {"lfm3_vl": "LiquidAI/LFM3-VL-2B"}
    video_model_types = frozenset({"lfm3_vl"})
    layout_text = ("as Qwen3-VL; attention rows and gradients from the last attention layer (the last layers are short "
                   "convolutions)")

    @property
    def final_norm(self) -> torch.nn.Module:
        return self.model.model.language_model.embedding_norm

    @property
    def last_layer(self) -> torch.nn.Module:
        return next(layer for layer in reversed(self.model.model.language_model.layers) if hasattr(layer, "self_attn"))

    @property
    def last_attention(self) -> torch.nn.Module:
        return self.last_layer.self_attn


@register_adapter
class Qwen4ExpAdapter(Qwen2VLAdapter):
    """Qwen4-Exp: Qwen3.5-MoE's vision tower and Qwen3-VL's processor and grid; its text model keeps `hc_count`
    hyper-connection streams, which `hyper_connection_mixer` normalises and mixes into the states the LM head reads
    (it has no other final norm), and adds n-gram per-layer embeddings read from `input_ids` (which the processor's
    output carries, so the model's own path is taken).  The states entering its last layer are the streams side by
    side (`hc_count` x hidden wide): gradient x activation sums over them all."""

    model_types = {"qwen4_exp": "Qwen/Qwen4-Exp"}
    video_model_types = frozenset({"qwen4_exp"})
    layout_text = "as Qwen3-VL (the final norm is the LM's hyper-connection mixer)"

    @property
    def final_norm(self) -> torch.nn.Module:
        return self.model.model.language_model.hyper_connection_mixer
