"""GIT breaks the placeholder assumption: its image features (CLS, then the patch grid) are prepended to the text with
no token in `input_ids`, so the decoder's states are longer than the ids and every text position is shifted by the
prefix.  Reading positions in `input_ids` (as for a placeholder family) reads image rows; taking the prefix's first
rows as the grid (CLS in it) shifts the map by one cell, which the layout check catches."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import torch
from layout import layout_score, token_change
from tiny_models import ANSWER, PROMPT, WIDE, build_adapter, make_image

from mllm_explain.adapters.base import ModelAdapter


@cache
def git(sharp: bool = False) -> ModelAdapter:
    return build_adapter("git", sharp=sharp)


def test_states_are_the_prefix_then_the_text():
    """The trace's states have `prefix_length` (CLS + 6x6) rows more than the processor's ids; the adapter's logits at
    the answer's predicting positions are the model's own there, and the positions counted in `input_ids` read image
    rows, whose logits are others."""
    adapter = git()
    answer = adapter.tokenize_answer(ANSWER)
    inputs = adapter.encode(adapter.scaled_image(make_image(WIDE), 1.0)[0], PROMPT, answer)
    trace = adapter.trace(make_image(WIDE), PROMPT, answer)
    length = inputs["input_ids"].shape[1]
    assert adapter.prefix_length(inputs) == 1 + 6 * 6
    assert len(trace.hidden) == len(trace.input_ids) == length + 1 + 6 * 6
    with torch.no_grad():
        own = adapter.model(**inputs, use_cache=False).logits[0].float()
    assert len(own) == len(trace.hidden)
    assert torch.allclose(adapter.logits(trace.hidden[trace.answer_positions - 1]), own[trace.answer_positions - 1],
                          atol=1e-4)
    naive = torch.arange(length - len(answer), length) - 1  # answer positions counted in input_ids
    assert (naive < adapter.prefix_length(inputs)).all()  # image rows
    assert not torch.allclose(adapter.logits(trace.hidden[naive]), own[trace.answer_positions - 1], atol=1e-2)


def test_the_cls_feature_is_in_no_view():
    """The grid is the prefix's rows 1..36; the naive grid of its first 36 rows (CLS first) fails the layout check."""
    adapter = git(sharp=True)
    views, change = token_change(adapter, make_image(WIDE), PROMPT, adapter.tokenize_answer(ANSWER))
    assert views[0].positions.tolist() == list(range(1, 37))
    score = layout_score(views, change)
    assert score.inside >= 0.8 and score.contrast >= 2.0, score
    naive = layout_score([replace(view, positions=view.positions - 1) for view in views], change)
    assert naive.inside < 0.8, naive


def test_the_turn_starts_with_cls_and_the_answer_ends_at_sep():
    """GIT's VQA input is `[CLS]` and the question with no `[SEP]` (the tokenizer's default adds one) and no BERT
    `token_type_ids`; a caption with no question starts from `[CLS]`, the model's BOS, and `[SEP]`, its EOS, ends the
    answer."""
    adapter = git()
    tokenizer = adapter.tokenizer
    inputs = adapter.encode(make_image(WIDE), PROMPT)
    prompt = tokenizer(PROMPT, add_special_tokens=False)["input_ids"]
    assert inputs["input_ids"][0].tolist() == [tokenizer.cls_token_id, *prompt]
    assert tokenizer(PROMPT)["input_ids"][-1] == tokenizer.sep_token_id
    assert "token_type_ids" not in inputs
    caption = adapter.model.generate(pixel_values=inputs["pixel_values"], max_new_tokens=2, do_sample=False)
    assert caption[0, 0] == tokenizer.cls_token_id == adapter.model.generation_config.bos_token_id
    assert adapter.model.generation_config.eos_token_id == tokenizer.sep_token_id
    assert adapter.until_stop([prompt[0], tokenizer.sep_token_id, prompt[1]]) == prompt[:1]


def test_the_generation_trace_is_the_teacher_forced_one():
    """`generate_trace` places its states and ids after the prefix as `trace` does."""
    adapter = git()
    answer, generated = adapter.generate_trace(make_image(WIDE), PROMPT, max_new_tokens=4)
    assert answer and generated is not None
    forced = adapter.trace(make_image(WIDE), PROMPT, answer)
    assert torch.equal(generated.input_ids, forced.input_ids)
    assert torch.equal(generated.answer_positions, forced.answer_positions)
    assert torch.equal(generated.prompt_positions, forced.prompt_positions)
    assert torch.allclose(generated.hidden, forced.hidden, atol=1e-5)


def test_token_texts_join_to_the_decoded_answer():
    """WordPiece decodes a token alone with no space: each token's text is what it adds to the one before."""
    adapter = git()
    ids = adapter.tokenize_answer(ANSWER)
    texts = adapter.token_texts(ids)
    assert texts == [" a", " red", " square"]
    assert "".join(texts).strip() == adapter.tokenizer.decode(ids)
