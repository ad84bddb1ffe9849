"""LFM2-VL's views as its processor makes them: tiles first, each behind its `<|img_row_r_col_c|>` marker, the
thumbnail last on its own (non-square) grid; read overview-first, as Ovis2 and MiniCPM-V order theirs, the layout check
fails.  An image is tiled only past twice `max_image_tokens`' pixels (`max_pixels_tolerance`): below that it is shrunk
into one grid."""

from __future__ import annotations

import pytest
import torch
from layout import layout_score, token_change
from test_layout import sharp, sharp_adapter
from tiny_models import ANSWER, PROMPT, WIDE, make_image

from mllm_explain.views import View


def test_tiles_behind_their_markers_then_the_thumbnail():
    adapter = sharp_adapter("lfm2_vl")
    image = make_image(WIDE)
    inputs = adapter.encode(image, PROMPT)
    views, change = token_change(adapter, image, PROMPT, adapter.tokenize_answer(ANSWER))
    markers = [adapter.tokenizer.convert_ids_to_tokens(int(inputs["input_ids"][0, view.positions[0] - 1]))
               for view in views]
    assert markers == [*(f"<|img_row_{r}_col_{c}|>" for r in (1, 2) for c in (1, 2, 3)), "<|img_thumbnail|>"]
    assert [view.grid for view in views] == [(4, 4)] * 6 + [(3, 4)]
    assert sharp(layout_score(views, change))
    first = torch.cat([view.positions for view in views])  # the image's tokens in order, read overview-first
    naive = [View(first[:12], (3, 4), kind="overview"),
             *(View(first[12 + 16 * i:28 + 16 * i], (4, 4), view.image_box, kind="tile")
               for i, view in enumerate(views[:-1]))]
    assert not sharp(layout_score(naive, change))


@pytest.mark.parametrize("size, views", [((40, 40), [("image", (4, 4))]),  # 25 tokens' pixels: shrunk to 16
                                         ((48, 48), [("tile", (4, 4))] * 4 + [("overview", (4, 4))])])  # 36: tiled
def test_tiled_only_past_twice_the_token_budget(size, views):
    adapter = sharp_adapter("lfm2_vl")
    image = make_image(size)
    inputs = adapter.encode(image, PROMPT)
    shapes = inputs["spatial_shapes"]
    assert (inputs["pixel_attention_mask"].sum(1) == shapes.prod(1)).all()  # only the padding to 64 patches masked
    got = adapter.vision_views(inputs, image, (0.0, 0.0, 1.0, 1.0))
    assert [(view.kind, view.grid) for view in got] == views
    assert sum(view.positions.numel() for view in got) == adapter.vision_tokens(image.size)
