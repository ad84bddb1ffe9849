"""Fuyu's image tokens: rows of raw 30 px patches, each row ended by a `|NEWLINE|` marker in no view, over the image
padded bottom/right to whole patches.  The views skip the markers (the span read as a plain grid fails the layout
check) and show the image in the grid's top-left part, where the processor's padding begins."""

from __future__ import annotations

import pytest
import torch
from layout import layout_score, token_change
from test_layout import sharp
from tiny_models import ANSWER, PROMPT, WIDE, build_adapter, make_image
from transformers.models.fuyu.processing_fuyu import BEGINNING_OF_ANSWER_STRING

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.errors import UserError
from mllm_explain.views import View

PATCH = 30
PADDING = (1 / 255 - 0.5) / 0.5  # the processor pads with 1 (of 255), then rescales and normalises


@pytest.fixture(scope="module")
def adapter() -> ModelAdapter:
    return build_adapter("fuyu")


def test_rows_of_patches_each_ended_by_a_newline_then_bos_the_prompt_and_the_beginning_of_answer(adapter):
    image = make_image(WIDE)
    inputs = adapter.encode(image, PROMPT)
    (view,) = adapter.vision_views(inputs, *adapter.scaled_image(image, 1.0))
    rows, columns = view.grid
    assert (rows, columns) == (5, 6)  # ceil(126 / 30) rows of ceil(168 / 30)
    ids, tokenizer = inputs["input_ids"][0].tolist(), adapter.tokenizer
    row = [adapter.image_token_id] * columns + [adapter.processor.image_newline_id]
    assert ids[:rows * (columns + 1)] == row * rows
    assert view.positions.tolist() == [r * (columns + 1) + c for r in range(rows) for c in range(columns)]
    bos, *prompt, answer_start = ids[rows * (columns + 1):]
    assert bos == tokenizer.bos_token_id and prompt == tokenizer(PROMPT, add_special_tokens=False)["input_ids"]
    assert answer_start == tokenizer.convert_tokens_to_ids(BEGINNING_OF_ANSWER_STRING)


@pytest.mark.parametrize(("size", "shown"), [(WIDE, (126, 168)), ((300, 220), (176, 240)), ((20, 20), (20, 20))])
def test_the_grid_shows_the_image_in_its_top_left_part_and_padding_past_it(adapter, size, shown):
    """The image as given (shrunk only past the bound, 240x180 here: 300x220 to 240x176; one patch is fine), padded
    bottom/right to whole patches: past the views' `grid_box` every pixel of the patches is padding."""
    image = make_image(size)
    scaled, box = adapter.scaled_image(image, 1.0)
    inputs = adapter.encode(scaled, PROMPT)
    (view,) = adapter.vision_views(inputs, scaled, box)
    rows, columns = view.grid
    assert view.grid_box == (0.0, 0.0, shown[0] / (rows * PATCH), shown[1] / (columns * PATCH))
    assert (rows - 1) * PATCH < shown[0] <= rows * PATCH and (columns - 1) * PATCH < shown[1] <= columns * PATCH
    patches = inputs["pixel_values"].reshape(rows, columns, PATCH, PATCH, 3)  # each patch's pixels, row-major
    pixels = patches.permute(4, 0, 2, 1, 3).reshape(3, rows * PATCH, columns * PATCH)
    padding = torch.full_like(pixels, PADDING)
    assert torch.allclose(pixels[:, shown[0]:], padding[:, shown[0]:])
    assert torch.allclose(pixels[:, :, shown[1]:], padding[:, :, shown[1]:])
    assert (pixels[:, :shown[0], :shown[1]] - PADDING).abs().gt(1e-6).float().mean() > 0.98  # the image


def test_the_span_read_without_its_newlines_fails_the_layout_check():
    """The first rows x columns positions from the first `|SPEAKER|`, as a grid with no markers would read them,
    shift every row by one more cell than the last: in the bottom right the changed tokens lie elsewhere."""
    adapter = build_adapter("fuyu", sharp=True)
    image, region = make_image(WIDE), (0.6, 0.55, 0.95, 0.95)
    views, change = token_change(adapter, image, PROMPT, adapter.tokenize_answer(ANSWER), region)
    assert sharp(layout_score(views, change, region))
    (view,) = views
    start = int(view.positions[0])
    plain = View(torch.arange(start, start + len(view.positions)), view.grid, grid_box=view.grid_box)
    assert not sharp(layout_score([plain], change, region))


@pytest.mark.parametrize("marker", ["|SPEAKER|", "|NEWLINE|", BEGINNING_OF_ANSWER_STRING])
def test_the_image_and_answer_markers_are_refused_in_the_prompt(adapter, marker):
    """They are plain vocabulary entries, not special tokens: in a prompt they would add an image token (which the
    model's feature count check rejects) or start the answer early."""
    with pytest.raises(UserError, match="control token"):
        adapter.encode(make_image(WIDE), f"what is {marker} here?")


def test_an_image_shrunk_to_no_row_of_pixels_is_refused_in_one_line(adapter):
    """The processor fits 3000x10 px into 240x180 as 240x0 px, and fails on it: refused before, in one line."""
    with pytest.raises(UserError, match="240x0 px") as refused:
        adapter.trace(make_image((3000, 10)), PROMPT, adapter.tokenize_answer(ANSWER))
    assert "\n" not in str(refused.value)
