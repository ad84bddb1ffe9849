"""GLM-4.1V (`glm4v`): Qwen2-VL's vision-token layout (2x2 merged patches, row-major between the begin and end of
image tokens) with GLM's own `smart_resize`, whose pixel range counts an image once per frame of the temporal patch
it is repeated into: the range of the image itself is `size` divided by `temporal_patch_size`.  Scales as Qwen2-VL's.

GLM-4.6V (`glm46v`), GLM-4.5V (`glm4v_moe`, a MoE text model) and GLM-OCR (`glm_ocr`) reuse GLM-4.1V's processor
and layout as they are; Cosmos3 Edge (`cosmos3_edge`) has GLM-4.1V's resizing and patch order (one frame per patch)
and asks its processor for the `mm_token_type_ids` its model requires."""

from __future__ import annotations

from PIL import Image
from transformers.models.glm4v.image_processing_glm4v import smart_resize

from mllm_explain.adapters.qwen2_vl import Qwen2VLAdapter
from mllm_explain.adapters.registry import register_adapter


@register_adapter
class Glm4vAdapter(Qwen2VLAdapter):
    model_types = {"glm4v": "THUDM/GLM-4.1V-9B-Thinking", "glm46v": "zai-org/GLM-4.6V", "glm4v_moe": "zai-org/GLM-4.5V",
                   "glm_ocr": "zai-org/GLM-OCR"}
    layout_text = "as Qwen2-VL (GLM's own resizing: its pixel range counts each frame of the temporal patch)"

    @property
    def frames_per_patch(self) -> int:
        return self.processor.image_processor.temporal_patch_size

    def _pixel_range(self, image: Image.Image) -> tuple[int, int, tuple[int, int]]:
        """The pixel range of one frame and the (height, width) the processor would give `image` at scale 1."""
        frames = self.frames_per_patch
        size = self.processor.image_processor.size
        low, high = size["shortest_edge"], size["longest_edge"]
        return low // frames, high // frames, smart_resize(frames, image.height, image.width, temporal_factor=frames,
                                                           factor=self._factor, min_pixels=low, max_pixels=high)


@register_adapter
class Cosmos3EdgeAdapter(Glm4vAdapter):
    """Cosmos3 Edge: a SigLIP2 tower, 16 px patches in GLM-4.1V's order (its own image processor, GLM-4.1V's
    `smart_resize`, a temporal patch of 1) merged 2x2; its model computes M-RoPE from `mm_token_type_ids`, which its
    processor makes from the ids when asked (`return_mm_token_type_ids`, off by default) and the model requires."""

    model_types = {"cosmos3_edge": "nvidia/Cosmos3-Edge"}
    layout_text = "as GLM-4.1V (one frame per patch; the processor asked for `mm_token_type_ids`)"

    def processor_kwargs(self, image: Image.Image, scale: float) -> dict:
        return {**super().processor_kwargs(image, scale), "return_mm_token_type_ids": True}
