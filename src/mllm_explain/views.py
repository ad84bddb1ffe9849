"""Where a model's vision tokens sit: `View`, one grid of them, and the `Box`es that place it on the image.
Plain facts with no dependency in the package, read by adapters (which make them), maps (which compose
them) and methods."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

Box = tuple[float, float, float, float]  # (top, left, bottom, right), fractions of the grid
FULL_BOX: Box = (0.0, 0.0, 1.0, 1.0)


def tile_box(index: int, rows: int, columns: int) -> Box:
    """The part of the image that tile `index` (row-major) of a `rows` x `columns` grid of equal tiles shows."""
    row, column = divmod(index, columns)
    return row / rows, column / columns, (row + 1) / rows, (column + 1) / columns


def frame_views(runs: Sequence[Tensor], grid: tuple[int, int], times: Sequence[float], frames_per_view: int = 1,
                image_box: Box = FULL_BOX) -> list[View]:
    """A video's views, one per run of vision tokens in order, each merging `frames_per_view` consecutive sampled
    frames (Qwen's temporal patch; 1: a view per frame), with the first and last of them and their times (`times`:
    one per sampled frame; a last view past the final frame ends at it)."""
    last = len(times) - 1
    views = []
    for index, run in enumerate(runs):
        first, end = min(index * frames_per_view, last), min((index + 1) * frames_per_view - 1, last)
        views.append(View(run, grid, image_box=image_box, kind="frames", image_index=index, frames=(first, end),
                          times=(times[first], times[end])))
    return views


@dataclass(frozen=True)
class View:
    """One grid of vision tokens: a tile, an overview (thumbnail, base image) or the one grid of a
    single-view model.

    `positions` index the full token sequence, row-major over `grid`; separator and marker tokens
    (row ends, tile markers) are in no view.  `image_box` is the part of the original image the view
    shows and `grid_box` the part of the grid that shows it (letterboxed or padded views show the image
    in part of their grid), both (top, left, bottom, right) as fractions.  A video's views are one per group of
    frames the model merges (Qwen's temporal patch: two frames), each its own `image_index`, with the frames it
    merges and their times.
    """

    positions: Tensor  # (gh * gw,)
    grid: tuple[int, int]
    image_box: Box = FULL_BOX
    grid_box: Box = FULL_BOX
    kind: str = "image"  # image (the only view) | tile | overview | frames (a video's frames, merged in time)
    image_index: int = 0  # which of the prompt's images (or a video's temporal groups of frames) the view shows
    frames: tuple[int, int] | None = None  # a video's view: the first and last sampled frame it merges
    times: tuple[float, float] | None = None  # and their times in seconds

    def __post_init__(self) -> None:
        if len(self.positions) != self.grid[0] * self.grid[1]:
            raise RuntimeError(f"{len(self.positions)} vision tokens do not fill a {self.grid[0]}x{self.grid[1]} "
                               f"{self.kind} view")

    def describe(self) -> dict:
        """The view without its positions, for tokens.json and the report."""
        described = {"kind": self.kind, "grid": list(self.grid), "image_box": list(self.image_box),
                     "grid_box": list(self.grid_box), "image_index": self.image_index}
        if self.frames is not None:
            described |= {"frames": list(self.frames), "times": list(self.times or ())}
        return described
