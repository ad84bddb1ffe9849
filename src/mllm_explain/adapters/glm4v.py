"""GLM-4.1V (`glm4v`): Qwen2-VL's vision-token layout (2x2 merged patches, row-major between the begin and end of
image tokens) with GLM's own `smart_resize`, whose pixel range counts an image once per frame of the temporal patch
it is repeated into: the range of the image itself is `size` divided by `temporal_patch_size`.  Scales as Qwen2-VL's.

GLM-4.6V (`glm46v`), GLM-4.5V (`glm4v_moe`, a MoE text model) and GLM-OCR (`glm_ocr`) reuse GLM-4.1V's processor
and layout as they are; Cosmos3 Edge (`cosmos3_edge`) has GLM-4.1V's resizing and patch order (one frame per patch)
and asks its processor for the `mm_token_type_ids` its model requires.  `glmga` is GLM-4.6V's model (transformers has
no modeling file of its own) with its own image processor, which resizes each side to whole blocks of
`patch_expand_factor` x `patch_expand_factor` merged patches (the model knows nothing of it: the grid is GLM-4.1V's).

A video (GLM-4.1V, GLM-4.6V, GLM-4.5V): the processor writes each temporal patch (two frames) as an image of its own
between the begin and end of video, `<|begin_of_image|>`, the merged cells as image tokens, `<|end_of_image|>`, then
the time of its first frame as text (GLM-4.1V and GLM-4.5V: whole seconds, "3"; GLM-4.6V: "3.0 seconds"); the model
fills the image tokens inside the video markers with the video's features, group after group, each grid row-major.
GLM's video processors sample by rate, never by a count of frames, and GLM-4.6V's picks its rate from the clip's
length: a setting its sampler would ignore is refused in one line."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from transformers.models.glm4v.image_processing_glm4v import smart_resize
from transformers.video_utils import VideoMetadata

from mllm_explain.adapters.qwen2_vl import Qwen2VLAdapter
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.errors import UserError
from mllm_explain.video import Video


@register_adapter
class Glm4vAdapter(Qwen2VLAdapter):
    model_types = {"glm4v": "THUDM/GLM-4.1V-9B-Thinking", "glm46v": "zai-org/GLM-4.6V", "glm4v_moe": "zai-org/GLM-4.5V",
                   "glm_ocr": "zai-org/GLM-OCR"}
    layout_text = "as Qwen2-VL (GLM's own resizing: its pixel range counts each frame of the temporal patch)"
    glm_resize = staticmethod(smart_resize)  # the processor's (frames, height, width, ...) -> height, width
    video_model_types = frozenset({"glm4v", "glm46v", "glm4v_moe"})

    def video_token_positions(self, inputs) -> torch.Tensor:
        """The image tokens between the begin and end of video tokens (GLM writes a video's frames as images)."""
        ids, config = inputs["input_ids"][0].cpu(), self.model.config
        inside = (ids == config.video_start_token_id).cumsum(0) > (ids == config.video_end_token_id).cumsum(0)
        return ((ids == config.image_token_id) & inside).nonzero().flatten()

    def sample_video(self, path: str | Path, fps: float | None = None, frames: int | None = None) -> Video:
        """As the base; a frame count or rate the video processor's sampler ignores (tried on a 20 s clip at 30 fps)
        is refused in one line rather than silently not applied."""
        self.check_video()
        if fps is not None or frames is not None:
            sample, clip = self.processor.video_processor.sample_frames, VideoMetadata(600, fps=30.0, duration=20.0)
            model_type = self.model.config.model_type
            if len(sample(clip, fps=0.5)) == len(sample(clip, fps=1.0)):
                raise UserError(f"{model_type}'s video processor picks its own frame rate from the clip's length: give "
                                "neither the rate nor the number of frames")
            if frames is not None and len(sample(clip, num_frames=2)) == len(sample(clip, num_frames=4)):
                raise UserError(f"{model_type}'s video processor samples frames by its rate, not by a count: give "
                                "the rate (fps), not the number of frames")
        return super().sample_video(path, fps=fps, frames=frames)

    @property
    def frames_per_patch(self) -> int:
        return self.processor.image_processor.temporal_patch_size

    @property
    def _resize_factor(self) -> int:
        """The multiple of pixels each side is resized to: one merged patch."""
        return self._factor

    def _pixel_range(self, image: Image.Image) -> tuple[int, int, tuple[int, int]]:
        """The pixel range of one frame and the (height, width) the processor would give `image` at scale 1."""
        frames = self.frames_per_patch
        size = self.processor.image_processor.size
        low, high = size["shortest_edge"], size["longest_edge"]
        return low // frames, high // frames, self.glm_resize(frames, image.height, image.width,
                                                              temporal_factor=frames, factor=self._resize_factor,
                                                              min_pixels=low, max_pixels=high)


@register_adapter
class GlmgaAdapter(Glm4vAdapter):
    model_types = {"glmga": "no checkpoint named yet"}
    layout_text = "as GLM-4.1V (each side resized to whole blocks of `patch_expand_factor` merged patches)"

    @staticmethod
    def glm_resize(*args, **kwargs) -> tuple[int, int]:
        """GLMGA's `smart_resize`, imported on use (a transformers release before the family has none)."""
        from transformers.models.glmga.image_processing_glmga import smart_resize as glmga_resize

        return glmga_resize(*args, **kwargs)

    @property
    def _expand(self) -> int:
        return self.processor.image_processor.patch_expand_factor

    @property
    def _resize_factor(self) -> int:
        return self._factor * self._expand

    def vision_tokens(self, size: tuple[int, int]) -> int:
        """Merged patches of a (width, height) input fed at its own size (rounded to whole blocks of them)."""
        factor = self._resize_factor
        return max(1, round(size[0] / factor)) * max(1, round(size[1] / factor)) * self._expand ** 2


@register_adapter
class Cosmos3EdgeAdapter(Glm4vAdapter):
    """Cosmos3 Edge: a SigLIP2 tower, 16 px patches in GLM-4.1V's order (its own image processor, GLM-4.1V's
    `smart_resize`, a temporal patch of 1) merged 2x2; its model computes M-RoPE from `mm_token_type_ids`, which its
    processor makes from the ids when asked (`return_mm_token_type_ids`, off by default) and the model requires."""

    model_types = {"cosmos3_edge": "nvidia/Cosmos3-Edge"}
    layout_text = "as GLM-4.1V (one frame per patch; the processor asked for `mm_token_type_ids`)"

    def processor_kwargs(self, image: Image.Image, scale: float) -> dict:
        return {**super().processor_kwargs(image, scale), "return_mm_token_type_ids": True}
