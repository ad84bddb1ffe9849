"""Resampling token maps between grids and onto the image (shared by methods and reports)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

Box = tuple[float, float, float, float]  # (top, left, bottom, right), fractions of the grid
FULL_BOX: Box = (0.0, 0.0, 1.0, 1.0)


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
