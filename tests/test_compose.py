"""Composing a model's views into one map over the image (`maps.compose`)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mllm_explain.maps import COMPOSITIONS, compose, composed_size, crop_resize
from mllm_explain.views import FULL_BOX, View


def views_of(rows: int, columns: int, grid: tuple[int, int], overview: bool = True) -> list[View]:
    tiles = [View(torch.arange(grid[0] * grid[1]), grid, kind="tile",
                  image_box=(r / rows, c / columns, (r + 1) / rows, (c + 1) / columns))
             for r in range(rows) for c in range(columns)]
    return [*tiles, View(torch.arange(grid[0] * grid[1]), grid, kind="overview")] if overview else tiles


@given(st.integers(1, 6), st.integers(1, 6), st.floats(0.0, 0.3), st.floats(0.7, 1.0))
@settings(max_examples=30, deadline=None)
def test_one_view_is_its_image_part_resampled(gh, gw, top, bottom):
    """The single-view path is exactly the maps' crop to the grid box, as before views: the bundled model's maps."""
    view = View(torch.arange(gh * gw), (gh, gw), grid_box=(top, 0.0, bottom, 1.0))
    maps = torch.rand(2, gh, gw, generator=torch.Generator().manual_seed(gh * 7 + gw))
    size = composed_size([view])
    for rule in COMPOSITIONS:
        assert torch.equal(compose([maps], [view], size, rule), crop_resize(maps, view.grid_box, size))


def test_tiles_land_at_their_boxes():
    """2x3 tiles each holding its index compose to a 2x3 block image of the indices, the overview ignored."""
    views = views_of(2, 3, (4, 4))
    maps = [torch.full((1, 4, 4), float(i)) for i in range(6)] + [torch.full((1, 4, 4), 100.0)]
    size = composed_size(views)
    assert size == (8, 12)
    composed = compose(maps, views, size, "tiles")[0]
    expected = torch.arange(6.0).reshape(2, 3).repeat_interleave(4, 0).repeat_interleave(4, 1)
    assert torch.equal(composed, expected)
    assert torch.allclose(compose(maps, views, size, "mean")[0], (expected + 100) / 2)
    assert torch.equal(compose(maps, views, size, "max")[0], torch.full((8, 12), 100.0))
    assert torch.equal(compose(maps, views, size, "overview")[0], torch.full((8, 12), 100.0))


def test_the_overview_fills_what_no_tile_shows():
    views = views_of(1, 2, (2, 2))[1:]  # the right tile and the overview: the left half has only the overview
    maps = [torch.ones(1, 2, 2), torch.zeros(1, 2, 2)]
    composed = compose(maps, views, (2, 4), "tiles")[0]
    assert torch.equal(composed, torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 2))


def test_overlapping_tiles_are_averaged():
    grid = (2, 2)
    views = [View(torch.arange(4), grid, image_box=(0.0, 0.0, 1.0, 0.75), kind="tile"),
             View(torch.arange(4), grid, image_box=(0.0, 0.25, 1.0, 1.0), kind="tile")]
    composed = compose([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)], views, (2, 4), "tiles")[0]
    assert composed[0].tolist() == [0.0, 0.5, 0.5, 1.0]


@pytest.mark.parametrize("rule", COMPOSITIONS)
def test_maps_in_unit_range_stay_there(rule):
    views = views_of(2, 2, (3, 3))
    maps = [torch.rand(3, 3, 3, generator=torch.Generator().manual_seed(i)) for i in range(len(views))]
    composed = compose(maps, views, composed_size(views), rule)
    assert composed.shape == (3, 6, 6) and composed.min() >= 0 and composed.max() <= 1
    assert composed_size([View(torch.arange(9), (3, 3))]) == (3, 3) and FULL_BOX == views[-1].image_box
