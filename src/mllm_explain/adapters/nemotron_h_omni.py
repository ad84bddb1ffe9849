"""NVIDIA Nemotron-3 Nano Omni (`nemotron_h_omni`): a RADIO tower reads the image at native resolution in 16 px
patches, row-major (`image_grid_hw` in patches); the model pixel-shuffles each 2x2 block into one token, a row-major
(h/2, w/2) grid between `<img>` and `</img>`: Qwen2-VL's layout with the grid read from `image_grid_hw`.

Its processor sizes the patch grid its own way (`get_patch_grid_size`: the image's patches, rounded up, scaled into
`[min_num_patches, max_num_patches]` and the context's budget, each side then made even), so the scales follow that
rule: the size it gives the image, times the scale; above 1 the enlarged image is fed at its own size, the
processor's patch budget lifted for that call only.

The language model is Nemotron-H: Mamba-2 and MoE/MLP layers with a few attention layers between them; its final
norm is `norm_f`, and the attention rows and the gradients are those of its last attention layer (the layers after
it are Mamba-2 and MLP blocks, which have no attention rows)."""

from __future__ import annotations

import torch
from PIL import Image
from torch import Tensor
from transformers.models.nemotron_h_omni.image_processing_nemotron_h_omni import get_patch_grid_size

from mllm_explain.adapters.qwen2_vl import Qwen2VLAdapter
from mllm_explain.adapters.registry import register_adapter

UNCAPPED = 2 ** 40  # a patch budget no image reaches: the processor's rounding without its cap


@register_adapter
class NemotronHOmniAdapter(Qwen2VLAdapter):
    model_types = {"nemotron_h_omni": "nvidia/Nemotron-3-Nano-Omni-30B-A3B-Reasoning-BF16"}
    layout_text = ("as Qwen2-VL, the grid from `image_grid_hw` (16 px patches, 2x2 pixel shuffle); attention rows and "
                   "gradients from the last attention layer of the hybrid Mamba-2 LM")
    scales_text = ("any within `max_vision_tokens` (16,384) and above the processor's smallest input: the size the "
                   "processor gives the image, times the scale, in whole merged patches (above 1 its patch budget is "
                   "lifted for that forward)")

    @property
    def _merge(self) -> int:
        return round(1 / self.processor.image_processor.downsample_ratio)

    def vision_grid(self, inputs) -> tuple[int, int]:
        height, width = inputs["image_grid_hw"][0].tolist()
        return height // self._merge, width // self._merge

    @property
    def _factor(self) -> int:
        return self.processor.image_processor.patch_size * self._merge

    def _budget(self) -> int:
        """The patch budget the processor gives one image: its context's, clamped to its patch range."""
        processor = self.processor.image_processor
        budget = (processor.max_model_len - 4) * self._merge ** 2
        if processor.max_num_patches:
            budget = min(budget, processor.max_num_patches)
        return max(budget, processor.min_num_patches)

    def _grid(self, height: int, width: int, low: int, high: int) -> tuple[int, int]:
        """The processor's (height, width) patch grid for an image of that size and that patch range."""
        patch = self.processor.image_processor.patch_size
        return get_patch_grid_size(height, width, patch, self._merge, low, high)

    def _pixel_range(self, image: Image.Image) -> tuple[int, int, tuple[int, int]]:
        """The processor's pixel range and the (height, width) it would give `image` at scale 1."""
        processor = self.processor.image_processor
        low, high, area = processor.min_num_patches, self._budget(), processor.patch_size ** 2
        height, width = self._grid(image.height, image.width, low, high)
        return low * area, high * area, (height * processor.patch_size, width * processor.patch_size)

    def vision_tokens(self, size: tuple[int, int]) -> int:
        """Merged patches of a (width, height) input fed at its own size (the processor's rounding, uncapped)."""
        height, width = self._grid(size[1], size[0], 0, UNCAPPED)
        return height * width // self._merge ** 2

    def processor_kwargs(self, image: Image.Image, scale: float) -> dict:
        """Above scale 1, the processor's patch budget (its cap and its context's) lifted to the enlarged image's
        own patches, so that it is fed as enlarged; nothing else changes."""
        if scale <= 1.0:
            return {}
        processor = self.processor.image_processor
        tokens = self.vision_tokens(image.size)
        return {"max_num_patches": max(self._budget(), tokens * self._merge ** 2),
                "max_model_len": max(processor.max_model_len, tokens + 4)}

    @property
    def _language_model(self) -> torch.nn.Module:
        return self.model.language_model

    @property
    def final_norm(self) -> torch.nn.Module:
        return self._language_model.model.norm_f

    @property
    def last_layer(self) -> torch.nn.Module:
        return next(block for block in reversed(self._language_model.model.layers)
                    if block.block_type == "full_attention")

    @property
    def last_attention(self) -> torch.nn.Module:
        return self.last_layer.mixer

    @property
    def unembedding(self) -> Tensor:
        """The LM head's matrix: the model's own `get_output_embeddings` is None (its LM is a sub-model)."""
        return self._language_model.get_output_embeddings().weight
