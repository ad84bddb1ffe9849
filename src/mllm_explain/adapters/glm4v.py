"""GLM-4.1V (`glm4v`): Qwen2-VL's vision-token layout (2x2 merged patches, row-major between the begin and end of
image tokens) with GLM's own `smart_resize`, whose pixel range counts an image once per frame of the temporal patch
it is repeated into: the range of the image itself is `size` divided by `temporal_patch_size`.  Scales as Qwen2-VL's.

GLM-4.6V (`glm46v`), GLM-4.5V (`glm4v_moe`, a MoE text model) and GLM-OCR (`glm_ocr`) reuse GLM-4.1V's processor
and layout as they are."""

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
