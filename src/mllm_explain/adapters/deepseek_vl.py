"""DeepSeek-VL (`DeepseekVLForConditionalGeneration`), DeepSeek-VL hybrid and Janus (`JanusForConditionalGeneration`,
its understanding path): a SigLIP encoder at one fixed square (384 px / 16 px patches: 24x24 tokens, no CLS), whose
patches, row-major, are the image tokens; the hybrid adds to each a SAM encoding of the same square at 1024 px,
brought to the same grid; Janus writes them between `<begin_of_image>` and `<end_of_image>`.

The processor resizes the longer side to the square's and pads the shorter one to it with the mean colour (a
letterbox): `FixedResolutionAdapter` letterboxes first with the same colour, so the processor only resizes a square
and the grid's `grid_box` says which part of it shows the image.  Scales above 1 are refused: the processor writes
its fixed `num_image_tokens` whatever the input.
"""

from __future__ import annotations

from PIL import Image

from mllm_explain.adapters.fixed_resolution import FixedResolutionAdapter, refuse_enlarging
from mllm_explain.adapters.registry import register_adapter


@register_adapter
class DeepseekVLAdapter(FixedResolutionAdapter):
    model_types = {"deepseek_vl": "deepseek-community/deepseek-vl-1.3b-chat"}
    layout_text = "one fixed 24x24 SigLIP grid, the image letterboxed into it (as the processor pads to a square)"
    scales_text = "<= 1: the image shrunk inside the square (a fixed `num_image_tokens`)"

    def vision_grid(self, inputs) -> tuple[int, int]:
        """Patches each way of the pixels the processor produced (SigLIP has no CLS token)."""
        height, width = inputs["pixel_values"].shape[-2:]
        patch = self.model.config.vision_config.patch_size
        return height // patch, width // patch

    def check_scale(self, image: Image.Image, scale: float) -> None:
        refuse_enlarging(self, scale, f"its processor writes a fixed {self.processor.num_image_tokens} image tokens "
                                      "whatever the input's size")


@register_adapter
class JanusAdapter(DeepseekVLAdapter):
    """As DeepSeek-VL; the image tokens sit between `<begin_of_image>` and `<end_of_image>` (in no view)."""

    model_types = {"janus": "deepseek-community/Janus-Pro-1B"}


@register_adapter
class DeepseekVLHybridAdapter(DeepseekVLAdapter):
    """As DeepSeek-VL: the high-resolution SAM features are resized onto the SigLIP grid and fused per position."""

    model_types = {"deepseek_vl_hybrid": "deepseek-community/deepseek-vl-7b-chat"}
