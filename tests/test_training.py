"""The training batches put the loss on the answer only, for every task (caption, shapes, text-only)."""

import numpy as np
import pytest

from mllm_explain.training import train as training


@pytest.mark.parametrize("text_share", [0.0, 0.5, 1.0])
def test_labels_cover_exactly_the_answer(bundled, text_share):
    processor = bundled.processor
    inputs, labels = training._batch(np.random.default_rng(0), processor, 6, 3, (0.05, 0.3), (112, 168), 0.5,
                                     text_share=text_share)
    assert inputs["input_ids"].shape == labels.shape
    image_token = bundled.model.config.image_token_id
    texts = processor.tokenizer.batch_decode(inputs["input_ids"])
    for row, text in enumerate(texts):
        answer = text.split("<|im_start|>assistant\n")[-1].split("<|im_end|>")[0]
        kept = labels[row][labels[row] != -100]
        assert processor.tokenizer.decode(kept) == answer + "<|im_end|>"
        assert not (kept == image_token).any()
    with_images = (inputs["input_ids"] == image_token).any(1)
    if text_share == 1.0:
        assert not with_images.any() and "pixel_values" not in inputs
    if text_share == 0.0:
        assert with_images.all()


def test_object_list_names_objects_left_to_right():
    from mllm_explain.data.synth import render_scene

    scene = render_scene(np.random.default_rng(3), size=(200, 160), max_objects=4)
    listed = training.object_list(scene).rstrip(".").split(", ")
    ordered = sorted(scene.objects, key=lambda o: o.center[0])
    assert listed == [f"{o.colour} {o.category}" for o in ordered]


def test_language_learning_rate_scaled_only_after_the_text_steps(bundled):
    opt, sched = training.optimiser(bundled.model, lr=1e-3, text_steps=3, total=10, language_lr=0.1)
    language, rest = {id(p) for p in bundled.model.model.language_model.parameters()}, opt.param_groups[0]
    assert not any(id(p) in language for p in rest["params"])
    assert len(opt.param_groups[1]["params"]) + len(rest["params"]) == len([*bundled.model.parameters()])
    ratios = []
    for _ in range(6):
        ratios.append(opt.param_groups[1]["lr"] / opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert ratios[:3] == pytest.approx([1.0] * 3) and ratios[3:] == pytest.approx([0.1] * 3)


def test_resized_images_are_rendered_larger_and_resampled_to_the_drawn_size(bundled, monkeypatch):
    """With `resized_share` 1 every image is a scene rendered at 1/f of its size (f in RESIZE_RANGE) and resampled
    down: the same sizes reach the processor, each scene's caption unchanged, and no stream changes with share 0."""
    rendered = []
    original = training.render_scene

    def spy(rng, size=None, **kwargs):
        rendered.append(size)
        return original(rng, size=size, **kwargs)

    monkeypatch.setattr(training, "render_scene", spy)
    args = (bundled.processor, 6, 3, (0.05, 0.3), (112, 168), 0.0, 0.0)
    plain, _ = training._batch(np.random.default_rng(0), *args)
    plain_sizes, rendered[:] = list(rendered), []
    again, _ = training._batch(np.random.default_rng(0), *args, resized_share=0.0)
    assert rendered == plain_sizes and np.array_equal(plain["input_ids"], again["input_ids"])
    rendered[:] = []
    resized, _ = training._batch(np.random.default_rng(0), *args, resized_share=1.0)
    grid = resized["image_grid_thw"]
    assert len(rendered) == 6 and len(grid) == 6
    low, high = training.RESIZE_RANGE
    for width, height in rendered:
        assert 112 / high - 1 <= max(width, height) <= 168 / low + 1
    assert any(max(size) > 168 for size in rendered)  # some rendered beyond the stage's largest side
    fed = [int(t[1] * t[2]) for t in grid]  # the fed sizes stay within the stage's range, as without resizing
    assert max(fed) * 14 * 14 <= 168 * 168 * 1.2
