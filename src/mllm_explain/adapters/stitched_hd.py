"""Stitched high-resolution grid + global grid, each with a newline slot per row, and a separator slot: Phi-4-multimodal
(`Phi4MultimodalForCausalLM`, a multimodal-LM class outside the image-text-to-text auto class) and Unlimited-OCR
(`UnlimitedOcrAdapter` below: the separator last, the global view letterboxed).

Phi-4-multimodal:

The processor picks a canvas of whole crops (`crop_size` px each way; as many as cover the image, else the closest
aspect ratio within `dynamic_hd` crops), resizes the image to fit it keeping its aspect ratio and pads the rest white
at the right and bottom.  Each crop's SigLIP patches are average-pooled 2x2 to `base x base` tokens, and the model
(`Phi4MultimodalImageEmbedding.forward`) writes, in this order:

1. the crops stitched into one grid, cut to its *useful* rows and columns (those the patch mask keeps: the pad is
   dropped up to the last partly used token), each row followed by a newline slot (`sub_img_feature_extensor`);
2. one separator slot (`global_img_feature_extensor`);
3. the global image -- the whole padded canvas stretched to one crop -- as `base x base` tokens, each row followed
   by a newline slot.

The slots are in no view.  The stitched grid is one "tile" view over the whole image (its `grid_box` the part of
the useful grid the resized image covers), the global grid the "overview" (its `grid_box` the part of the canvas the
image covers).  A scale resizes the image before the processor: a larger image gets more crops, up to `dynamic_hd`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from PIL import Image
from transformers import BatchFeature

from mllm_explain.adapters.base import DecoderOnModel, TiledByRule, most_detailed_scale, scaled_size
from mllm_explain.adapters.registry import register_adapter
from mllm_explain.views import Box, View


def _less_row_slots(positions: torch.Tensor, rows: int, columns: int) -> torch.Tensor:
    """The `rows` x `columns` grid's positions out of `positions`, rows of `columns` tokens each followed by a slot."""
    return positions.reshape(rows, columns + 1)[:, :columns].flatten()


@register_adapter
class Phi4MultimodalAdapter(DecoderOnModel):
    model_types = {"phi4_multimodal": "microsoft/Phi-4-multimodal-instruct"}
    layout_text = ("the crops stitched into one grid cut to the image's useful area, then a separator, then the "
                   "global 16x16 grid of the padded canvas; a newline slot ends every row (slots in no view)")
    scales_text = ("any within `max_vision_tokens`: the image resized before the processor; more crops up to "
                   "`dynamic_hd`")
    inputs_text = "one image per prompt (audio not read)"

    def __init__(self, model: torch.nn.Module, processor, name_or_path: str = "") -> None:
        super().__init__(model, processor, name_or_path)
        # transformers installs its output-capturing hooks lazily, per model: once the vision tower has hooked itself
        # (any forward: it always asks for a hidden state), a later `generate(output_hidden_states=True)` of the whole
        # model finds the tower's hidden states empty.  Hooking the whole model first avoids that.
        from transformers.utils.output_capturing import maybe_install_capturing_hooks

        maybe_install_capturing_hooks(model)
        # its processor does not reload its own chat template (the checkpoint ships it with the tokenizer)
        if processor.chat_template is None:
            processor.chat_template = processor.tokenizer.chat_template

    @property
    def image_token_id(self) -> int:
        return self.model.config.vision_config.image_token_id

    @property
    def base(self) -> int:
        """Tokens each way of one crop: its patches, padded to even, pooled 2x2."""
        config = self.model.config.vision_config
        patches = config.image_size // config.patch_size
        return (patches + patches % 2) // 2

    def vision_tokens(self, size: tuple[int, int]) -> int:
        """Image tokens (slots included) the processor writes for an image of `size` (width, height), by its own
        rule."""
        blank = Image.new("RGB", size)
        return int(self.processor.image_processor(blank)["num_img_tokens"][0])

    def check_scale(self, image: Image.Image, scale: float) -> None:
        if scale != 1.0:
            self.bound_tokens(scale, self.vision_tokens(scaled_size(image, scale)), "a stitched grid and global grid")

    def max_scale(self, image: Image.Image) -> float:
        """The smallest scale at which `image` gets the most crops it can within `max_vision_tokens`."""
        return most_detailed_scale(image, self.vision_tokens, self.max_vision_tokens, steps=8)

    def vision_views(self, inputs, image: Image.Image, grid_box: Box) -> list[View]:
        canvas_h, canvas_w = (int(v) for v in inputs["image_sizes"].reshape(-1, 2)[0])
        ratio = min(canvas_w / image.width, canvas_h / image.height)  # the processor's resize into the canvas
        shown_w = canvas_w if canvas_w / image.width == ratio else int(image.width * ratio)
        shown_h = canvas_h if canvas_h / image.height == ratio else int(image.height * ratio)
        crop = self.model.config.vision_config.crop_size
        rows, columns = canvas_h // crop, canvas_w // crop
        base = self.base
        mask = inputs["image_attention_mask"][0, 1:1 + rows * columns, 0::2, 0::2].cpu()
        mask = mask.reshape(rows, columns, base, base).transpose(1, 2).reshape(rows * base, columns * base)
        height, width = int(mask[:, 0].sum()), int(mask[0, :].sum())
        positions = self.image_token_positions(inputs)
        stitched = height * (width + 1)
        if len(positions) != stitched + 1 + base * (base + 1):
            raise RuntimeError(f"{len(positions)} image tokens, not the {height}x{width} stitched grid, the separator "
                               f"and the {base}x{base} global grid, each row with its newline slot")
        token_px = crop / base
        tiles = View(_less_row_slots(positions[:stitched], height, width), (height, width), kind="tile",
                     grid_box=(0.0, 0.0, shown_h / (height * token_px), shown_w / (width * token_px)))
        overview = View(_less_row_slots(positions[stitched + 1:], base, base), (base, base),
                        kind="overview", grid_box=(0.0, 0.0, shown_h / canvas_h, shown_w / canvas_w))
        return [tiles, overview]


@register_adapter
class UnlimitedOcrAdapter(TiledByRule):
    """Unlimited-OCR (`UnlimitedOcrForConditionalGeneration`): SAM + CLIP features, no learned queries.  An image
    larger than `tile_size` is stretched onto the canvas of `tile_size` tiles nearest its aspect ratio
    (`get_optimal_tiled_canvas`, up to `max_patches`), whose tiles' grids are stitched into one grid, each row followed
    by an `image_newline` slot; then the global view -- the image letterboxed (centred, grey bands) into the
    `size` square -- row by row with its newline slots; then one `view_separator` slot.  A smaller image has only the
    global view.  Its generation keeps only the last `sliding_window` answer tokens in view of each new one (R-SWA)."""

    model_types = {"unlimited_ocr": "baidu/Unlimited-OCR"}
    layout_text = ("tiles stitched into one grid (the image stretched onto the canvas), then the global grid (the "
                   "image letterboxed into a square), a newline slot ending every row and a separator at the end "
                   "(slots in no view); an image within one tile: the global grid only")
    scales_text = ("any within `max_vision_tokens`: the image resized before the processor; more tiles up to "
                   "`max_patches`")
    beside_tiles = "the global view"

    def _setting(self, key: str):
        return getattr(self.processor.image_processor, key)

    def encode(self, image: Image.Image | Sequence[Image.Image], prompt: str, answer_ids: Sequence[int] = (),
               scale: float = 1.0) -> BatchFeature:
        """As `ModelAdapter.encode`; an answer longer than the sliding window gets the attention generation gives it
        (R-SWA: the prompt and the last `sliding_window` answer tokens), not the causal mask of one forward, under
        which its later tokens would see the whole answer."""
        inputs = super().encode(image, prompt, answer_ids, scale)
        window = self.model.config.get_text_config().sliding_window
        if window is None or len(answer_ids) <= window:
            return inputs
        rows, length = inputs["input_ids"].shape
        query, key = torch.arange(length)[:, None], torch.arange(length)[None]
        prompt_end = length - len(answer_ids)
        masks = {"full_attention": key <= query,
                 "reference_sliding_attention": (key <= query) & ((key < prompt_end) | (query - key < window))}
        floor = torch.finfo(self.model.dtype).min
        inputs["attention_mask"] = {kind: torch.zeros(rows, 1, length, length, dtype=self.model.dtype)
                                    .masked_fill(~seen, floor).to(self.device) for kind, seen in masks.items()}
        return inputs

    def queries(self, side: int) -> int:
        """Tokens each way of a square of `side` px (the processor's count: patches, downsampled)."""
        return math.ceil(side // self.processor.patch_size / self.processor.downsample_ratio)

    @property
    def global_side(self) -> int:
        return max(self._setting("size")["height"], self._setting("size")["width"])

    def tiles(self, size: tuple[int, int]) -> tuple[int, int]:
        """(rows, columns) of local tiles for an image of `size` (width, height), by the processor's own rule (0, 0:
        the global view only)."""
        from transformers.models.unlimited_ocr.image_processing_unlimited_ocr import get_optimal_tiled_canvas

        tile = self._setting("tile_size")
        if not self._setting("crop_to_patches") or max(size) <= tile:
            return 0, 0
        columns, rows = get_optimal_tiled_canvas(size[::-1], (tile, tile), self._setting("min_patches"),
                                                 self._setting("max_patches"))
        return rows, columns

    def vision_tokens(self, size: tuple[int, int]) -> int:
        """Image tokens (slots included) of an image of `size` (width, height)."""
        rows, columns = self.tiles(size)
        side, local = self.queries(self.global_side), self.queries(self._setting("tile_size"))
        return side * (side + 1) + 1 + rows * local * (columns * local + 1)

    def global_box(self, image: Image.Image) -> Box:
        """The part of the global square the image shows: the processor's letterbox, or all of it where it stretches
        the image (no tiling and a square within `maximum_pad_value`)."""
        side = self.global_side
        if not self._setting("crop_to_patches") and side <= self._setting("maximum_pad_value"):
            return 0.0, 0.0, 1.0, 1.0
        scale = side / max(image.size)
        width, height = round(image.width * scale), round(image.height * scale)
        top, left = (side - height) // 2, (side - width) // 2
        return top / side, left / side, (top + height) / side, (left + width) / side

    def vision_views(self, inputs, image: Image.Image, grid_box: Box) -> list[View]:
        rows, columns = self.tiles(image.size)
        if [columns or 1, rows or 1] != list(inputs["patches_grid"][0]):
            raise RuntimeError(f"the processor tiled the {image.width}x{image.height} image as "
                               f"{inputs['patches_grid'][0]} (columns, rows), not {columns}x{rows}")
        positions = self.image_token_positions(inputs)
        if len(positions) != self.vision_tokens(image.size):
            raise RuntimeError(f"{len(positions)} image tokens, not the {self.vision_tokens(image.size)} expected")
        side, local = self.queries(self.global_side), self.queries(self._setting("tile_size"))
        stitched = rows * local * (columns * local + 1)
        overview = View(_less_row_slots(positions[stitched:stitched + side * (side + 1)], side, side), (side, side),
                        grid_box=self.global_box(image))
        if not rows:
            return [overview]
        grid = (rows * local, columns * local)
        tiles = View(_less_row_slots(positions[:stitched], *grid), grid, kind="tile")
        return [tiles, View(overview.positions, overview.grid, grid_box=overview.grid_box, kind="overview")]
