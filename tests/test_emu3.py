"""Emu3: the image-token span is the grid's rows, each ended by an end-of-line token that the model writes *into* the
span (H * (W + 1) placeholders after a "H*W" header), so the views skip one slot per row; reading the span as a plain
H x W grid puts every row after the first one code further left than the model does."""

from __future__ import annotations

import pytest
import torch
from test_layout import embedded_inputs
from tiny_models import FAMILIES, PROMPT, WIDE, build_adapter, make_image


@pytest.fixture(scope="module")
def adapter():
    return build_adapter("emu3")


def test_the_span_is_a_header_then_rows_each_ended_by_the_end_of_line_token(adapter):
    inputs = adapter.encode(make_image(WIDE), PROMPT)
    (view,) = adapter.vision_views(inputs, make_image(WIDE), (0.0, 0.0, 1.0, 1.0))
    rows, columns = view.grid
    span = adapter.image_token_positions(inputs)
    assert len(span) == rows * (columns + 1)
    tokens = adapter.tokenizer.convert_ids_to_tokens(inputs["input_ids"][0].tolist())
    start = tokens.index("<|image start|>")
    assert "".join(tokens[start + 1:int(span[0])]) == f"{rows}*{columns}<|image token|>"
    slots = sorted(set(span.tolist()) - set(view.positions.tolist()))
    assert slots == [int(span[r * (columns + 1) + columns]) for r in range(rows)]
    eol = adapter.model.model.vocabulary_mapping.eol_token_id
    table = adapter.model.get_input_embeddings()
    assert torch.equal(embedded_inputs(adapter, inputs)[slots], table(torch.tensor([eol] * rows)))


def test_the_span_read_as_a_plain_grid_misplaces_the_codes(adapter):
    """The span's first rows x columns tokens, as a grid without row-end slots reads them, hold other codes (and the
    end-of-line tokens) than the cells the views say."""
    inputs = adapter.encode(make_image(WIDE), PROMPT)
    (view,) = adapter.vision_views(inputs, make_image(WIDE), (0.0, 0.0, 1.0, 1.0))
    (grid,) = FAMILIES["emu3"].codes(adapter.model, inputs)
    embeds, table = embedded_inputs(adapter, inputs), adapter.model.get_input_embeddings()
    assert torch.equal(embeds[view.positions], table(grid.flatten()))
    plain = adapter.image_token_positions(inputs)[:grid.numel()]
    assert not torch.equal(embeds[plain], table(grid.flatten()))


def test_an_enlarged_scale_lifts_the_pixel_cap_for_that_call_only(adapter):
    """The slow image processor ignores a `size` keyword: the adapter lifts its `max_pixels` attribute for the call
    (2x WIDE is past the tiny processor's cap, yet fed whole) and puts it back."""
    processor = adapter.processor.image_processor
    cap = processor.max_pixels
    scaled, _ = adapter.scaled_image(make_image(WIDE), 2.0)
    assert scaled.width * scaled.height > cap
    inputs = adapter.encode(scaled, PROMPT, scale=2.0)
    assert inputs["image_sizes"][0].tolist() == [scaled.height, scaled.width]
    assert processor.max_pixels == cap
    assert processor(images=[scaled], return_tensors="pt")["image_sizes"][0].prod() <= cap  # as shipped: shrunk
