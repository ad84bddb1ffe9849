"""Layout test per family: paint over one region of the image and check that the vision tokens that change most
are the ones the adapter's views place in that region, in every view that shows it (tests/layout.py), at two
aspect ratios and at a size that makes several tiles, and at an enlarged scale where the model takes one; and that a
deliberately wrong layout fails the same check."""

from __future__ import annotations

from functools import cache

import pytest
from layout import flipped, layout_score, token_change
from tiny_models import ANSWER, FAMILIES, PROMPT, TALL, WIDE, build_adapter, make_image

from mllm_explain.adapters.base import ModelAdapter

SHARP_SHARE, SHARP_CONTRAST = 0.8, 2.0


@cache
def sharp_adapter(name: str) -> ModelAdapter:
    return build_adapter(name, sharp=True)


def sharp(score) -> bool:
    return score.inside >= SHARP_SHARE and score.contrast >= SHARP_CONTRAST


@pytest.mark.parametrize("size", ["wide", "tall", "large"])
@pytest.mark.parametrize("name", list(FAMILIES))
def test_changed_tokens_lie_where_the_views_say(name, size):
    adapter = sharp_adapter(name)
    pixels = {"wide": WIDE, "tall": TALL, "large": FAMILIES[name].large}[size]
    views, change = token_change(adapter, make_image(pixels), PROMPT, adapter.tokenize_answer(ANSWER))
    score = layout_score(views, change)
    assert score.views_shown >= 1 and sharp(score), score
    wrong = layout_score(flipped(views), change)
    assert not sharp(wrong), wrong


@pytest.mark.parametrize("name", [name for name, f in FAMILIES.items() if not isinstance(f.enlarged[1.5], str)])
def test_changed_tokens_lie_where_the_views_say_at_an_enlarged_scale(name):
    """At scale 1.5 (the enlarged input's own grid, tiles or interpolated encoder), on the image the family sees in
    more detail there."""
    adapter = sharp_adapter(name)
    image = make_image(FAMILIES[name].enlarge)
    views, change = token_change(adapter, image, PROMPT, adapter.tokenize_answer(ANSWER), scale=1.5)
    assert [(v.kind, v.grid) for v in views] == [(kind, grid) for kind, grid, *_ in FAMILIES[name].enlarged[1.5]]
    score = layout_score(views, change)
    assert score.views_shown >= 1 and sharp(score), score
    wrong = layout_score(flipped(views), change)
    assert not sharp(wrong), wrong
