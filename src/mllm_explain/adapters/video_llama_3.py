"""VideoLLaMA 3 (`video_llama_3`): the Qwen2-VL layout for images with no merge: its processor gives each image a
merge size of 1 (`image_merge_sizes`), so every 14 px patch is one image token, row-major over the resized image (its
videos merge 2x2 and drop tokens; video is not read here).  Scales as Qwen2-VL's, in whole patches, with its own
`smart_resize`."""

from __future__ import annotations

from mllm_explain.adapters.qwen2_vl import Qwen2VLAdapter
from mllm_explain.adapters.registry import register_adapter


@register_adapter
class VideoLlama3Adapter(Qwen2VLAdapter):
    model_types = {"video_llama_3": "lkhl/VideoLLaMA3-2B-Image-HF"}
    layout_text = "one native-resolution grid of 14 px patches, unmerged (the processor's `image_merge_sizes`)"

    @staticmethod
    def resize_rule(*args, **kwargs) -> tuple[int, int]:
        """VideoLLaMA 3's `smart_resize`, imported on use (a transformers release before the family has none)."""
        from transformers.models.video_llama_3.image_processing_video_llama_3 import smart_resize

        return smart_resize(*args, **kwargs)

    def vision_grid(self, inputs) -> tuple[int, int]:
        """The patch grid divided by the image's own merge size, as the model splits its features."""
        _, height, width = inputs["image_grid_thw"][0].tolist()
        merge = int(inputs["image_merge_sizes"][0])
        return height // merge, width // merge
