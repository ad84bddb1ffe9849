"""LLaVA-1.5 in the llava-hf layout: a CLIP encoder at one fixed resolution; its patches (CLS dropped)
form the vision grid.

Scales: below 1 the image is shrunk inside the letterboxed square (the grid stays).  Above 1 the scale-1 square
is fed at `scale` times the encoder's side, in whole patches (the processor's `size` and `crop_size` lifted for
that call), and the encoder interpolates its position embeddings to the larger grid (`interpolate_pos_encoding`,
which `LlavaModel` passes on to the vision tower; the processor counts image tokens from the pixels' shape): 2x
gives a 48x48 grid at 336 px / 14 px patches, within `max_vision_tokens` (a scale below 1 feeds scale 1's count).
The encoder was trained at its own side only, so an enlarged view is outside what it saw in training: MSEA may
use it (it is measured against `tam` like any scale), but it is no "view in more detail" for the grounding score
(`max_scale` stays 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from mllm_explain.adapters.fixed_resolution import FixedResolutionAdapter, refuse_enlarging
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.errors import UserError


@register_adapter
class LlavaAdapter(FixedResolutionAdapter):
    model_types = {"llava": "llava-hf/llava-1.5-7b-hf"}
    layout_text = "one fixed 24x24 CLIP grid, the image letterboxed into it"
    scales_text = ("below 1 the image shrunk inside the square; above 1 the square fed at s x 336 px with CLIP's "
                   "position embeddings interpolated (2x: a 48x48 grid), a size the encoder was not trained at; within "
                   "`max_vision_tokens`")

    def __init__(self, model: torch.nn.Module, processor, name_or_path: str = "") -> None:
        if type(processor).__name__ == "PixtralProcessor":  # Pixtral-12B in the llava-hf layout: rows of [IMG_BREAK]
            raise UserError("a 'llava' model with a Pixtral processor (Pixtral-12B) is not supported: its native-"
                            "resolution grid with row separators is not LLaVA-1.5's fixed square")
        super().__init__(model, processor, name_or_path)

    def vision_grid(self, inputs) -> tuple[int, int]:
        """Patches each way of the pixels the processor produced (its crop size), not a fixed 24x24."""
        height, width = inputs["pixel_values"].shape[-2:]
        patch = self.model.config.vision_config.patch_size
        return height // patch, width // patch

    def side(self, scale: float) -> int:
        """Pixels each way of the square fed at `scale` above 1: the encoder's side times `scale`, in whole patches."""
        vision = self.model.config.vision_config
        return round(vision.image_size * scale / vision.patch_size) * vision.patch_size

    def check_scale(self, image: Image.Image, scale: float) -> None:
        """Any scale up to 1; above it, as many vision tokens as `max_vision_tokens` allows."""
        if scale <= 1:
            return
        side = self.side(scale) // self.model.config.vision_config.patch_size
        if side * side > self.max_vision_tokens:
            raise UserError(f"scale {scale} gives a {side}x{side} grid of {side * side} vision tokens, more than "
                            f"max_vision_tokens={self.max_vision_tokens}")

    def processor_kwargs(self, image: Image.Image, scale: float) -> dict:
        """Above scale 1, the processor's resize and crop lifted to `side(scale)`: it feeds the square enlarged."""
        if scale <= 1:
            return {}
        processor, side = self.processor.image_processor, self.side(scale)
        lifted = {key: {edge: side for edge in dict(getattr(processor, key, None) or {})}
                  for key in ("size", "crop_size")}
        return {key: sizes for key, sizes in lifted.items() if sizes}

    def encode(self, image: Image.Image | Sequence[Image.Image], prompt: str, answer_ids: Sequence[int] = (),
               scale: float = 1.0):
        """As the base; pixels larger than the encoder's side (a scale above 1) with `interpolate_pos_encoding`, for
        the encoder's position embeddings to span their grid (only then: `generate` refuses the keyword)."""
        inputs = super().encode(image, prompt, answer_ids, scale)
        if inputs["pixel_values"].shape[-1] != self.model.config.vision_config.image_size:
            inputs["interpolate_pos_encoding"] = True
        return inputs


@register_adapter
class VipLlavaAdapter(LlavaAdapter):
    """ViP-LLaVA: LLaVA-1.5's processor and fixed square, the features of several CLIP layers concatenated.  No scale
    above 1: its model (as Video-LLaVA's) does not pass `interpolate_pos_encoding` on to the vision tower, which
    refuses any input but its own size."""

    model_types = {"vipllava": "llava-hf/vip-llava-7b-hf"}
    layout_text = "as LLaVA-1.5 (several CLIP layers' features concatenated per patch)"
    scales_text = ("<= 1: transformers' model does not pass `interpolate_pos_encoding` on to its vision tower, so a "
                   "scale above 1 is refused in one line")

    def check_scale(self, image: Image.Image, scale: float) -> None:
        refuse_enlarging(self, scale, f"transformers' {type(self.model.model).__name__} does not pass "
                                      "`interpolate_pos_encoding` on to its vision tower, which refuses any input but "
                                      "its own size")


@register_adapter
class VideoLlavaAdapter(VipLlavaAdapter):
    """Video-LLaVA's images: LLaVA-1.5's fixed square (LanguageBind's CLIP, 224 px / 14 px: 16x16) from its own image
    processor, asked for `pixel_values` instead of its legacy `pixel_values_images`; no scale above 1, as ViP-LLaVA."""

    model_types = {"video_llava": "LanguageBind/Video-LLaVA-7B-hf"}
    layout_text = "as LLaVA-1.5 (images; 16x16 at 224 px)"

    def processor_kwargs(self, image: Image.Image, scale: float) -> dict:
        """`pixel_values`, the name the model reads (the image processor's default is still the legacy name)."""
        return {"return_legacy_image_output": False}
