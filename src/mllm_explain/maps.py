"""Resampling token maps between grids and onto the image, and composing a model's views into one map
over the image (shared by methods and reports)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from mllm_explain.views import FULL_BOX, Box, View

COMPOSITIONS = ("tiles", "mean", "max", "overview")


def crop_resize(maps: Tensor, box: Box, size: tuple[int, int]) -> Tensor:
    """Bilinearly sample the `box` region of (T, gh, gw) maps onto a (T, *size) grid.

    With the full box this is plain bilinear resizing (pixel centres, align_corners=False), and
    resizing to the same grid returns the maps unchanged.
    """
    if box == FULL_BOX:  # plain resize: the same samples without building a sampling grid per map
        return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    top, left, bottom, right = box
    height, width = size
    ys = top + (bottom - top) * (torch.arange(height, dtype=maps.dtype) + 0.5) / height
    xs = left + (right - left) * (torch.arange(width, dtype=maps.dtype) + 0.5) / width
    grid = torch.stack(torch.meshgrid(xs * 2 - 1, ys * 2 - 1, indexing="xy"), dim=-1)  # (h, w, 2) as (x, y)
    grid = grid[None].expand(maps.shape[0], -1, -1, -1)
    return F.grid_sample(maps[:, None], grid, mode="bilinear", padding_mode="border", align_corners=False)[:, 0]


def box_grid(grid: tuple[int, int], box: Box) -> tuple[int, int]:
    """How many grid cells the `box` region spans (at least one each way)."""
    top, left, bottom, right = box
    return max(1, round(grid[0] * (bottom - top))), max(1, round(grid[1] * (right - left)))


def composed_size(views: Sequence[View]) -> tuple[int, int]:
    """Cells each way of the map composed from `views`: the finest view's cells per image height and width
    (a single view: the cells its `grid_box` spans)."""
    rows = max(box_grid(v.grid, v.grid_box)[0] / (v.image_box[2] - v.image_box[0]) for v in views)
    cols = max(box_grid(v.grid, v.grid_box)[1] / (v.image_box[3] - v.image_box[1]) for v in views)
    return max(1, round(rows)), max(1, round(cols))


def compose(view_maps: Sequence[Tensor], views: Sequence[View], size: tuple[int, int],
            rule: str = "tiles") -> Tensor:
    """One (T, *size) map over the whole image from each view's (T, gh, gw) maps.

    Each view's image part (`grid_box`) is resampled onto its `image_box` of the image; views of one
    level (the tiles; the overviews) that overlap are averaged.  The levels then combine by `rule`: one
    level only ("tiles", the default: the detailed views; "overview": the overviews; the other level fills
    cells the chosen one does not cover), the "mean" of the levels or their "max".  The default is the
    rule that kept a change of the image where it happened best on the tiled test models
    (scripts/view_composition.py, docs/RESULTS.md §8).  A single view is its image part resampled to
    `size`, exactly as before views existed.
    """
    if len(views) == 1 and views[0].image_box == FULL_BOX:
        return crop_resize(view_maps[0], views[0].grid_box, size)
    height, width = size
    levels: dict[str, tuple[Tensor, Tensor]] = {}
    for maps, view in zip(view_maps, views):
        top, left, bottom, right = view.image_box
        r0, c0 = min(round(top * height), height - 1), min(round(left * width), width - 1)
        r1, c1 = max(r0 + 1, round(bottom * height)), max(c0 + 1, round(right * width))
        level = "overview" if view.kind == "overview" else "tiles"
        total, count = levels.setdefault(level, (maps.new_zeros(len(maps), height, width), maps.new_zeros(size)))
        total[:, r0:r1, c0:c1] += crop_resize(maps, view.grid_box, (r1 - r0, c1 - c0))
        count[r0:r1, c0:c1] += 1
    means = {level: (total / count.clamp_min(1), count > 0) for level, (total, count) in levels.items()}
    if rule in means and len(means) > 1:  # one level, the other where it shows nothing
        chosen, covered = means[rule]
        other = next(value for level, value in means.items() if level != rule)[0]
        return torch.where(covered, chosen, other)
    stacked = torch.stack([value for value, _ in means.values()])
    covered = torch.stack([mask for _, mask in means.values()]).to(stacked.dtype)[:, None]
    if rule == "max":
        return (stacked * covered).max(0).values
    return (stacked * covered).sum(0) / covered.sum(0).clamp_min(1)
