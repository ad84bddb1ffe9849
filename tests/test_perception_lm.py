"""Perception LM's tiles as its processor cuts them: the thumbnail comes first, even before a lone tile, and a small
image is stretched onto the largest canvas of tiles that holds it rather than onto one tile.  Read with the overview
last (InternVL's order), the layout check fails."""

from __future__ import annotations

import pytest
from layout import layout_score, token_change
from test_layout import sharp
from tiny_models import ANSWER, PROMPT, WIDE, build_adapter, make_image

from mllm_explain.views import View


@pytest.fixture(scope="module")
def adapter():
    return build_adapter("perception_lm", sharp=True)


def test_the_thumbnail_comes_first_and_the_overview_last_reading_fails(adapter):
    views, change = token_change(adapter, make_image(WIDE), PROMPT, adapter.tokenize_answer(ANSWER))
    assert sharp(layout_score(views, change))
    overview, *tiles = views
    assert overview.kind == "overview" and len(tiles) == 6
    # the overview's tokens read as the last tile's and every tile's as the one before it
    positions = [view.positions for view in views]
    shifted = [View(p, view.grid, kind=view.kind, image_box=view.image_box)
               for p, view in zip(positions[1:] + positions[:1], views)]
    assert not sharp(layout_score(shifted, change))


def test_a_small_image_takes_the_largest_canvas_that_holds_it(adapter):
    """60x45 px fits one 64 px tile, yet the processor enlarges it onto 2x3 tiles (the 6-tile canvas that enlarges it
    most); the views follow."""
    image = make_image((60, 45))
    assert adapter.tiles(image.size) == (2, 3)
    trace = adapter.trace(image, PROMPT, adapter.tokenize_answer(ANSWER))
    assert [view.kind for view in trace.views] == ["overview"] + ["tile"] * 6


def test_a_lone_tile_still_follows_the_thumbnail(adapter, monkeypatch):
    """With one tile allowed, the processor still writes the thumbnail and then the tile: two views of the whole image
    (Ovis2 writes one)."""
    monkeypatch.setattr(adapter.processor.image_processor, "max_num_tiles", 1)
    image = make_image(WIDE)
    assert adapter.encode(image, PROMPT)["pixel_values"].shape[1] == 2
    trace = adapter.trace(image, PROMPT, adapter.tokenize_answer(ANSWER))
    assert [(view.kind, view.image_box) for view in trace.views] == [("overview", (0.0, 0.0, 1.0, 1.0)),
                                                                    ("tile", (0.0, 0.0, 1.0, 1.0))]

