"""Apertus 1.5 (`apertus1p5`): discrete image tokens (class E).  A VQ tokenizer turns each 16 px cell of the image,
resized as Qwen2-VL resizes it (to whole cells within the processor's `min_pixels`-`max_pixels` range), into one code,
which the LM reads as a token of its vocabulary (offset by `image_token_offset`); the prompt holds `<|boi|>`, the grid's
"H*W" as text, the image wrapper token, the grid's rows of `<|image|>` placeholders joined by an end-of-line token, and
`<|eoi|>` (the markers are in no view).  Scales as Qwen2-VL's, in whole cells."""

from __future__ import annotations

from mllm_explain.adapters.qwen2_vl import Qwen2VLAdapter
from mllm_explain.adapters.registry import register_adapter


@register_adapter
class Apertus1p5Adapter(Qwen2VLAdapter):
    model_types = {"apertus1p5": "swiss-ai/Apertus-v1.5-8B"}
    layout_text = ("one native-resolution grid of VQ codes (one per 16 px cell), rows joined by an end-of-line token "
                   "in no view")
    pixel_range_keys = ("min_pixels", "max_pixels")

    @staticmethod
    def resize_rule(*args, **kwargs) -> tuple[int, int]:
        """Apertus 1.5's `smart_resize`, imported on use (a transformers release before the family has none)."""
        from transformers.models.apertus1p5.image_processing_apertus1p5 import smart_resize

        return smart_resize(*args, **kwargs)

    @property
    def _factor(self) -> int:
        """Pixels per code, each way: the VQ tokenizer's downsampling."""
        return self.processor.image_processor.spatial_factor

    def vision_grid(self, inputs) -> tuple[int, int]:
        height, width = inputs["image_sizes"][0].tolist()
        return height // self._factor, width // self._factor
