"""Gemma 3 (`Gemma3ForConditionalGeneration`): a SigLIP encoder at one fixed square resolution whose patch grid is
average-pooled to `mm_tokens_per_image` tokens (896 px / 14 px = 64x64 patches, pooled 4x4 to 16x16 = 256),
row-major between the `<start_of_image>` and `<end_of_image>` tokens, which are in no view.

The processor stretches any image to the square, so the grid shows the whole image (stretched), as the user's
input is seen; pan-and-scan crops (off as the checkpoints ship) are not supported.  A scale resizes the image before
the processor, which stretches it to its square again: a scale below 1 only blurs the image.  Scales above 1 are
refused: the processor writes `image_seq_length` image tokens whatever the input, and the projector reshapes the
encoder's output to its configured patch grid before pooling it, so an enlarged input cannot give a larger grid.
"""

from __future__ import annotations

import math

from PIL import Image

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.adapters.fixed_resolution import refuse_enlarging
from mllm_explain.adapters.registry import register_adapter


@register_adapter
class Gemma3Adapter(ModelAdapter):
    model_types = {"gemma3": "google/gemma-3-4b-it"}
    layout_text = "one pooled grid (SigLIP 64x64 patches average-pooled to 16x16) of the image stretched to a square"
    scales_text = ("<= 1, and below 1 only blurs: the processor writes a fixed 256 image tokens (64x64 patches pooled "
                   "to 16x16), so a scale above 1 is refused in one line")

    def vision_grid(self, inputs) -> tuple[int, int]:
        """The pooled grid: `mm_tokens_per_image` tokens, as many each way."""
        side = math.isqrt(self.model.config.mm_tokens_per_image)
        return side, side

    def check_scale(self, image: Image.Image, scale: float) -> None:
        side = math.isqrt(self.model.config.mm_tokens_per_image)
        refuse_enlarging(self, scale, f"its processor writes a fixed {side * side} image tokens (the encoder's fixed "
                                      f"patch grid pooled to {side}x{side}) whatever the input's size")
