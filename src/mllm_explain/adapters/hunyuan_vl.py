"""HunyuanOCR (`hunyuan_vl`) and Hy4 (`hy_v4_vl`): the Qwen-grid layout (16 px patches, row-major this time, merged
2x2 by a convolution) with a row-end slot *inside* the image-token span: the merger appends a learned newline feature
to every merged row, so the span is h * (w + 1) placeholder tokens, plus, for HunyuanOCR, a begin and an end slot
around it (its processor's `cat_extra_token`).  The slots carry no part of the image and are in no view.  Hy4's MoE
text model carries several residual streams per token (hyper-connections) and a learned attention sink.

Scales as Qwen2-VL's, with the families' own `smart_resize` (a short side is not lifted to one merged patch first).
"""

from __future__ import annotations

from PIL import Image

from mllm_explain.adapters.qwen2_vl import Qwen2VLAdapter
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.views import Box, View


@register_adapter
class HunYuanVLAdapter(Qwen2VLAdapter):
    model_types = {"hunyuan_vl": "tencent/HunyuanOCR", "hy_v4_vl": "tencent/Hy4"}
    layout_text = ("one native-resolution grid of 2x2-merged patches, with a newline slot ending each row inside the "
                   "image-token span (HunyuanOCR: begin and end slots too), slots in no view")

    @staticmethod
    def resize_rule(*args, **kwargs) -> tuple[int, int]:
        """The family's `smart_resize` (both families share it), imported on use: a transformers release before them
        has none."""
        from transformers.models.hunyuan_vl.image_processing_hunyuan_vl import smart_resize

        return smart_resize(*args, **kwargs)

    @property
    def wrapper_slots(self) -> int:
        """Slots before the grid (and as many after it): HunyuanOCR's begin and end, when its processor adds them."""
        return int(getattr(self.processor, "cat_extra_token", False))

    def vision_tokens(self, size: tuple[int, int]) -> int:
        """Image tokens of a (width, height) input fed at its own size: the grid's cells and its slots."""
        factor = self._factor
        rows, columns = max(1, round(size[1] / factor)), max(1, round(size[0] / factor))
        return rows * (columns + 1) + 2 * self.wrapper_slots

    def vision_views(self, inputs, image: Image.Image, grid_box: Box) -> list[View]:
        """The grid's cells: each row's first w slots of its w + 1, after the begin slot."""
        rows, columns = self.vision_grid(inputs)
        span = self.image_token_positions(inputs)
        start = self.wrapper_slots
        cells = span[start:start + rows * (columns + 1)].view(rows, columns + 1)[:, :columns]
        return [View(cells.flatten(), (rows, columns), grid_box=grid_box)]
