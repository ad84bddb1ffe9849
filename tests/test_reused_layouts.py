"""Families of transformers 5.24 that reuse the Qwen2-VL / Qwen3-VL, GLM-4V, InternVL or LLaVA-NeXT layout (issue
29): the facts in which they differ from the family whose layout they reuse.  Everything else (views, layout locality,
every method, the CLI from a saved folder) runs on them through the parametrised tests over `tiny_models.FAMILIES`."""

from __future__ import annotations

import pytest
import torch
from tiny_models import ANSWER, FAMILIES, PROMPT, WIDE, build_adapter, make_image
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

REUSING = ["qwen3_5", "qwen3_5_moe", "glm46v", "glm4v_moe", "glm_ocr", "ernie4_5_vl_moe", "paddleocr_vl", "exaone4_5",
           "cohere_compass", "dots3_note", "cosmos3_omni", "lfm3_vl", "hyperclovax_vision_v2", "minimax_m3_vl"]
# reusing InternVL's or LLaVA-NeXT's tiles; Aya Vision's and Command A Vision's heads do not apply their Cohere2 text
# config's `logit_scale` (the text model's own causal-LM head would): the adapters' logits must not either; the
# Granite families' divide by `logits_scaling`
TILED_REUSING = ["qianfan_ocr", "aya_vision", "cohere2_vision", "granite_docling", "granite4_vision"]


@pytest.mark.parametrize("name", REUSING + TILED_REUSING)
def test_the_adapters_logits_are_the_models_own(name):
    """The logits the maps and probabilities read (`ModelAdapter.logits` of the final-norm states) are the ones the
    model computes itself: Cohere Compass and HyperCLOVA X scale them, LFM3's final norm is `embedding_norm`."""
    adapter = build_adapter(name)
    answer = adapter.tokenize_answer(ANSWER)
    trace = adapter.trace(make_image(WIDE), PROMPT, answer)
    inputs = adapter.encode(adapter.scaled_image(make_image(WIDE), 1.0)[0], PROMPT, answer)
    with torch.no_grad():
        own = adapter.model(**inputs, use_cache=False).logits[0, trace.answer_positions - 1].float()
    assert torch.allclose(adapter.logits(trace.hidden[trace.answer_positions - 1]), own, atol=1e-4)


def test_every_reusing_family_has_a_tiny_model():
    assert set(REUSING + TILED_REUSING) <= set(FAMILIES)


@pytest.mark.parametrize("size", [(400, 20), (20, 300), (27, 27), (600, 25)])
def test_paddleocr_vl_input_size_follows_its_resize_on_thin_images(size):
    """PaddleOCR-VL's processor lifts a side under one merged patch (28 px) to a whole one before rounding, keeping the
    aspect ratio, where Qwen2-VL's rounds it up alone: the adapter scales from the size its processor gives."""
    adapter = build_adapter("paddleocr_vl")
    processor = adapter.processor.image_processor
    image = make_image(size)
    _, height, width = processor(images=[image], return_tensors="pt")["image_grid_thw"][0].tolist()
    expected = (height * processor.patch_size, width * processor.patch_size)
    assert adapter._pixel_range(image)[2] == expected
    low, high = processor.size["shortest_edge"], processor.size["longest_edge"]
    if size == (400, 20):  # Qwen2-VL's rule would give 28x392 px, 14 merged patches instead of 20
        assert smart_resize(20, 400, factor=28, min_pixels=low, max_pixels=high) != expected


def test_lfm3_vl_reads_its_last_attention_layer():
    """LFM3 ends in short convolutions, which read only the few tokens before each position: the attention rows and
    the gradients come from its last attention layer (the tiny model's second of three layers)."""
    adapter = build_adapter("lfm3_vl")
    layers = adapter.model.model.language_model.layers
    assert not hasattr(layers[-1], "self_attn")
    assert adapter.last_layer is layers[1] and adapter.last_attention is layers[1].self_attn


def test_granite_docling_has_a_global_image_only_past_one_tile_and_a_fine_route():
    """A 64 px square is one tile with no global image: one view of the whole image; on the fine route (the image
    processor's `fine_route`) each tile has 4x the tokens, twice the side, and the views follow."""
    adapter = build_adapter("granite_docling")
    answer = adapter.tokenize_answer(ANSWER)
    (view,) = adapter.trace(make_image((64, 64)), PROMPT, answer).views
    assert (view.kind, view.grid, view.image_box) == ("image", (4, 4), (0.0, 0.0, 1.0, 1.0))
    adapter.processor.image_processor.fine_route = True
    views = adapter.trace(make_image(WIDE), PROMPT, answer).views
    assert [(v.kind, v.grid) for v in views] == [("tile", (8, 8))] * 12 + [("overview", (8, 8))]
    assert adapter.vision_tokens(WIDE) == 13 * 64
