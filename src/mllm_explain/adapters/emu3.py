"""Emu3 (`emu3`, class E): a VQ-VAE turns each 8 px cell of the image, resized by the processor's `smart_resize` (to
whole cells within its `min_pixels`-`max_pixels` range), into one code, which the LM reads as the BPE token the
vocabulary maps it to.  The prompt holds `<|image start|>`, the grid's "H*W" as text, `<|image token|>`, then
H * (W + 1) image placeholders, `<|extra_201|>` and `<|image end|>`: the model fills the placeholders with each row's
codes and an end-of-line token (`<|extra_200|>`), so the row-end slot sits *inside* the image-token span, as
HunyuanOCR's newline (`row_end_slots`).  The slots and the markers are in no view.  The model writes its answer
with no mask on the image codes.

Scales as Qwen2-VL's, in whole cells.  Its slow image processor reads its pixel range from its attributes, not from the
call's keywords: a scale above 1 lifts `max_pixels` on the processor for that call only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from mllm_explain.adapters.apertus1p5 import Apertus1p5Adapter
from mllm_explain.adapters.base import as_images
from mllm_explain.adapters.qwen2_vl import Qwen2VLAdapter
from mllm_explain.adapters.registry import register_adapter


@register_adapter
class Emu3Adapter(Apertus1p5Adapter):
    model_types = {"emu3": "BAAI/Emu3-Chat-hf"}
    layout_text = ("one native-resolution grid of VQ codes (one per 8 px cell), with an end-of-line slot ending each "
                   "row inside the image-token span (in no view)")
    scales_text = ("as Qwen2-VL's, in whole 8 px cells (above 1 the processor's `max_pixels` is lifted for that "
                   "forward)")
    row_end_slots = 1

    @staticmethod
    def resize_rule(*args, **kwargs) -> tuple[int, int]:
        """Emu3's `smart_resize` (rounds to whole cells; no lifting of a short side first)."""
        from transformers.models.emu3.image_processing_emu3 import smart_resize

        return smart_resize(*args, **kwargs)

    def processor_kwargs(self, image: Image.Image, scale: float) -> dict:
        """None: the processor ignores a `size` keyword (`encode` lifts its cap instead)."""
        return {}

    def encode(self, image: Image.Image | Sequence[Image.Image | Sequence[Image.Image]], prompt: str,
               answer_ids: Sequence[int] = (),
               scale: float = 1.0):
        """As the base, with the processor's `max_pixels` lifted to what Qwen2-VL's rule asks for at `scale`, for
        this call only."""
        processor = self.processor.image_processor
        images = [one for row in ([image] if isinstance(image, Image.Image) else image) for one in as_images(row)]
        lifted = Qwen2VLAdapter.processor_kwargs(self, max(images, key=lambda one: one.width * one.height), scale)
        cap = processor.max_pixels
        processor.max_pixels = lifted["size"]["max_pixels"] if lifted else cap
        try:
            return super().encode(image, prompt, answer_ids, scale)
        finally:
            processor.max_pixels = cap

    @property
    def final_norm(self) -> torch.nn.Module:
        return self.model.model.text_model.norm

    @property
    def last_layer(self) -> torch.nn.Module:
        return self.model.model.text_model.layers[-1]

    @property
    def last_attention(self) -> torch.nn.Module:
        return self.last_layer.self_attn
