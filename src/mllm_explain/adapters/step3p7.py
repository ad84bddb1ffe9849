"""Step 3.7 (`step3p7`): crops first, then the global view.  The processor plans a sliding window over the image (its
side adapted to the aspect ratio, the image resized so that whole windows cover it), cuts it row-major into crops, each
resized to `patch_size` (504 px), and adds the whole image squashed onto one `size` square (728 px), last; a ViT of 14
px patches and two stride-2 convolutions make one token per 56 px: 9x9 per crop, 13x13 for the global view.  The
sequence holds `<patch_start>`, a crop's tokens, `<patch_end>` per crop (a `<patch_newline>` after each row of crops),
then `<im_start>`, the global view's tokens, `<im_end>` (markers in no view).  An image that fits the global view and is
not elongated gets no crops.

A scale resizes the image before the processor: a larger image gets more windows; any scale within
`max_vision_tokens`.  Near-degenerate images (under 32 px on a side, elongated over 4:1), which the processor pads to a
square, are refused.
"""

from __future__ import annotations

from PIL import Image

from mllm_explain.adapters.base import ModelAdapter, most_detailed_scale, scaled_size
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.errors import UserError
from mllm_explain.views import Box, View, tile_box


@register_adapter
class Step3p7Adapter(ModelAdapter):
    model_types = {"step3p7": "stepfun-ai/Step-3.7-Flash"}
    layout_text = ("crops of a sliding window over the image, row-major (9x9 each; `<patch_*>` markers in no view), "
                   "then the image squashed onto one square as overview (13x13)")
    scales_text = ("any within `max_vision_tokens`: the image resized before the processor; a larger image gets more "
                   "crops")

    def _plan(self, size: tuple[int, int]) -> tuple[int, int, bool]:
        """(rows, columns) of crops the processor cuts an image of `size` (width, height) into, and whether it pads the
        image to a square first: the image processor's own plan (its `_plan_patches`)."""
        processor = self.processor.image_processor
        plan = processor._plan_patches(size[0], size[1], processor.size["height"], processor.patch_size)
        return plan[4], plan[3], plan[5]

    def _side(self, pixels: int) -> int:
        """Tokens per side of a square input of `pixels`: one per vision patch after the two stride-2 convolutions."""
        processor = self.processor.image_processor
        return pixels // (processor.vision_patch_size * processor.downsampler_stride)

    def vision_tokens(self, size: tuple[int, int]) -> int:
        """Image tokens of an image of `size` (width, height): each crop's and the global view's."""
        processor = self.processor.image_processor
        rows, columns, _ = self._plan(size)
        return rows * columns * self._side(processor.patch_size) ** 2 + self._side(processor.size["height"]) ** 2

    def check_scale(self, image: Image.Image, scale: float) -> None:
        size = scaled_size(image, scale)
        if self._plan(size)[2]:
            raise UserError(f"a {size[0]}x{size[1]} px input (under 32 px on a side, elongated over 4:1) is padded to "
                            "a square by this model's processor, a layout not mapped")
        if scale != 1.0:
            self.bound_tokens(scale, self.vision_tokens(size), f"a {size[0]}x{size[1]} px input")

    def max_scale(self, image: Image.Image) -> float:
        """The smallest scale at which `image` gets the most crops it can within `max_vision_tokens` (1 where none
        gives more)."""
        return most_detailed_scale(image, self.vision_tokens, self.max_vision_tokens)

    def vision_views(self, inputs, image: Image.Image, grid_box: Box) -> list[View]:
        processor = self.processor.image_processor
        rows, columns, _ = self._plan(image.size)
        crop, overview = self._side(processor.patch_size), self._side(processor.size["height"])
        positions = self.image_token_positions(inputs)
        count = int(inputs["num_local_patches"][0]) if "num_local_patches" in inputs else 0
        if count != rows * columns or len(positions) != count * crop ** 2 + overview ** 2:
            raise RuntimeError(f"the processor made {count} crops of the {image.width}x{image.height} image, not the "
                               f"{rows}x{columns} expected")
        crops = [View(positions[i * crop ** 2:(i + 1) * crop ** 2], (crop, crop), kind="tile",
                      image_box=tile_box(i, rows, columns))
                 for i in range(count)]
        whole = View(positions[count * crop ** 2:], (overview, overview), grid_box=grid_box,
                     kind="overview" if count else "image")
        return [*crops, whole]
