"""Layout test per family: paint over one region of the image and check that the vision tokens that change most
are the ones the adapter's views place in that region, in every view that shows it (tests/layout.py), at two
aspect ratios and at a size that makes several tiles, and at an enlarged scale where the model takes one; and that a
deliberately wrong layout fails the same check."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import pytest
import torch
from layout import flipped, frames_change, image_change, layout_score, perturbed, swapped_images, token_change
from tiny_models import ANSWER, FAMILIES, PROMPT, TALL, WIDE, build_adapter, make_image
from torch import Tensor

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.video import Video

SHARP_SHARE, SHARP_CONTRAST = 0.8, 2.0


@cache
def sharp_adapter(name: str) -> ModelAdapter:
    return build_adapter(name, sharp=True)


def sharp(score) -> bool:
    return score.inside >= SHARP_SHARE and score.contrast >= SHARP_CONTRAST


PAINTED = [name for name, family in FAMILIES.items() if family.codes is None]
CODED = [name for name, family in FAMILIES.items() if family.codes is not None]


@pytest.mark.parametrize("size", ["wide", "tall", "large"])
@pytest.mark.parametrize("name", PAINTED)
def test_changed_tokens_lie_where_the_views_say(name, size):
    adapter = sharp_adapter(name)
    pixels = {"wide": WIDE, "tall": TALL, "large": FAMILIES[name].large}[size]
    views, change = token_change(adapter, make_image(pixels), PROMPT, adapter.tokenize_answer(ANSWER))
    score = layout_score(views, change)
    assert score.views_shown >= 1 and sharp(score), score
    wrong = layout_score(flipped(views), change)
    assert not sharp(wrong), wrong


@pytest.mark.parametrize("name", [name for name in PAINTED if not isinstance(FAMILIES[name].enlarged[1.5], str)])
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


SEVERAL = [name for name in PAINTED if FAMILIES[name].adapter_cls.several_images]


@pytest.mark.parametrize("painted", [0, 1])
@pytest.mark.parametrize("name", SEVERAL)
def test_changed_tokens_lie_in_the_painted_images_views(name, painted):
    """Two images in one prompt (wide, then tall): painting a region of one changes most the tokens its own views
    place there, and the other image's tokens less; the same views with the images' order swapped fail."""
    adapter = sharp_adapter(name)
    images = [make_image(WIDE), make_image(TALL, seed=1)]
    views, change = image_change(adapter, images, painted, PROMPT, adapter.tokenize_answer(ANSWER))
    assert sorted({v.image_index for v in views}) == [0, 1]
    score = layout_score(views, change, painted=painted)
    assert score.views_shown >= 1 and sharp(score), score
    wrong = layout_score(swapped_images(views), change, painted=painted)
    assert not sharp(wrong), wrong


VIDEO = [name for name in PAINTED if name in FAMILIES[name].adapter_cls.video_model_types]


@cache
def clip(size: tuple[int, int] = WIDE) -> Video:
    """Four frames of noise (two groups of two for Qwen's temporal patch, four views where each frame is one), each its
    own."""
    return Video.from_frames([make_image(size, seed=k) for k in range(4)], fps=2.0)


@pytest.mark.parametrize("painted", [0, 1])
@pytest.mark.parametrize("name", VIDEO)
def test_changed_tokens_lie_in_the_painted_frames_views(name, painted):
    """A video: painting a region in the frames one group merges changes most the tokens that group's view places
    there, and the other groups' less (a group: the frames its view merges, `video_frames` of the family's); the
    groups' order swapped fails, and so do the grids read upside down."""
    adapter = sharp_adapter(name)
    views, change = frames_change(adapter, clip(), painted, PROMPT, adapter.tokenize_answer(ANSWER))
    family = FAMILIES[name]
    merged = family.video_frames  # frames per view: 4 frames make 4 // merged views
    assert [(v.kind, v.image_index, v.frames) for v in views] == \
        [("frames", g, (g * merged, g * merged + merged - 1)) for g in range(4 // merged)]
    assert family.video_grid is None or {v.grid for v in views} == {family.video_grid}
    score = layout_score(views, change, painted=painted)
    assert score.views_shown >= 1 and sharp(score), score
    wrong = layout_score(swapped_images(views), change, painted=painted)
    assert not sharp(wrong), wrong
    upside_down = layout_score(flipped(views), change, painted=painted)
    assert not sharp(upside_down), upside_down


EDGE = 0.06  # strips this wide (fraction of the frame) by a view's box edges; resampling reaches less far


@pytest.mark.parametrize("name", VIDEO)
def test_a_frames_view_shows_the_part_of_the_frame_fed(name):
    """A video's views' `image_box` is the part of each frame the video processor feeds the model (all of it, or the
    centre a crop keeps), to within `EDGE`: paint inside each of its edges changes the pixels fed, and where the frame
    extends past an edge (cropped away), paint `EDGE` beyond it changes none."""
    adapter, video = build_adapter(name), clip()

    def fed(frames: list) -> Tensor:
        inputs = adapter.encode([replace(video, frames=frames)], PROMPT)
        return torch.cat([value.flatten().float() for key, value in inputs.items() if key.startswith("pixel_values")])

    boxes = {view.image_box for view in adapter.video_views(adapter.encode([video], PROMPT), video)}
    assert len(boxes) == 1
    top, left, bottom, right = box = boxes.pop()
    strips = {"top": ((top - 2 * EDGE, 0.0, top - EDGE, 1.0), (top, 0.0, top + EDGE, 1.0)),
              "bottom": ((bottom + EDGE, 0.0, bottom + 2 * EDGE, 1.0), (bottom - EDGE, 0.0, bottom, 1.0)),
              "left": ((0.0, left - 2 * EDGE, 1.0, left - EDGE), (0.0, left, 1.0, left + EDGE)),
              "right": ((0.0, right + EDGE, 1.0, right + 2 * EDGE), (0.0, right - EDGE, 1.0, right))}
    cropped = {"top": top >= 2 * EDGE, "left": left >= 2 * EDGE, "bottom": bottom <= 1 - 2 * EDGE,
               "right": right <= 1 - 2 * EDGE}
    plain = fed(video.frames)
    for side, (beyond, inside) in strips.items():
        assert not torch.equal(fed([perturbed(frame, inside) for frame in video.frames]), plain), (side, box)
        if cropped[side]:
            assert torch.equal(fed([perturbed(frame, beyond) for frame in video.frames]), plain), (side, box)

def embedded_inputs(adapter: ModelAdapter, inputs) -> Tensor:
    """(L, d) the embeddings the language model reads for `inputs` (image codes embedded in place)."""
    seen = []
    language = adapter.model.get_decoder()  # Emu3's is `text_model`
    handle = language.register_forward_pre_hook(lambda _, args, kwargs: seen.append(kwargs["inputs_embeds"]),
                                                with_kwargs=True)
    try:
        with torch.no_grad():
            adapter.model(**inputs, use_cache=False, logits_to_keep=1)
    finally:
        handle.remove()
    return seen[0][0]


@pytest.mark.parametrize("scale", [1.0, 1.5])
@pytest.mark.parametrize("size", ["wide", "tall", "large"])
@pytest.mark.parametrize("name", CODED)
def test_each_code_sits_where_the_views_say(name, size, scale):
    """Class E: the language model reads the embedding of the VQ code of cell (r, c) at the position the views give
    (r, c); the views transposed or flipped do not match."""
    adapter = build_adapter(name)
    image = make_image({"wide": WIDE, "tall": TALL, "large": FAMILIES[name].large}[size])
    scaled, box = adapter.scaled_image(image, scale)
    inputs = adapter.encode(scaled, PROMPT, scale=scale)
    views = adapter.vision_views(inputs, scaled, box)
    embeds, table = embedded_inputs(adapter, inputs), adapter.model.get_input_embeddings()
    grids = FAMILIES[name].codes(adapter.model, inputs)
    assert [tuple(grid.shape) for grid in grids] == [view.grid for view in views]
    for view, grid in zip(views, grids):
        assert torch.equal(embeds[view.positions], table(grid.flatten()))
        assert not torch.equal(embeds[view.positions], table(grid.flip(0).flatten()))
        if grid.shape[0] == grid.shape[1]:
            assert not torch.equal(embeds[view.positions], table(grid.T.flatten()))
