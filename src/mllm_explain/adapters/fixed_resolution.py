"""Shared base for fixed-resolution vision encoders (CLIP in LLaVA, InternViT in InternVL), and the one-line
refusal of scales above 1 for every model whose processor cannot feed an enlarged input.

Their processors resize every image to one square, either center-cropping (LLaVA) or stretching
(InternVL) a non-square image.  Letterboxing to a square canvas first keeps the whole image, undistorted,
and says exactly which part of the grid shows it; a scale below 1 shrinks the image inside that canvas.
Above 1 the canvas is the scale-1 one: a subclass whose encoder can take a larger square (LLaVA) has the
processor enlarge it; here such scales are refused.
"""

from __future__ import annotations

from PIL import Image

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.errors import UserError


def refuse_enlarging(adapter: ModelAdapter, scale: float, why: str) -> None:
    """A one-line UserError for a `scale` above 1 on a model that cannot see an enlarged input in more detail
    (`why`: what fixes its input's size)."""
    if scale > 1:
        raise UserError(f"scale {scale} is not possible for {type(adapter).__name__}: {why}; only scales <= 1 exist")


class FixedResolutionAdapter(ModelAdapter):
    """A `ModelAdapter` whose encoder sees one fixed square: `scaled_image` letterboxes."""

    @property
    def background(self) -> tuple[int, int, int]:
        """The image processor's mean colour: padding that normalises to zero, as the encoder saw in training."""
        mean = self.processor.image_processor.image_mean
        mean = [mean] * 3 if isinstance(mean, (int, float)) else list(mean)
        return tuple(round(255 * value) for value in mean)

    def check_scale(self, image: Image.Image, scale: float) -> None:
        refuse_enlarging(self, scale, "its vision encoder sees a fixed resolution, to which the processor resizes "
                                      "any input")

    def max_scale(self, image: Image.Image) -> float:
        """1: no view in more detail (also over a tiled family's own, as `InternVLLetterboxAdapter`'s)."""
        return 1.0

    def scaled_image(self, image: Image.Image, scale: float) -> tuple[Image.Image, tuple[float, float, float, float]]:
        """`image` shrunk by `scale` (none above 1) and centred on a square canvas of its longer side; the box it
        covers."""
        self.check_scale(image, scale)
        width, height = image.size
        side = max(width, height)
        shrink = min(scale, 1.0)
        size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
        image = image.convert("RGB")
        if size != image.size:
            image = image.resize(size, Image.BICUBIC)
        left, top = (side - size[0]) // 2, (side - size[1]) // 2
        canvas = Image.new("RGB", (side, side), self.background)
        canvas.paste(image, (left, top))
        return canvas, (top / side, left / side, (top + size[1]) / side, (left + size[0]) / side)
