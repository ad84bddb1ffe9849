"""Families of transformers 5.24 that reuse the Qwen2-VL / Qwen3-VL, GLM-4V, InternVL, LLaVA or Mistral 3 layout (issue
29): the facts in which they differ from the family whose layout they reuse.  Everything else (views, layout locality,
every method, the CLI from a saved folder) runs on them through the parametrised tests over `tiny_models.FAMILIES`."""

from __future__ import annotations

import pytest
import torch
from tiny_models import ANSWER, FAMILIES, PROMPT, WIDE, build_adapter, make_image
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

from mllm_explain.adapters import load_model
from mllm_explain.errors import UserError

REUSING = ["qwen3_5", "qwen3_5_moe", "glm46v", "glm4v_moe", "glm_ocr", "ernie4_5_vl_moe", "paddleocr_vl", "exaone4_5",
           "cohere_compass", "dots3_note", "cosmos3_omni", "lfm3_vl", "hyperclovax_vision_v2", "minimax_m3_vl",
           "vipllava", "video_llava", "llava_next_video", "mistral_large4", "lighton_ocr", "nemotron_h_omni",
           "qwen4_exp", "cosmos3_edge", "qianfan_ocr", "aya_vision", "cohere2_vision", "granite_docling",
           "granite4_vision"]


@pytest.mark.parametrize("name", list(FAMILIES))
def test_the_adapters_logits_are_the_models_own(name):
    """The logits the maps and probabilities read (`ModelAdapter.logits` of the final-norm states) are the ones the
    model computes itself, in every family: Cohere Compass and HyperCLOVA X scale them, Granite's divide them (Aya
    Vision's and Command A Vision's heads apply no `logit_scale`), Gemma 2's, Inkling 2's and Mistral Large 4's are
    soft-capped, Inkling divides its states and drops padded vocabulary rows, LFM3's final norm is `embedding_norm`,
    Nemotron Omni's is `norm_f` and its LM head is its language model's, Qwen4-Exp's is its hyper-connection mixer."""
    adapter = build_adapter(name)
    answer = adapter.tokenize_answer(ANSWER)
    trace = adapter.trace(make_image(WIDE), PROMPT, answer)
    inputs = adapter.encode(adapter.scaled_image(make_image(WIDE), 1.0)[0], PROMPT, answer)
    with torch.no_grad():
        own = adapter.model(**inputs, use_cache=False).logits[0, trace.answer_positions - 1].float()
    assert torch.allclose(adapter.logits(trace.hidden[trace.answer_positions - 1]), own, atol=1e-4)


def test_every_reusing_family_has_a_tiny_model():
    assert set(REUSING) <= set(FAMILIES)


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


def test_inkling_refuses_a_processor_that_rescales_images():
    """Inkling's processor can resize images itself (`rescale_image_frac`, off as released); the cells would then not
    be the image's: refused in one line."""
    adapter = build_adapter("inkling_mm_model")
    adapter.processor.image_processor.rescale_image_frac = 2.0
    with pytest.raises(UserError, match="rescale_image_frac") as refused:
        adapter.trace(make_image(WIDE), PROMPT, adapter.tokenize_answer(ANSWER))
    assert "\n" not in str(refused.value)


def test_shieldgemma2_is_refused_in_one_line_while_its_processor_ignores_the_prompt(tmp_path):
    """ShieldGemma 2 (Gemma 3's model and layout) is refused by name: its processor writes its own safety-policy
    prompts, one row each, whatever text it is given.  The day it reads the prompt, this test fails and says to add
    it to Gemma 3's adapter instead."""
    from transformers import ShieldGemma2Config, ShieldGemma2Processor

    gemma3 = build_adapter("gemma3")
    processor = ShieldGemma2Processor(image_processor=gemma3.processor.image_processor, tokenizer=gemma3.tokenizer,
                                      chat_template=gemma3.processor.chat_template, image_seq_length=64)
    inputs = processor(images=[make_image(WIDE)], text=[gemma3.chat_text(PROMPT)], return_tensors="pt")
    texts = gemma3.tokenizer.batch_decode(inputs["input_ids"])
    assert len(texts) == len(processor.policy_definitions) == 3
    assert not any(PROMPT in text for text in texts)
    assert all(policy in text for policy, text in zip(processor.policy_definitions.values(), texts))
    config = gemma3.model.config
    ShieldGemma2Config(text_config=config.text_config.to_dict(), vision_config=config.vision_config.to_dict(),
                       mm_tokens_per_image=64).save_pretrained(tmp_path)
    with pytest.raises(UserError, match=r"'shieldgemma2' is not supported: .*ignores the prompt") as refused:
        load_model(tmp_path, device="cpu")
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("name", ["perception_lm", "gemma3n"])
def test_without_timm_loading_is_one_line_naming_the_extra(name, tmp_path, monkeypatch):
    """transformers builds these vision towers with timm (TimmWrapperModel: Perception LM's PE encoder, Gemma 3n's
    MobileNetV5): where timm is missing, `load_model` says in one line which extra installs it."""
    from transformers.utils import import_utils

    adapter = build_adapter(name)
    adapter.model.save_pretrained(tmp_path)
    adapter.processor.save_pretrained(tmp_path)
    monkeypatch.setitem(import_utils.BACKENDS_MAPPING, "timm", (lambda: False, import_utils.TIMM_IMPORT_ERROR))
    with pytest.raises(UserError, match=r"needs the `timm` package.*pip install 'mllm-explain\[timm\]'$") as refused:
        load_model(tmp_path, device="cpu")
    assert "\n" not in str(refused.value)


def test_lighton_ocr_grid_leaves_out_the_strip_its_merge_drops():
    """LightOnOCR's image processor rounds the image to whole 14 px patches; the 2x2 merge drops an odd last row of
    them: 168x126 px gives 9 rows of patches, 4 merged rows, and no image token stands for its bottom 14 px (the
    encoder's attention mixes a trace of them into every token), so the view shows the top 112 px only."""
    adapter = build_adapter("lighton_ocr")
    image = make_image(WIDE)
    (view,) = adapter.trace(image, PROMPT, adapter.tokenize_answer(ANSWER)).views
    assert view.grid == (4, 6) and view.image_box == (0.0, 0.0, 112 / 126, 1.0)

    def features(top: int) -> torch.Tensor:
        """The image tokens' features with a 14 px band from row `top` painted over."""
        painted = image.copy()
        painted.paste((255, 0, 255), (0, top, 168, top + 14))
        inputs = adapter.encode(painted, PROMPT)
        with torch.no_grad():
            output = adapter.model.model.get_image_features(inputs["pixel_values"], inputs["image_sizes"])
        return torch.cat(output.pooler_output)

    plain = features(126)  # nothing painted
    # token changes of painting the dropped strip, and the last 14 px the grid shows: the latter changes its last row
    # of tokens; the former only what the encoder's attention mixes in (as in every token: 1e-3 of a shown change)
    dropped, shown = ((features(top) - plain).norm(dim=-1) for top in (112, 98))
    assert shown[-6:].min() > 100 * shown[:-6].max()
    assert dropped.max() < shown[-6:].min() / 100


def test_nemotron_h_omni_reads_its_last_attention_layer():
    """Nemotron-H ends in Mamba-2 and MLP/MoE blocks after its last attention layer: the attention rows and the
    gradients come from that layer (the tiny model's second of four)."""
    adapter = build_adapter("nemotron_h_omni")
    layers = adapter.model.language_model.model.layers
    assert [layer.block_type for layer in layers] == ["linear_attention", "full_attention", "linear_attention", "mlp"]
    assert adapter.last_layer is layers[1] and adapter.last_attention is layers[1].mixer


def test_cosmos3_edge_needs_the_mm_token_type_ids_its_processor_makes_when_asked():
    """Cosmos3 Edge's processor leaves out the `mm_token_type_ids` its model requires unless asked (a fact of
    transformers 5.24: the day it returns them by default, the adapter's request is no longer needed)."""
    adapter = build_adapter("cosmos3_edge")
    text, image = adapter.chat_text(PROMPT), make_image(WIDE)
    plain = adapter.processor(images=[image], text=[text], return_tensors="pt")
    assert "mm_token_type_ids" not in plain
    with pytest.raises(ValueError, match="mm_token_type_ids"):
        adapter.model(**plain)
    asked = adapter.encode(image, PROMPT)
    assert (asked["mm_token_type_ids"][0] == 1).sum() == (asked["input_ids"][0] == adapter.image_token_id).sum()


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
