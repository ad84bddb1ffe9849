"""Chameleon (`ChameleonForConditionalGeneration`, class E): a VQ-VAE turns the image into a fixed 32x32 grid of
discrete codes (512 px / 16x downsampling), row-major, whose BPE tokens stand in the sequence between
`<racm3:break>` and `<eoss>`; the decoder reads them as token embeddings, with no vision encoder features.

The processor resizes the shorter side to `size["shortest_edge"]` and center-crops `crop_size`: the grid shows only
the image's central part, a square of min(width, height) * crop / shortest-edge pixels (the whole shorter side as
shipped), which each view's `image_box` says.  A scale resizes the image before the processor, which resizes it back:
a scale below 1 only blurs, above 1 is refused (a fixed `image_seq_length` of codes).
"""

from __future__ import annotations

import math

import torch
from PIL import Image
from torch import Tensor

from mllm_explain.adapters.base import DecoderOnModel
from mllm_explain.adapters.fixed_resolution import refuse_enlarging
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.views import Box, View


@register_adapter
class ChameleonAdapter(DecoderOnModel):
    model_types = {"chameleon": "facebook/chameleon-7b"}
    several_images = False  # its prompt is written for one image (`chat_text`)
    layout_text = ("one fixed 32x32 grid of VQ image codes of the image's center-cropped square (the views' "
                   "`image_box`), before the prompt")
    scales_text = "<= 1, as PaliGemma (a fixed `image_seq_length` of codes)"

    def vision_grid(self, inputs) -> tuple[int, int]:
        """Codes each way: the cropped pixels halved by each of the VQ encoder's downsampling levels."""
        height, width = inputs["pixel_values"].shape[-2:]
        factor = 2 ** (len(self.model.config.vq_config.channel_multiplier) - 1)
        return height // factor, width // factor

    def vision_views(self, inputs, image: Image.Image, grid_box: Box) -> list[View]:
        """One grid of the central part the processor crops from `image`."""
        processor = self.processor.image_processor
        side = min(image.size) * processor.crop_size["height"] / processor.size["shortest_edge"]
        height, width = min(1.0, side / image.height), min(1.0, side / image.width)
        box = ((1 - height) / 2, (1 - width) / 2, (1 + height) / 2, (1 + width) / 2)
        return [View(self.image_token_positions(inputs), self.vision_grid(inputs), image_box=box, grid_box=grid_box)]

    def check_scale(self, image: Image.Image, scale: float) -> None:
        side = math.isqrt(self.processor.image_seq_length)
        refuse_enlarging(self, scale, f"its processor writes a fixed {side * side} image tokens (a {side}x{side} "
                                      "grid) whatever the input's size")

    def chat_text(self, prompt: str) -> str:
        """The image placeholder, then the raw prompt (no chat template); the processor adds its separator after."""
        return f"{self.processor.image_token}{prompt}"

    @torch.no_grad()
    def logits(self, states: Tensor, block_rows: int | None = None) -> Tensor:
        """The base's logits with the image codes' tokens at the lowest value, as the model masks its own (it writes
        text only)."""
        logits = super().logits(states, block_rows)
        logits[:, self.model.model.vocabulary_mapping.image_tokens] = torch.finfo(logits.dtype).min
        return logits
