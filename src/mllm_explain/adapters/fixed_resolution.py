"""Shared base for fixed-resolution vision encoders (CLIP in LLaVA, InternViT in InternVL).

Their processors resize every image to one square, either center-cropping (LLaVA) or stretching
(InternVL) a non-square image.  Letterboxing to a square canvas first keeps the whole image, undistorted,
and says exactly which part of the grid shows it; a scale below 1 shrinks the image inside that canvas.
"""

from __future__ import annotations

from PIL import Image

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.errors import UserError


class FixedResolutionAdapter(ModelAdapter):
    """A `ModelAdapter` whose encoder sees one fixed square: `scaled_image` letterboxes."""

    @property
    def background(self) -> tuple[int, int, int]:
        """The image processor's mean colour: padding that normalises to zero, as the encoder saw in training."""
        mean = self.processor.image_processor.image_mean
        mean = [mean] * 3 if isinstance(mean, (int, float)) else list(mean)
        return tuple(round(255 * value) for value in mean)

    def check_scale(self, image: Image.Image, scale: float) -> None:
        if scale > 1:
            raise UserError(f"scale {scale} is not possible for {type(self).__name__}: its vision encoder sees a "
                            "fixed resolution, so only scales <= 1 (the image shrunk inside the frame) exist")

    def scaled_image(self, image: Image.Image, scale: float) -> tuple[Image.Image, tuple[float, float, float, float]]:
        """`image` shrunk by `scale` and centred on a square canvas of its longer side; the box it covers."""
        self.check_scale(image, scale)
        width, height = image.size
        side = max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = image.convert("RGB")
        if size != image.size:
            image = image.resize(size, Image.BICUBIC)
        left, top = (side - size[0]) // 2, (side - size[1]) // 2
        canvas = Image.new("RGB", (side, side), self.background)
        canvas.paste(image, (left, top))
        return canvas, (top / side, left / side, (top + size[1]) / side, (left + size[0]) / side)
