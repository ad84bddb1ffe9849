"""Gemma 3n's decoder carries four AltUp streams per token, stacked *before* the batch: its layers take states of
(streams, batch, tokens, d), which it averages only before the final norm.  Read as (batch, tokens, d), the states
entering the last layer are not one row per token; the gradients cover every stream of each token."""

from __future__ import annotations

import pytest
import torch
from tiny_models import ANSWER, PROMPT, WIDE, build_adapter, make_image

from mllm_explain.adapters.base import ModelAdapter


@pytest.fixture(scope="module")
def adapter():
    return build_adapter("gemma3n")


def _raw_logit(adapter, trace, shift: torch.Tensor | None = None) -> torch.Tensor:
    """The first answer token's logit before soft-capping, with `shift` (streams, N, d) added to the vision tokens'
    states entering the last layer."""
    final: list[torch.Tensor] = []

    def pre_hook(_module, args, kwargs):
        if shift is None:
            return None
        hidden = args[0].clone()
        hidden[:, 0, trace.vision_positions] += shift
        return (hidden, *args[1:]), kwargs

    handles = [adapter.last_layer.register_forward_pre_hook(pre_hook, with_kwargs=True),
               adapter.final_norm.register_forward_hook(lambda _m, _a, output: final.append(output))]
    try:
        with torch.no_grad():
            adapter.model(**trace.inputs, use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    position = trace.answer_positions[0] - 1
    return final[-1][0, position] @ adapter.unembedding[trace.answer_ids[0]]


def test_gradients_cover_each_tokens_altup_streams(adapter):
    """A small step along the first answer token's gradient, put back into the streams where the adapter read it,
    changes that token's logit by the step times the gradient's norm: the (N, streams * d) rows are each token's
    streams."""
    trace = adapter.trace(make_image(WIDE), PROMPT, adapter.tokenize_answer(ANSWER), gradients=True)
    grads, states = adapter.last_layer_gradients(trace)
    config = adapter.model.config.text_config
    streams, n = config.altup_num_inputs, len(trace.vision_positions)
    assert grads.shape[1:] == states.shape == (n, streams * config.hidden_size)
    gradient = grads[0]
    step = 1e-2 / gradient.norm()
    shift = (step * gradient).reshape(n, streams, config.hidden_size).transpose(0, 1)
    change = _raw_logit(adapter, trace, shift) - _raw_logit(adapter, trace)
    assert torch.isclose(change, step * gradient.norm() ** 2, rtol=0.05)
    swapped = (step * gradient).reshape(streams, n, config.hidden_size)  # the streams read as the outer axis
    assert not torch.isclose(_raw_logit(adapter, trace, swapped) - _raw_logit(adapter, trace), change, rtol=0.05)


def test_the_one_row_per_token_reading_fails(adapter, monkeypatch):
    """The base's reading of the states entering the last layer, the batch's one row, takes the first stream's
    (1, L, d) for a token axis: the vision positions index past it."""
    trace = adapter.trace(make_image(WIDE), PROMPT, adapter.tokenize_answer(ANSWER), gradients=True)
    monkeypatch.setattr(adapter, "token_states", lambda entering: ModelAdapter.token_states(adapter, entering))
    with pytest.raises(IndexError):
        adapter.last_layer_gradients(trace)
