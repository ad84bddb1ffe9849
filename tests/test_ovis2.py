"""Ovis2's tiles as transformers cuts them: its covering rule computes a grid as (rows, columns) and the processor
reads it as (columns, rows), so a wide image can be cut into more rows than columns.  The views follow the processor;
read the intuitive way round, the layout check fails."""

from __future__ import annotations

from layout import layout_score, token_change
from test_layout import sharp
from tiny_models import ANSWER, PROMPT, build_adapter, make_image

from mllm_explain.views import View


def test_a_wide_image_gets_the_tiles_the_processor_cuts():
    adapter = build_adapter("ovis2", sharp=True)
    image = make_image((300, 220))
    assert adapter.tiles(image.size) == (3, 2)  # 3 rows of 2 tiles, each stretched from a third of the height
    views, change = token_change(adapter, image, PROMPT, adapter.tokenize_answer(ANSWER))
    assert sharp(layout_score(views, change))
    overview, *tiles = views
    boxes = [(i // 3 / 2, i % 3 / 3, (i // 3 + 1) / 2, (i % 3 + 1) / 3) for i in range(6)]  # 2 rows of 3
    swapped = [View(tile.positions, tile.grid, kind="tile", image_box=box) for tile, box in zip(tiles, boxes)]
    assert not sharp(layout_score([overview, *swapped], change))
