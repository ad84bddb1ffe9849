"""Kimi K2.5 / K2.6 (`kimi_k25`): MoonViT's patches, row-major, merged 2x2 by index into one row-major grid between
`<|media_begin|>image<|media_content|>` and `<|media_end|>`, as Qwen2-VL's; `image_grid_thw` counts patches.

Its processor never enlarges an image: `navit_resize` only shrinks one past its cap (`max_patches` patches, and
`size["max_height"]` patches a side), then zero-pads it bottom/right to whole merged patches.  So the grid shows
the image in its top-left part (`grid_box`) and its last row and column may show padding only.

A scale resizes the image before the processor, which feeds it as it is while it is within the cap: enlarging
gives more tokens (not resampled ones) up to the cap, past which the processor would shrink the image back
(refused in one line).  Any scale but 1 is bounded by `max_vision_tokens` too.
"""

from __future__ import annotations

import math

from PIL import Image
from transformers.models.kimi_k25.image_processing_kimi_k25 import navit_resize

from mllm_explain.adapters.qwen2_vl import Qwen2VLAdapter
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.errors import UserError
from mllm_explain.views import Box, View


@register_adapter
class KimiK25Adapter(Qwen2VLAdapter):
    model_types = {"kimi_k25": "moonshotai/Kimi-K2.6"}
    layout_text = ("as Qwen2-VL, the image unenlarged and zero-padded bottom/right to whole merged patches: the grid "
                   "shows it in its top-left part")
    scales_text = ("any within `max_vision_tokens` and the processor's cap (16,384 patches, 512 a side): the image "
                   "resized before the processor, which feeds it unenlarged (2x makes one merged patch four)")

    @property
    def _merge(self) -> tuple[int, int]:
        return tuple(self.model.config.vision_config.merge_kernel_size)

    def vision_grid(self, inputs) -> tuple[int, int]:
        _, height, width = inputs["image_grid_thw"][0].tolist()
        merge_h, merge_w = self._merge
        return height // merge_h, width // merge_w

    def _fed(self, height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """The (height, width) the processor resizes an image to and the padded (height, width) it feeds."""
        processor = self.processor.image_processor
        return navit_resize(height, width, patch_size=processor.patch_size, merge_kernel_size=processor.merge_size,
                            max_patches=processor.max_patches, max_size_per_side=processor.size["max_height"])

    def _pixel_range(self, image: Image.Image) -> tuple[int, int, tuple[int, int]]:
        """The processor's pixel range (no minimum: it pads) and the padded (height, width) it feeds `image` at."""
        processor = self.processor.image_processor
        return 1, processor.max_patches * processor.patch_size ** 2, self._fed(image.height, image.width)[1]

    def vision_views(self, inputs, image: Image.Image, grid_box: Box) -> list[View]:
        """One grid whose top-left part shows the image: the rest is the processor's padding."""
        (height, width), (padded_h, padded_w) = self._fed(image.height, image.width)
        box = (0.0, 0.0, height / padded_h, width / padded_w)
        return [View(self.image_token_positions(inputs), self.vision_grid(inputs), grid_box=box)]

    def vision_tokens(self, size: tuple[int, int]) -> int:
        """Merged patches of a (width, height) input, padded to whole ones (the cap aside)."""
        factor = self._factor
        return math.ceil(size[0] / factor) * math.ceil(size[1] / factor)

    def max_scale(self, image: Image.Image) -> float:
        """The largest scale, in whole pixels, at which the processor feeds the image unshrunk within
        `max_vision_tokens` (at least 1)."""
        scale = self._cap_scale(image)
        while scale > 1 and self._refusal(image, scale):  # tokens, or the patch count's floor, past a bound
            scale -= 1 / max(image.size)
        return max(1.0, scale)

    def _cap_scale(self, image: Image.Image) -> float:
        """About the largest scale within the processor's cap (`max_scale` steps down from it)."""
        processor = self.processor.image_processor
        patch, side = processor.patch_size, processor.size["max_height"] * processor.patch_size
        by_patches = math.sqrt(processor.max_patches / max(1, image.height // patch) / max(1, image.width // patch))
        return min(by_patches, side / image.height, side / image.width)

    def _cap_text(self) -> str:
        """The processor's cap, for a refusal."""
        processor = self.processor.image_processor
        return f"{processor.max_patches} patches ({processor.size['max_height']} a side)"

    def processor_kwargs(self, image: Image.Image, scale: float) -> dict:
        """None: an enlarged image within the cap is fed as it is."""
        return {}

    def _scaled_size(self, image: Image.Image, scale: float) -> tuple[int, int]:
        size = (round(image.width * scale), round(image.height * scale))
        refusal = self._refusal(image, scale)
        if refusal:
            raise UserError(refusal)
        return size

    def _refusal(self, image: Image.Image, scale: float) -> str:
        """Why `image` cannot be fed at `scale`, or ''."""
        width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
        tokens = self.vision_tokens((width, height))
        if scale > 1 and self._fed(height, width)[0] != (height, width):
            return (f"scale {scale} gives a {width}x{height} px input, past the processor's cap of "
                    f"{self._cap_text()}: it would be shrunk back")
        if tokens > self.max_vision_tokens:
            return (f"scale {scale} gives a {width}x{height} px input of {tokens} vision tokens, more than "
                    f"max_vision_tokens={self.max_vision_tokens}")
        return ""
