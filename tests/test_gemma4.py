"""Gemma 4 and Gemma 4 unified: the facts the adapter reads that the parametrised family tests do not single out --
the grid from `image_position_ids` at the shipped processor settings, soft-capped logits, and the KV-shared last
layers (E2B, E4B), which compute only the kept positions and reuse an earlier layer's keys and values."""

from __future__ import annotations

import pytest
import torch
from tiny_models import ANSWER, PROMPT, TALL, WIDE, build_adapter, make_image

from mllm_explain.adapters.base import ModelAdapter

GEMMA4 = ["gemma4", "gemma4_unified"]


@pytest.mark.parametrize("name", GEMMA4)
@pytest.mark.parametrize(("size", "grid"), [((640, 480), (14, 19)), ((480, 640), (19, 14)), ((2000, 100), (3, 74)),
                                            ((20000, 40), (1, 280)), ((30, 30), (16, 16))])
def test_the_grid_is_the_processors_at_its_shipped_settings(name, size, grid):
    """At the shipped settings (16 px patches, 48 px cells, 280 soft tokens) the grid read from `image_position_ids`
    is the processor's resize in cells: 640x480 -> 912x672 px; an image too thin for one row of cells gets one row,
    up to the whole budget long; a small one is enlarged to the budget."""
    adapter = build_adapter(name)
    processor_cls = type(adapter.processor.image_processor)
    adapter.processor.image_processor = processor_cls()  # as shipped
    inputs = adapter.encode(make_image(size), PROMPT)
    assert adapter.vision_grid(inputs) == grid
    assert len(adapter.image_token_positions(inputs)) == grid[0] * grid[1]


@pytest.mark.parametrize("name", GEMMA4)
def test_the_adapters_logits_are_the_models_own_soft_capped(name):
    """`logits` of the final-norm states equals the model's own logits, which Gemma 4 soft-caps (30 as shipped; 0.1
    here, where the random model's logits are far below 30 and the cap would change them by less than the tolerance)."""
    adapter = build_adapter(name)
    adapter.model.config.get_text_config().final_logit_softcapping = 0.1
    answer = adapter.tokenize_answer(ANSWER)
    trace = adapter.trace(make_image(TALL), PROMPT, answer)
    inputs = adapter.encode(make_image(TALL), PROMPT, answer)
    with torch.no_grad():
        own = adapter.model(**inputs, use_cache=False).logits[0, trace.answer_positions - 1].float()
    states = trace.hidden[trace.answer_positions - 1]
    assert torch.allclose(adapter.logits(states), own, atol=1e-4)
    uncapped = states.float() @ adapter.unembedding.float().T
    assert not torch.allclose(uncapped, own, atol=1e-4)  # uncapped they differ


@pytest.mark.parametrize("name", GEMMA4)
def test_kv_shared_layers_run_on_every_position(name):
    """The text model passes only the kept positions (`logits_to_keep=1`) into its KV-shared layers, so the final norm
    sees one position; the adapter's forwards see them all, equal to the states of a forward that keeps every logit.
    The gradients are taken entering the last layer with keys and values of its own (the shared one reuses them)."""
    adapter = build_adapter(name)
    answer = adapter.tokenize_answer(ANSWER)
    inputs = adapter.encode(make_image(WIDE), PROMPT, answer)
    with torch.no_grad(), ModelAdapter._capture(adapter, adapter.final_norm) as sliced:
        adapter.model(**inputs, use_cache=False, logits_to_keep=1)
    with torch.no_grad(), ModelAdapter._capture(adapter, adapter.final_norm) as full:
        adapter.model(**inputs, use_cache=False, logits_to_keep=0)
    assert sliced[-1].shape[1] == 1
    trace = adapter.trace(make_image(WIDE), PROMPT, answer)
    assert torch.allclose(trace.hidden, full[-1][0].float(), atol=1e-5)
    layers = adapter.model.model.language_model.layers
    assert adapter.model.config.get_text_config().num_kv_shared_layers == 1 and adapter.last_layer is layers[-2]
