"""Muse Glimmer (`muse_glimmer`) and Muse Spark (`muse_spark`, its vision and processor with a MoE LM and audio):
14 px patches whose 2x2 blocks a pixel shuffle merges into one row-major grid, as Qwen2-VL's, with
`image_grid_thw` in patches.

Unlike Kimi K2.5's, their processor pads nothing: its `smart_resize` stretches the image onto the whole grid of
merged patches nearest its aspect ratio (the sides' floor or ceiling) under `max_image_tokens` merged patches,
so the grid shows the whole image.  Above scale 1 that cap is lifted for the call, as Qwen2-VL's pixel cap.  The
LM multiplies its logits by `output_multiplier`, then soft-caps them (`final_logit_softcapping`).
"""

from __future__ import annotations

import math

from PIL import Image
from transformers.models.muse_glimmer.image_processing_muse_glimmer import smart_resize

from mllm_explain.adapters.qwen2_vl import Qwen2VLAdapter
from mllm_explain.adapters.registry import register_adapter


@register_adapter
class MuseGlimmerAdapter(Qwen2VLAdapter):
    model_types = {"muse_glimmer": "meta-models/Muse-Glimmer-30B",
                   "muse_spark": "meta-models/Muse-Spark-Open-816B-A42B"}
    layout_text = ("as Qwen2-VL (the image stretched onto the nearest whole grid under `max_image_tokens`; logits "
                   "scaled by `output_multiplier` and soft-capped, as the model does)")
    scales_text = ("any within `max_vision_tokens`: the size the processor gives the image, times the scale, in whole "
                   "merged patches (above 1 its `max_image_tokens` cap is lifted for that forward)")
    logit_multiplier_key = "output_multiplier"

    def _resize(self, height: int, width: int, max_tokens: int) -> tuple[int, int]:
        return smart_resize(height, width, patch_size=self._factor, max_tokens=max_tokens)

    def _pixel_range(self, image: Image.Image) -> tuple[int, int, tuple[int, int]]:
        """One merged patch to the processor's cap, and the (height, width) it gives `image` at scale 1."""
        cap = self.processor.image_processor.max_image_tokens
        return self._factor ** 2, cap * self._factor ** 2, self._resize(image.height, image.width, cap)

    def vision_tokens(self, size: tuple[int, int]) -> int:
        """Merged patches of a (width, height) input fed uncapped."""
        uncapped = math.ceil(size[0] / self._factor) * math.ceil(size[1] / self._factor)
        height, width = self._resize(size[1], size[0], uncapped)
        return height * width // self._factor ** 2

    def processor_kwargs(self, image: Image.Image, scale: float) -> dict:
        """Above scale 1, the processor's token cap lifted to the enlarged image's own grid."""
        if scale <= 1.0:
            return {}
        cap = self.processor.image_processor.max_image_tokens
        return {"max_image_tokens": max(cap, self.vision_tokens(image.size))}

    def vision_grid(self, inputs) -> tuple[int, int]:
        _, height, width = inputs["image_grid_thw"][0].tolist()
        merge = self.model.config.vision_config.merge_size
        return height // merge, width // merge
