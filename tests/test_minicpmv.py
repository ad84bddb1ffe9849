"""MiniCPM-V 4.6 / 4.7 and MiniCPM-OCR (issue 29): the facts the overview-and-slices adapter reads from the processor's
rules rather than from its output, and the packed batches the model reads.  Views, layout locality, every method and
the CLI run on them through the parametrised tests over `tiny_models.FAMILIES`."""

from __future__ import annotations

import pytest
import torch
from tiny_models import ANSWER, PROMPT, WIDE, build_adapter, make_image


@pytest.mark.parametrize("name", ["minicpmv4_6", "minicpm_ocr"])  # 16x and 4x merging
def test_vision_tokens_follow_the_processors_slicing(name):
    """`vision_tokens`, which bounds every scale, counts the image tokens the processor writes: no slices, a row, a
    column, a grid of them, up to `max_slice_nums` (here 9 from 1.5x on for 300x220)."""
    adapter = build_adapter(name)
    for size in [(20, 20), WIDE, (126, 168), (400, 60), (300, 220)]:
        for scale in (0.5, 1.0, 1.5, 2.0):
            image = adapter.scaled_image(make_image(size), scale)[0]
            inputs = adapter.encode(image, PROMPT)
            assert int((inputs["input_ids"] == adapter.image_token_id).sum()) == adapter.vision_tokens(image.size)


def test_a_batch_of_images_is_packed_as_the_model_reads_it():
    """The model reads `pixel_values[:1]` only (every view NaViT-packed in one row): a batch of images joins their
    patches along that row, so each image's probabilities are those it has alone."""
    adapter = build_adapter("minicpmv4_7")
    answer = adapter.tokenize_answer(ANSWER)
    images = [make_image(WIDE, seed) for seed in range(3)]
    inputs = adapter.encode(images, PROMPT, answer)
    assert inputs["pixel_values"].shape[0] == 1 and len(inputs["target_sizes"]) == 3 * 3  # overview + 2 slices each
    together = adapter.answer_probabilities(images, PROMPT, answer, batch_size=3)
    alone = torch.cat([adapter.answer_probabilities([image], PROMPT, answer) for image in images])
    assert torch.allclose(together, alone, atol=1e-5)
