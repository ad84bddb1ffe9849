"""Families whose image-token span holds slots that show no part of the image (HunyuanOCR: a newline slot ending
each merged row, and a begin and an end slot; Hy4: the newline slots): the grid's cells skip them, and reading the
span as a plain grid fails the layout check that the real views pass."""

from __future__ import annotations

import pytest
from layout import layout_score, token_change
from test_layout import sharp
from tiny_models import ANSWER, PROMPT, WIDE, build_adapter, make_image

from mllm_explain.views import View


def test_hunyuan_vl_span_is_rows_of_cells_and_a_newline_between_begin_and_end():
    adapter = build_adapter("hunyuan_vl")
    trace = adapter.trace(make_image(WIDE), PROMPT, adapter.tokenize_answer(ANSWER))
    (view,) = trace.views
    rows, columns = view.grid
    span = adapter.image_token_positions(adapter.encode(make_image(WIDE), PROMPT))
    assert len(span) == rows * (columns + 1) + 2
    slots = sorted(set(span.tolist()) - set(view.positions.tolist()))
    assert slots == [int(span[0]), *(int(span[1 + r * (columns + 1) + columns]) for r in range(rows)), int(span[-1])]


@pytest.mark.parametrize("name", ["hunyuan_vl", "hy_v4_vl"])
def test_the_span_read_without_its_slots_fails_the_layout_check(name):
    """The span's first rows x columns tokens (after HunyuanOCR's begin slot), as a plain Qwen grid would read them,
    shift every row by one more cell than the last: in the bottom right the changed tokens no longer lie where such
    views say."""
    adapter = build_adapter(name, sharp=True)
    image, region = make_image((300, 220)), (0.6, 0.55, 0.95, 0.95)
    views, change = token_change(adapter, image, PROMPT, adapter.tokenize_answer(ANSWER), region)
    assert sharp(layout_score(views, change, region))
    (view,) = views
    span = adapter.image_token_positions(adapter.encode(image, PROMPT))
    rows, columns = view.grid
    start = adapter.wrapper_slots
    plain = View(span[start:start + rows * columns], view.grid)
    assert not sharp(layout_score([plain], change, region))
