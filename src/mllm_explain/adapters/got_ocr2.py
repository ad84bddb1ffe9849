"""GOT-OCR 2.0 and PP-Chart2Table (both `GotOcr2ForConditionalGeneration`): a SAM ViT at one fixed square (1024 px /
16 px patches), two stride-2 convolutions: a 16x16 grid, row-major, of `<imgpad>` tokens between `<img>` and
`</img>`.

The image processor stretches any image to the square (as PaliGemma's), so the grid shows the whole image; a scale
resizes the image before it, which stretches it back: a scale below 1 only blurs, and above 1 is refused (the
encoder's side is fixed).  GOT's optional tiles (`crop_to_patches`, off by default) are not read here.  Neither
checkpoint ships a chat template: GOT's processor writes its ChatML turn only around its own "OCR: " query, and
PP-Chart2Table's processor expands no placeholder, so `chat_text` writes the turn, and for PP-Chart2Table the
image tokens themselves.
"""

from __future__ import annotations

import math

from PIL import Image

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.adapters.fixed_resolution import refuse_enlarging
from mllm_explain.adapters.registry import register_adapter

CONVOLUTIONS = 2  # the projector's stride-2 convolutions after the SAM encoder


@register_adapter
class GotOcr2Adapter(ModelAdapter):
    model_types = {"got_ocr2": "stepfun-ai/GOT-OCR-2.0-hf"}
    several_images = False  # its turn is written for one image (`chat_text`)
    layout_text = "one grid (16x16 at 1024 px) of the image stretched to a square, as paligemma; tiles not read"
    scales_text = "<= 1, as PaliGemma (a fixed encoder side)"

    def vision_grid(self, inputs) -> tuple[int, int]:
        """SAM patches each way of the pixels the processor produced, halved by each stride-2 convolution."""
        height, width = inputs["pixel_values"].shape[-2:]
        patch = self.model.config.vision_config.patch_size
        return (math.ceil(height // patch / 2**CONVOLUTIONS), math.ceil(width // patch / 2**CONVOLUTIONS))

    def check_scale(self, image: Image.Image, scale: float) -> None:
        side = self.processor.image_processor.size["height"]
        refuse_enlarging(self, scale, f"its processor stretches any image to a fixed {side} px square")

    def image_text(self) -> str:
        """What stands for the image in the turn: the processor's placeholder, which it expands."""
        return f"{self.processor.img_start_token}{self.processor.image_token}{self.processor.img_end_token}"

    def chat_text(self, prompt: str) -> str:
        """GOT's ChatML turn as its processor writes it for its own query, with the prompt as the query."""
        start, end = "<|im_start|>", "<|im_end|>"
        system = "system\nYou should follow the instructions carefully and explain your answers in detail."
        return f"{start}{system}{end}{start}user\n{self.image_text()}\n{prompt}{end}{start}assistant\n"


@register_adapter
class PPChart2TableAdapter(GotOcr2Adapter):
    """As GOT-OCR 2.0; its processor expands no placeholder, so the turn holds the grid's `<imgpad>` tokens."""

    model_types = {"pp_chart2table": "PaddlePaddle/PP-Chart2Table_safetensors"}

    def image_text(self) -> str:
        """`<img>`, one `<imgpad>` per grid cell of the processor's square, `</img>`."""
        side = self.processor.image_processor.size["height"] // self.model.config.vision_config.patch_size
        cells = math.ceil(side / 2**CONVOLUTIONS) ** 2
        return "<img>" + "<imgpad>" * cells + "</img>"
