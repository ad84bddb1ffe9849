"""PaliGemma and PaliGemma 2 (`PaliGemmaForConditionalGeneration`): a SigLIP encoder at one fixed square
resolution (224, 448 or 896 px / 14 px patches: 16x16, 32x32 or 64x64 tokens); its patches, row-major, are the
`<image>` tokens that open the sequence, before BOS, the prompt and "\\n".

There is no chat template: the processor writes that layout around the raw prompt.  The image and prompt are a
prefix that attends both ways (token type 0); answer tokens are the causal suffix (token type 1).  The processor
stretches any image to the square, so the grid shows the whole image (stretched), as the user's input is seen; a
scale resizes the image before the processor, which stretches it to its square again: a scale below 1 only blurs.
Scales above 1 are refused: the processor writes its fixed `image_seq_length` `<image>` tokens whatever the input,
so an enlarged input cannot give a larger grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PIL import Image

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.adapters.fixed_resolution import refuse_enlarging
from mllm_explain.adapters.registry import register_adapter


@register_adapter
class PaliGemmaAdapter(ModelAdapter):
    model_types = {"paligemma": "google/paligemma2-3b-pt-224"}
    several_images = False  # its prompt is written for one image (`chat_text`)
    layout_text = "one grid (16x16 at 224 px, 32x32 at 448 px) of the image stretched to a square, before the prompt"
    scales_text = "<= 1, as Gemma 3 (a fixed `image_seq_length` of tokens)"

    def vision_grid(self, inputs) -> tuple[int, int]:
        """Patches each way of the pixels the processor produced (SigLIP has no CLS token)."""
        height, width = inputs["pixel_values"].shape[-2:]
        patch = self.model.config.vision_config.patch_size
        return height // patch, width // patch

    def check_scale(self, image: Image.Image, scale: float) -> None:
        side = math.isqrt(self.processor.image_seq_length)
        refuse_enlarging(self, scale, f"its processor writes a fixed {side * side} image tokens (a {side}x{side} "
                                      "grid) whatever the input's size")

    def chat_text(self, prompt: str) -> str:
        """The image placeholder and the raw prompt; the processor adds BOS between them and "\\n" after."""
        return f"{self.processor.image_token}{prompt}"

    def encode(self, image: Image.Image | Sequence[Image.Image], prompt: str, answer_ids: Sequence[int] = (),
               scale: float = 1.0):
        """As the base, with appended answer tokens in the causal suffix (token type 1, as `generate` marks the
        tokens it adds) and without the processor's training `labels`, which would make the forward compute a loss."""
        inputs = super().encode(image, prompt, answer_ids, scale)
        inputs.pop("labels", None)
        if answer_ids:
            inputs["token_type_ids"][:, -len(answer_ids):] = 1
        return inputs
