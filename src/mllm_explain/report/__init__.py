"""Writing an `Explanation` to disk: maps.npz (the arrays), tokens.json (everything else), one
self-contained interactive report.html, and one overlay PNG per answer word under words/ (for slides
and papers, where the HTML cannot go).

Every file is written atomically and the folder is locked while it is written (`mllm_explain.outputs`).
Nothing here grows with the image's pixel count: maps are stored at the vision grid and drawn at a
capped size."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from mllm_explain.outputs import atomic_path, locked_folder, write_text
from mllm_explain.report.html import FILMSTRIP_SIDE, render_html
from mllm_explain.report.images import display_image, overlay, safe_name

if TYPE_CHECKING:  # annotations only: Explanation's notebook view renders through the report (no cycle)
    from mllm_explain.explanation import Explanation

__all__ = ["MAX_WORD_SIDE", "maps_arrays", "save", "write_arrays", "write_report", "write_word_images"]

MAX_WORD_SIDE = 1024  # longest side of a word PNG: the maps' detail is the vision grid's, tens of cells


def save(explanation: Explanation, out: Path) -> Path:
    """Write maps.npz, tokens.json, words/NNN_word.png and report.html under `out`; return the report's path."""
    with locked_folder(out) as out:
        write_arrays(explanation, out / "maps.npz")
        write_text(out / "tokens.json", json.dumps(explanation.to_dict(), indent=1))
        return write_report(explanation, out)


def write_arrays(explanation: Explanation, path: Path) -> None:
    """maps.npz (`maps_arrays`), written atomically."""
    with atomic_path(path) as temp:
        np.savez_compressed(temp, **maps_arrays(explanation))


def maps_arrays(explanation: Explanation) -> dict[str, np.ndarray]:
    """The arrays of maps.npz: `grid_maps` (T, gh, gw) over the `image_box` (top, left, bottom, right as fractions of
    the grid) of an image of `image_size` (width, height), and `relevance` (T, C).  To get the maps at
    the image's resolution: `mllm_explain.maps.crop_resize(torch.from_numpy(grid_maps), image_box,
    (height, width))`, as `Explanation.maps_at` does.  A model of several views (tiles, an overview) also
    gets `view_maps_I` (T, gh, gw): view I's maps before composition, described by tokens.json's `views`.  A prompt of
    several images gets `grid_maps_K` and `image_size_K` of image K (K >= 1; `grid_maps` is image 0's) and
    `image_shares` (T, images): each token's share of map mass on each image."""
    arrays = {"grid_maps": np.asarray(explanation.grid_maps, dtype=np.float32),
              "image_box": np.asarray(explanation.image_box, dtype=np.float64),
              "image_size": np.asarray(explanation.image.size, dtype=np.int64),
              "relevance": np.asarray(explanation.relevance, dtype=np.float32)}
    if len(explanation.views) > 1 and explanation.view_maps is not None:
        arrays.update({f"view_maps_{i}": np.asarray(maps, dtype=np.float32)
                       for i, maps in enumerate(explanation.view_maps)})
    if len(explanation.images) > 1:
        for k, (image, maps) in enumerate(zip(explanation.images[1:], explanation.image_grid_maps[1:]), start=1):
            arrays[f"grid_maps_{k}"] = np.asarray(maps, dtype=np.float32)
            arrays[f"image_size_{k}"] = np.asarray(image.size, dtype=np.int64)
        arrays["image_shares"] = explanation.image_shares.astype(np.float32)
    return arrays


def write_word_images(explanation: Explanation, words_dir: Path) -> list[Path]:
    """Write words/NNN_<word>.png, each word's map blended 50/50 over the image, longest side at most
    `MAX_WORD_SIDE` (several images: NNN_<word>_imageK.png, K from 1; a video: one filmstrip of its groups of frames
    per word); PNGs left over from an earlier report in the same folder are removed afterwards so the folder matches
    this answer."""
    words_dir.mkdir(parents=True, exist_ok=True)
    paths = write_filmstrips(explanation, words_dir) if explanation.frames_of(0) else \
        write_overlays(explanation, words_dir)
    for stale in set(words_dir.glob("[0-9][0-9][0-9]_*.png")) - set(paths):
        stale.unlink(missing_ok=True)
    return paths


def write_overlays(explanation: Explanation, words_dir: Path) -> list[Path]:
    """words/NNN_<word>.png per word (several images: NNN_<word>_imageK.png per word and image)."""
    paths, several = [], len(explanation.images) > 1
    for k in range(len(explanation.images)):
        one = explanation.for_image(k)
        image = display_image(one.image, MAX_WORD_SIDE)
        for index, word in enumerate(one.words):
            path = words_dir / f"{index:03d}_{safe_name(word)}{f'_image{k + 1}' if several else ''}.png"
            with atomic_path(path) as temp:
                overlay(image, one.word_map(index, (image.height, image.width))).save(temp)
            paths.append(path)
    return paths


def write_filmstrips(explanation: Explanation, words_dir: Path) -> list[Path]:
    """words/NNN_<word>.png for a video: the word's map over each group of frames, side by side in time order."""
    strips = []
    for k in range(len(explanation.images)):
        one = explanation.for_image(k)
        strips.append((one, display_image(one.image, FILMSTRIP_SIDE)))
    paths = []
    for index, word in enumerate(explanation.words):
        tiles = [overlay(frame, one.word_map(index, (frame.height, frame.width))) for one, frame in strips]
        strip = Image.new("RGB", (sum(tile.width for tile in tiles), max(tile.height for tile in tiles)), "white")
        for tile, left in zip(tiles, np.cumsum([0] + [tile.width for tile in tiles[:-1]])):
            strip.paste(tile, (int(left), 0))
        path = words_dir / f"{index:03d}_{safe_name(word)}.png"
        with atomic_path(path) as temp:
            strip.save(temp)
        paths.append(path)
    return paths


def write_report(explanation: Explanation, out: Path) -> Path:
    """Write `out/report.html` and `out/words/*.png`; return the report's path."""
    with locked_folder(out) as out:
        write_word_images(explanation, out / "words")
        report = out / "report.html"
        write_text(report, render_html(explanation))
        return report
