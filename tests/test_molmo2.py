"""Molmo 2's own facts (issue 29): where its pooling pads the grids, and its batched inputs.  Views, layout locality,
every method and the CLI from a saved folder run on it through the parametrised tests over `tiny_models.FAMILIES`."""

from __future__ import annotations

import pytest
import torch
from tiny_models import ANSWER, PROMPT, TALL, WIDE, build_adapter, make_image

from mllm_explain.adapters.base import ModelAdapter


def _filled(valid: torch.Tensor) -> tuple[float, float]:
    """(from, to): the fractions of a (cells, window) axis of pooling windows that hold patches."""
    shown = valid.flatten().nonzero().flatten()
    return int(shown[0]) / valid.numel(), (int(shown[-1]) + 1) / valid.numel()


@pytest.mark.parametrize("size", [WIDE, TALL, (60, 45), (300, 220)])
def test_molmo2_grid_boxes_are_the_pooling_windows_the_patches_fill(size):
    """Each view's `grid_box` leaves out the pooling windows' padding exactly as the processor's
    `image_token_pooling` (-1 for a padded slot) has it, token by token in the views' order."""
    adapter = build_adapter("molmo2")
    image = make_image(size)
    inputs = adapter.encode(image, PROMPT)
    views = adapter.vision_views(inputs, image, (0.0, 0.0, 1.0, 1.0))
    pooling_h, pooling_w = adapter.processor.image_processor.pooling_size
    valid = inputs["image_token_pooling"] >= 0
    assert len(valid) == sum(len(view.positions) for view in views)
    start = 0
    for view in views:
        (gh, gw), count = view.grid, len(view.positions)
        windows = valid[start:start + count].reshape(gh, gw, pooling_h, pooling_w)
        start += count
        top, bottom = _filled(windows.any(3).any(1))
        left, right = _filled(windows.any(2).any(0))
        assert view.grid_box == pytest.approx((top, left, bottom, right))
    assert views[0].grid_box == pytest.approx((0.0, 0.0, 13 / 14, 13 / 14))  # 13 patches in 7 windows of 2


def test_molmo2_batched_images_pool_their_own_patches():
    """Several images in one forward (`answer_probabilities`' batches) give each row its own image's states: the
    processor numbers every image's patches from 0, so the base `encode`'s rows would all pool the first image's."""
    adapter = build_adapter("molmo2", sharp=True)  # the image's features weigh on its tokens' states
    answer = adapter.tokenize_answer(ANSWER)
    images = [make_image(WIDE, seed) for seed in (0, 1)]

    def logits(inputs) -> torch.Tensor:
        with torch.no_grad():
            return adapter.model(**inputs, use_cache=False).logits.float()

    alone = torch.cat([logits(adapter.encode(image, PROMPT, answer)) for image in images])
    assert not torch.allclose(alone[0], alone[1], atol=1e-2)
    assert torch.allclose(logits(adapter.encode(images, PROMPT, answer)), alone, atol=1e-4)
    unshifted = logits(ModelAdapter.encode(adapter, images, PROMPT, answer))
    assert torch.allclose(unshifted[1], alone[0], atol=1e-4)  # without the offsets the second row reads the first image
