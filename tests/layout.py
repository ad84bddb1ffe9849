"""The layout check of a family's views: change one region of the image and see where the vision tokens change.

A token's change is the norm of the difference of its final-norm state between the two images.  In every view
that shows the region, the cells that change most must lie in the region (where the view says it is); views
that do not show it must change less.  A misplaced, transposed or swapped view puts its changed cells elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from PIL import Image, ImageDraw
from torch import Tensor

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.video import Video
from mllm_explain.views import View

REGION = (0.05, 0.05, 0.35, 0.4)  # (top, left, bottom, right) of the image: in a corner, off the diagonal


@dataclass
class LayoutScore:
    inside: float  # over the views that show the region: the least share of their top-changed cells near it
    contrast: float  # mean change of the region's cells / mean change of the other cells (views that show it)
    views_shown: int  # views that show the region


def perturbed(image: Image.Image, region: tuple[float, float, float, float] = REGION) -> Image.Image:
    """`image` with `region` painted over in a colour no random pixel is near on average."""
    top, left, bottom, right = region
    out = image.copy()
    ImageDraw.Draw(out).rectangle([round(left * image.width), round(top * image.height),
                                   round(right * image.width) - 1, round(bottom * image.height) - 1],
                                  fill=(255, 255, 255))
    return out


def token_change(adapter: ModelAdapter, image: Image.Image, prompt: str, answer_ids: list[int],
                 region: tuple[float, float, float, float] = REGION, scale: float = 1.0) -> tuple[list[View], Tensor]:
    """The views of `image` at `scale` and each position's change (L,) when `region` is painted over."""
    a = adapter.trace(image, prompt, answer_ids, scale=scale)
    b = adapter.trace(perturbed(image, region), prompt, answer_ids, scale=scale)
    assert [v.describe() for v in a.views] == [v.describe() for v in b.views]
    assert torch.equal(a.vision_positions, b.vision_positions)
    return a.views, (a.hidden - b.hidden).norm(dim=-1)


def image_change(adapter: ModelAdapter, images: list[Image.Image], painted: int, prompt: str, answer_ids: list[int],
                 region: tuple[float, float, float, float] = REGION) -> tuple[list[View], Tensor]:
    """The views of one prompt's `images` and each position's change (L,) when `region` of image `painted` is painted
    over."""
    a = adapter.trace(images, prompt, answer_ids)
    b = adapter.trace([perturbed(image, region) if k == painted else image for k, image in enumerate(images)],
                      prompt, answer_ids)
    assert [v.describe() for v in a.views] == [v.describe() for v in b.views]
    return a.views, (a.hidden - b.hidden).norm(dim=-1)


def frames_change(adapter: ModelAdapter, video: Video, painted: int, prompt: str, answer_ids: list[int],
                  region: tuple[float, float, float, float] = REGION) -> tuple[list[View], Tensor]:
    """The views of `video` and each position's change (L,) when `region` is painted over in the frames of the
    view whose `image_index` is `painted` (a group of frames the model merges)."""
    a = adapter.trace(video, prompt, answer_ids)
    first, last = next(view.frames for view in a.views if view.image_index == painted)
    frames = [perturbed(frame, region) if first <= k <= last else frame for k, frame in enumerate(video.frames)]
    b = adapter.trace(replace(video, frames=frames), prompt, answer_ids)
    assert [v.describe() for v in a.views] == [v.describe() for v in b.views]
    return a.views, (a.hidden - b.hidden).norm(dim=-1)


def cells_inside(view: View, region: tuple[float, float, float, float], grow: float = 1.0) -> Tensor:
    """(gh, gw) bool: the view's cells whose centre shows a point of `region` grown by `grow` cells (resizing
    blends pixels across patch borders); cells that show none of the image (padding outside `grid_box`) are False,
    and a cell that shows it in part counts where its shown part's centre is."""
    gh, gw = view.grid
    g_top, g_left, g_bottom, g_right = view.grid_box
    i_top, i_left, i_bottom, i_right = view.image_box
    ys, shown_y = _shown_centres(gh, g_top, g_bottom)  # fractions of the shown part
    xs, shown_x = _shown_centres(gw, g_left, g_right)
    shown = shown_y[:, None] & shown_x[None, :]
    ys, xs = i_top + ys * (i_bottom - i_top), i_left + xs * (i_right - i_left)  # fraction of the image
    cell_h, cell_w = (i_bottom - i_top) / ((g_bottom - g_top) * gh), (i_right - i_left) / ((g_right - g_left) * gw)
    top, left, bottom, right = region
    inside_y = (ys >= top - grow * cell_h) & (ys <= bottom + grow * cell_h)
    inside_x = (xs >= left - grow * cell_w) & (xs <= right + grow * cell_w)
    return shown & inside_y[:, None] & inside_x[None, :]


def _shown_centres(cells: int, start: float, stop: float) -> tuple[Tensor, Tensor]:
    """Along one axis of `cells` cells of which [start, stop] shows the image: the centre of each cell's shown
    part as a fraction of the shown part, and whether it shows any."""
    low, high = (torch.arange(cells) / cells).clamp(start, stop), ((torch.arange(cells) + 1) / cells).clamp(start, stop)
    return ((low + high) / 2 - start) / (stop - start), high > low


def layout_score(views: list[View], change: Tensor, region: tuple[float, float, float, float] = REGION,
                 painted: int = 0) -> LayoutScore:
    """How well the views' claimed geometry explains where `change` (L,: per position) is, `region` painted in image
    `painted` of the prompt: the views of its other images show none of it."""
    shares, inside_values, outside_values, shown_max, hidden_max = [], [], [], [], []
    for view in views:
        values = change[view.positions].reshape(view.grid)
        inside, core = cells_inside(view, region), cells_inside(view, region, grow=0.0)
        if view.image_index != painted:
            inside, core = torch.zeros_like(inside), torch.zeros_like(core)
        if not core.any():
            if not inside.any():
                hidden_max.append(float(values.max()))
            continue
        k = int(core.sum())  # as many cells as lie in the region itself must change most, all near it
        top = values.flatten().topk(k).indices
        shares.append(float(inside.flatten()[top].float().mean()))
        inside_values.append(values[inside])
        outside_values.append(values[~inside])
        shown_max.append(float(values.max()))
    outside = torch.cat(outside_values) if outside_values else torch.zeros(1)
    contrast = float(torch.cat(inside_values).mean() / outside.mean().clamp_min(1e-12)) if inside_values else 0.0
    if hidden_max and shown_max and max(hidden_max) >= min(shown_max):
        contrast = 0.0  # a view that does not show the region changed as much as one that does
    return LayoutScore(inside=min(shares, default=0.0), contrast=contrast, views_shown=len(shares))


def flipped(views: list[View]) -> list[View]:
    """The same views with each grid read upside down and the tiles' boxes in reverse order: the layout
    mistakes (a transposed or mirrored grid, swapped tiles) the check must catch."""
    boxes = [v.image_box for v in views]
    tiles = [i for i, v in enumerate(views) if v.kind == "tile"]
    for i, j in zip(tiles, reversed(tiles)):
        boxes[i] = views[j].image_box
    return [replace(v, positions=v.positions.reshape(v.grid).flip(0).flatten(), image_box=box)
            for v, box in zip(views, boxes)]


def swapped_images(views: list[View]) -> list[View]:
    """The same views with the prompt's images in reverse order: the mistake of placing each image's tokens in
    another image's views."""
    last = max(v.image_index for v in views)
    return [replace(v, image_index=last - v.image_index) for v in views]
