"""HunyuanOCR (`hunyuan_vl`) and Hy4 (`hy_v4_vl`): the Qwen-grid layout (16 px patches, row-major this time, merged
2x2 by a convolution) with a row-end slot *inside* the image-token span: the merger appends a learned newline feature
to every merged row, so the span is h * (w + 1) placeholder tokens, plus, for HunyuanOCR, a begin and an end slot
around it (its processor's `cat_extra_token`).  The slots carry no part of the image and are in no view.  Hy4's MoE
text model carries several residual streams per token (hyper-connections) and a learned attention sink.

Scales as Qwen2-VL's, with the families' own `smart_resize` (a short side is not lifted to one merged patch first).
"""

from __future__ import annotations

from mllm_explain.adapters.qwen2_vl import Qwen2VLAdapter
from mllm_explain.adapters.registry import register_adapter


@register_adapter
class HunYuanVLAdapter(Qwen2VLAdapter):
    model_types = {"hunyuan_vl": "tencent/HunyuanOCR", "hy_v4_vl": "tencent/Hy4"}
    layout_text = ("one native-resolution grid of 2x2-merged patches, with a newline slot ending each row inside the "
                   "image-token span (HunyuanOCR: begin and end slots too), slots in no view")
    row_end_slots = 1

    @staticmethod
    def resize_rule(*args, **kwargs) -> tuple[int, int]:
        """The family's `smart_resize` (both families share it), imported on use: a transformers release before them
        has none."""
        from transformers.models.hunyuan_vl.image_processing_hunyuan_vl import smart_resize

        return smart_resize(*args, **kwargs)

    @property
    def wrapper_slots(self) -> int:
        """HunyuanOCR's begin and end slots, when its processor adds them (Hy4's has none)."""
        return int(getattr(self.processor, "cat_extra_token", False))
