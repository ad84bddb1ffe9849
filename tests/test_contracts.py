"""Contract tests generated from the registries: every method on every adapter family gives one
finite map per answer token on the vision grid, relevances over the context, and leaves no hooks."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import FAMILIES, PROMPT, WIDE, build_adapter, foreign_hooks, make_image

from mllm_explain import explain, list_methods
from mllm_explain.maps import composed_size

ANSWER = " a red square"


@pytest.fixture(scope="module", params=list(FAMILIES))
def adapter(request):
    return build_adapter(request.param)


@pytest.mark.parametrize("method", list_methods())
def test_method_contract(adapter, method):
    image = make_image(WIDE)
    result = explain(adapter, image, PROMPT, answer=ANSWER, method=method, scales=(1.0, 0.5))
    n_tokens = len(adapter.tokenize_answer(ANSWER))
    trace = adapter.trace(image, PROMPT, adapter.tokenize_answer(ANSWER))
    assert result.grid_maps.shape == (n_tokens, *composed_size(trace.views))
    assert result.views == [view.describe() for view in trace.views]
    if result.view_maps is not None:
        assert [m.shape for m in result.view_maps] == [(n_tokens, *view.grid) for view in trace.views]
    assert result.image_maps.shape == (n_tokens, image.height, image.width)
    assert np.isfinite(result.grid_maps).all() and np.isfinite(result.image_maps).all()
    assert result.image_maps.min() >= 0 and result.image_maps.max() <= 1
    assert result.relevance.shape == (n_tokens, len(result.context_tokens))
    assert len(result.candidates) == n_tokens
    assert not foreign_hooks(adapter.model)
