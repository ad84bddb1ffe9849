"""GLM-5.3-Flash (`glm5_next`): GLM-4.1V's vision-token layout (2x2 merged patches, row-major between the begin and
end of image tokens), with a processor that pads as Kimi K2.5's does.

Its `smart_resize` picks a canvas of whole merged patches (times `patch_expand_factor`) within `min_image_tokens`
and `max_image_tokens`; the image is fitted into it, aspect kept and never enlarged (unless under the minimum), and
zero-padded bottom/right: the grid shows it in its top-left part.  Scales as Kimi K2.5's: fed as it is within the
cap, refused past it.

The text model is hybrid: most layers are linear attention (the last one too), every fourth is sparse (indexed)
softmax attention, and `hc_mult` hyper-connection streams run through the layers until `hc_head` merges them before
the final norm.  The attention rows are the last indexed-attention layer's; the states whose gradients are taken are
the streams entering that layer, flattened into one vector per token (`hc_mult` x hidden: a gradient-times-state sum
over them is the sum over streams).
"""

from __future__ import annotations

import math

import torch
from PIL import Image
from torch import Tensor

from mllm_explain.adapters.base import Trace
from mllm_explain.adapters.kimi_k25 import KimiK25Adapter
from mllm_explain.adapters.qwen2_vl import Qwen2VLAdapter
from mllm_explain.adapters.registry import register_adapter


@register_adapter
class Glm5NextAdapter(KimiK25Adapter):
    model_types = {"glm5_next": "zai-org/GLM-5.3-Flash"}
    layout_text = ("as GLM-4.1V, the image unenlarged and zero-padded bottom/right to its canvas: the grid shows it in "
                   "its top-left part; attention rows and gradients from the last (sparse) attention layer")
    scales_text = ("any within `max_vision_tokens` and the processor's `max_image_tokens`: the image resized before "
                   "the processor, which feeds it unenlarged (2x makes one merged patch four)")
    vision_grid = Qwen2VLAdapter.vision_grid

    @property
    def _factor(self) -> int:
        processor = self.processor.image_processor
        return processor.patch_size * processor.merge_size * processor.patch_expand_factor

    def _fed(self, height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """The (height, width) the image is fitted to and the canvas (height, width) the processor pads it to."""
        from transformers.models.glm5_next.image_processing_glm5_next import smart_resize

        processor = self.processor.image_processor
        frames, low = processor.temporal_patch_size, processor.min_image_tokens
        canvas = smart_resize(frames, height, width, temporal_factor=frames, factor=self._factor,
                              min_pixels=low, max_pixels=processor.max_image_tokens)
        fit = min(canvas[0] / height, canvas[1] / width)
        if height * width >= low * self._factor ** 2:  # enlarged only to reach the minimum
            fit = min(1.0, fit)
        content = tuple(max(1, min(side, math.floor(length * fit))) for side, length in zip(canvas, (height, width)))
        return content, canvas

    def _pixel_range(self, image: Image.Image) -> tuple[int, int, tuple[int, int]]:
        """The processor's pixel range and the canvas (height, width) it feeds `image` at."""
        processor = self.processor.image_processor
        pixels = self._factor ** 2
        return processor.min_image_tokens * pixels, processor.max_image_tokens * pixels, self._fed(image.height,
                                                                                                   image.width)[1]

    def _cap_scale(self, image: Image.Image) -> float:
        return math.sqrt(self.processor.image_processor.max_image_tokens * self._factor ** 2 / (image.height *
                                                                                                 image.width))

    def _cap_text(self) -> str:
        return f"{self.processor.image_processor.max_image_tokens} merged patches"

    @property
    def last_layer(self) -> torch.nn.Module:
        layers, types = self.model.model.language_model.layers, self.model.config.text_config.layer_types
        return next(layers[i] for i in reversed(range(len(layers))) if types[i] != "linear_attention")

    @property
    def last_attention(self) -> torch.nn.Module:
        return self.last_layer.self_attn

    def last_layer_gradients(self, trace: Trace) -> tuple[Tensor, Tensor]:
        """The base's, the hyper-connection streams flattened: (T, N, hc_mult * d) and (N, hc_mult * d)."""
        grads, states = super().last_layer_gradients(trace)
        return grads.flatten(2), states.flatten(1)
