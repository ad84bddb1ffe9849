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
from torch import Tensor

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.adapters.fixed_resolution import refuse_enlarging
from mllm_explain.adapters.registry import register_adapter


@register_adapter
class Gemma3Adapter(ModelAdapter):
    model_types = {"gemma3": "google/gemma-3-4b-it"}
    layout_text = "one pooled grid (SigLIP 64x64 patches average-pooled to 16x16) of the image stretched to a square"
    scales_text = ("<= 1, and below 1 only blurs: the processor writes a fixed 256 image tokens (64x64 patches pooled "
                   "to 16x16), so a scale above 1 is refused in one line")

    tokens_key = "mm_tokens_per_image"  # the config's count of image tokens, a square grid

    def vision_grid(self, inputs) -> tuple[int, int]:
        """The pooled grid: the config's `tokens_key` tokens, as many each way."""
        side = math.isqrt(getattr(self.model.config, self.tokens_key))
        return side, side

    def check_scale(self, image: Image.Image, scale: float) -> None:
        side = math.isqrt(getattr(self.model.config, self.tokens_key))
        refuse_enlarging(self, scale, f"its processor writes a fixed {side * side} image tokens (the encoder's fixed "
                                      f"patch grid pooled to {side}x{side}) whatever the input's size")


@register_adapter
class Gemma3nAdapter(Gemma3Adapter):
    """Gemma 3n (`Gemma3nForConditionalGeneration`): Gemma 3's layout.  The processor stretches the image onto the
    768 px square of timm's MobileNetV5 (`mobilenetv5_300m_enc`), whose multi-scale fusion adapter average-pools its
    48x48 stride-16 features 3x3 to `vision_soft_tokens_per_image` = 16x16 soft tokens, flattened row-major between
    `<start_of_image>` and `<end_of_image>`.  Its decoder carries `altup_num_inputs` AltUp streams per token, which it
    averages before the final norm (the states the LM head reads), and soft-caps its logits."""

    model_types = {"gemma3n": "google/gemma-3n-E4B-it"}
    layout_text = ("one grid (MobileNetV5's 48x48 stride-16 features pooled to 16x16) of the image stretched to a "
                   "768 px square")
    scales_text = "<= 1, as Gemma 3 (a fixed 256 image tokens)"
    tokens_key = "vision_soft_tokens_per_image"

    def token_states(self, entering: Tensor) -> Tensor:
        """The AltUp streams entering the last layer, (streams, 1, L, d), as one vector per token: (L, streams, d)."""
        return entering[:, 0].transpose(0, 1)
