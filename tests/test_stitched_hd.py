"""The stitched-HD kind (`adapters/stitched_hd.py`) breaks two naive readings: Phi-4-multimodal's stitched grid is cut
to the image's useful area (not the crops' full width), and Unlimited-OCR generates under a sliding window over its
answer (R-SWA), which one causal forward does not reproduce."""

from __future__ import annotations

import torch
from layout import layout_score, token_change
from test_layout import sharp
from tiny_models import ANSWER, PROMPT, WIDE, _unlimited_ocr, build_adapter, make_image

from mllm_explain.adapters.base import ModelAdapter
from mllm_explain.adapters.stitched_hd import UnlimitedOcrAdapter
from mllm_explain.views import View


def test_phi4_stitched_grid_read_at_the_crops_full_width_fails_the_layout_check():
    """WIDE fills 170 of the 2x1 crops' 256 px: the processor keeps 22 of the 32 token columns.  Rows read as 32
    columns (plus the newline slot) drift further each row: painting the bottom right no longer changes the tokens
    such a grid places there, while the real views pass."""
    adapter = build_adapter("phi4_multimodal", sharp=True)
    region = (0.55, 0.6, 0.95, 0.95)
    views, change = token_change(adapter, make_image(WIDE), PROMPT, adapter.tokenize_answer(ANSWER), region)
    assert [v.grid for v in views] == [(16, 22), (16, 16)]
    assert sharp(layout_score(views, change, region))
    span = adapter.image_token_positions(adapter.encode(make_image(WIDE), PROMPT))
    full = span[:16 * 33].reshape(16, 33)[:, :32].flatten()
    naive = View(full, (16, 32), grid_box=(0.0, 0.0, 1.0, 170 / 256), kind="tile")
    assert not sharp(layout_score([naive, views[1]], change, region))


def test_unlimited_ocr_trace_keeps_generations_sliding_window_where_one_causal_forward_does_not():
    """With a window of 4 answer tokens, every state of the trace equals `generate`'s; the plain causal forward
    (`ModelAdapter.encode`'s inputs) departs from the 6th state on, whose query sees 5 answer tokens."""
    torch.manual_seed(0)
    model, processor = _unlimited_ocr()
    model.config.get_text_config().sliding_window = 4
    adapter = UnlimitedOcrAdapter(model, processor)
    image = make_image(WIDE)
    inputs = adapter.encode(image, PROMPT)
    out = model.generate(**inputs, max_new_tokens=12, min_new_tokens=12, do_sample=False, output_hidden_states=True,
                         return_dict_in_generate=True, suppress_tokens=adapter.tokenizer.all_special_ids)
    start = inputs["input_ids"].shape[1]
    answer = out.sequences[0, start:].tolist()
    generated = torch.cat([step[-1][0, -1:] for step in out.hidden_states])
    states = adapter.trace(image, PROMPT, answer).hidden[start - 1:start - 1 + len(answer)]
    assert torch.allclose(states, generated, atol=1e-4)
    with torch.no_grad():
        causal = model(**ModelAdapter.encode(adapter, image, PROMPT, answer), output_hidden_states=True,
                       use_cache=False).hidden_states[-1][0, start - 1:start - 1 + len(answer)]
    gap = (causal - generated).abs().amax(-1)
    assert gap[:5].max() < 1e-4 and gap[5:].min() > 1e-3
