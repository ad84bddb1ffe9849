"""Known-answer tests of the evaluation metrics and word classes (DESIGN §6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from mllm_explain.data.synth import CATEGORIES, COLOURS, DEFAULT_PROMPT, PLURALS, render_scene, scene_rng
from mllm_explain.evaluation.metrics import (
    HIGHER_IS_BETTER,
    auc,
    deletion_insertion,
    f1_iou,
    mean,
    otsu,
    overlap,
    pixel_ranks,
    random_saliency,
    score_maps,
    to_uint8,
)
from mllm_explain.evaluation.words import FUNCTION_WORDS, classify_words

SIZE = 16


def square(top: int, left: int, side: int) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[top:top + side, left:left + side] = True
    return mask


def one_token_per_word(words: list[str]) -> list[int]:
    return list(range(len(words)))


def test_perfect_map_gives_obj_iou_one():
    words = ["a", "red", "circle"]
    mask = np.where(square(4, 4, 6), 3, 0)
    maps = np.zeros((3, SIZE, SIZE), dtype=np.float32)
    maps[2] = mask == 3
    scores = score_maps(maps, one_token_per_word(words), words, mask, {"circle": 3})
    assert scores.obj_iou == [1.0] and scores.precision == [1.0] and scores.recall == [1.0]
    assert scores.mentions[0].best_token == 2


def test_all_zero_function_maps_score_func_iou_one():
    words = ["the", "dog", "and", "a", "cat"]
    mask = np.where(square(0, 0, 8), 1, 0) + np.where(square(8, 8, 8), 2, 0)
    maps = np.zeros((5, SIZE, SIZE), dtype=np.float32)
    maps[1] = np.where(square(0, 0, 8), 1.0, 0.2)  # nouns: bimodal maps with a nonzero background, so θ > 0
    maps[4] = np.where(square(8, 8, 8), 1.0, 0.2)
    scores = score_maps(maps, one_token_per_word(words), words, mask, {"dog": 1, "cat": 2})
    assert scores.theta > 0
    assert scores.func_iou == [1.0, 1.0, 1.0]
    assert scores.obj_iou == [1.0, 1.0]


def test_func_iou_needs_a_noun():
    words = ["the", "and"]
    scores = score_maps(np.zeros((2, SIZE, SIZE)), [0, 1], words, np.zeros((SIZE, SIZE), int), {})
    assert math.isnan(scores.theta) and scores.func_iou == []


def test_otsu_separates_the_modes_of_a_bimodal_map():
    rng = np.random.default_rng(0)
    high = square(3, 5, 7)
    values = np.where(high, 0.8, 0.2) + rng.normal(0, 0.03, (SIZE, SIZE))
    threshold, foreground = otsu(to_uint8(values, (SIZE, SIZE)))
    assert 0.2 * 255 < threshold < 0.8 * 255
    assert np.array_equal(foreground, high)


def test_constant_maps_follow_opencv():
    _, foreground = otsu(np.zeros((SIZE, SIZE), np.uint8))
    assert not foreground.any()
    assert overlap(foreground, square(0, 0, 4)) == (0.0, 0.0, 0.0)
    _, foreground = otsu(np.full((SIZE, SIZE), 7, np.uint8))  # threshold 0: everything is foreground
    assert foreground.all()


def test_maps_are_resized_to_the_mask():
    grid = np.zeros((4, 4), np.float32)
    grid[:2, :2] = 1
    assert to_uint8(grid, (SIZE, SIZE)).shape == (SIZE, SIZE)
    words = ["circle"]
    mask = np.where(square(0, 0, 8), 5, 0)
    scores = score_maps(grid[None], [0], words, mask, {"circle": 5})
    assert scores.obj_iou[0] > 0.7


def test_consecutive_words_of_one_category_count_once_with_the_best_token():
    words = ["a", "traffic", "light", "and", "a", "light"]
    mask = np.where(square(2, 2, 6), 10, 0)
    maps = np.zeros((7, SIZE, SIZE), dtype=np.float32)
    word_index = [0, 1, 2, 2, 3, 4, 5]  # "light" is two tokens
    maps[1] = square(2, 2, 3)  # traffic: partial overlap
    maps[3] = mask == 10  # second token of "light": perfect
    maps[6] = square(10, 10, 4)  # the second "light": elsewhere
    scores = score_maps(maps, word_index, words, mask, {"traffic light": 10})
    assert [m.words for m in scores.mentions] == [[1, 2], [5]]
    assert scores.mentions[0].best_token == 3 and scores.mentions[0].iou == 1.0
    assert scores.mentions[0].token == 2  # faithfulness reads the head word's first token
    assert scores.obj_iou == [1.0, 0.0]


def test_category_absent_from_the_mask_gives_nan_not_zero():
    assert all(math.isnan(v) for v in overlap(square(0, 0, 4), np.zeros((SIZE, SIZE), bool)))
    words = ["a", "dog"]
    maps = np.zeros((2, SIZE, SIZE), dtype=np.float32)
    maps[1] = square(0, 0, 4)
    scores = score_maps(maps, [0, 1], words, np.zeros((SIZE, SIZE), int), {"dog": 18})
    assert len(scores.mentions) == 1 and math.isnan(scores.mentions[0].iou)
    assert scores.obj_iou == []
    assert math.isnan(mean(scores.obj_iou))


def test_f1_iou_is_the_harmonic_mean():
    assert f1_iou(0.5, 1.0) == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert f1_iou(0.0, 0.0) == 0.0
    assert math.isnan(f1_iou(math.nan, 0.5))


def test_every_reported_metric_declares_a_direction():
    assert HIGHER_IS_BETTER["obj_iou"] and not HIGHER_IS_BETTER["deletion_auc"]
    assert set(HIGHER_IS_BETTER) == {"obj_iou", "func_iou", "f1_iou", "precision", "recall", "insertion_auc",
                                     "deletion_auc", "seconds_per_caption", "peak_mem_mb"}


def test_auc_by_the_trapezoid_rule():
    fractions = np.linspace(0, 1, 5)
    assert auc(fractions, np.full(5, 0.3)) == pytest.approx(0.3)
    assert auc(fractions, fractions) == pytest.approx(0.5)
    assert auc(np.array([0.0, 1.0]), np.array([1.0, 0.0])) == pytest.approx(0.5)


def test_pixel_ranks_follow_the_map_and_break_ties_randomly():
    saliency = np.zeros((SIZE, SIZE))
    saliency[:4] = 1.0
    ranks = pixel_ranks(saliency, seed=0)
    assert ranks[:4].max() < ranks[4:].min()
    assert not np.array_equal(ranks[4:].ravel(), np.sort(ranks[4:].ravel()))  # not raster order
    assert np.array_equal(ranks, pixel_ranks(saliency, seed=0))
    assert np.array_equal(np.sort(ranks.ravel()), np.arange(SIZE * SIZE))


class BrightnessModel:
    """Stands in for a model: the 'probability' of token t is the mean brightness of the top-left
    quadrant; records each call."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def answer_probabilities(self, images, prompt, answer_ids):
        self.calls.append(len(images))
        rows = [np.asarray(image, np.float32)[:SIZE // 2, :SIZE // 2].mean() / 255 for image in images]
        return torch.tensor(rows)[:, None].expand(-1, len(answer_ids))


def test_deletion_and_insertion_curves_batch_each_curve_in_one_call():
    picture = np.zeros((SIZE, SIZE, 3), np.uint8)
    picture[:SIZE // 2, :SIZE // 2] = 255  # a bright object in the top-left quadrant
    image = Image.fromarray(picture)
    model = BrightnessModel()
    truth = square(0, 0, SIZE // 2).astype(np.float32)
    curves = deletion_insertion(model, image, "p", [1, 2], 1, truth, steps=4)
    assert model.calls == [5, 5]
    assert np.allclose(curves.fractions, [0, 0.25, 0.5, 0.75, 1])
    assert curves.deletion[0] == pytest.approx(1.0) and curves.insertion[-1] == pytest.approx(1.0)
    assert curves.deletion[1] < curves.deletion[0] and curves.insertion[1] > curves.insertion[0]
    noise = deletion_insertion(model, image, "p", [1, 2], 1, random_saliency((SIZE, SIZE)), steps=4)
    assert curves.deletion_auc < noise.deletion_auc
    assert curves.insertion_auc > noise.insertion_auc


def test_word_classes():
    categories = {"dog": 18, "bear": 23, "traffic light": 10, "hot dog": 58, "teddy bear": 88, "dining table": 67}
    words = "There is a hot dog , two dogs and a teddy bear by the table near their traffic light .".split()
    classes = classify_words(words, categories)
    found = {(w, c.kind, c.category) for w, c in zip(words, classes) if c.kind == "object"}
    assert found == {("hot", "object", 58), ("dog", "object", 58), ("dogs", "object", 18), ("teddy", "object", 88),
                     ("bear", "object", 88), ("table", "object", 67), ("traffic", "object", 10),
                     ("light", "object", 10)}
    kinds = dict(zip(words, (c.kind for c in classes)))
    assert {kinds[w] for w in ("There", "a", "and", "the", "their")} == {"function"}
    assert kinds["by"] == kinds["near"] == "other"  # prepositions are not function words in TAM
    assert kinds["is"] == "other" and kinds[","] == "other"
    assert classify_words(["the", "image", "on", "the", "left", "."], {})[1].kind == "other_noun"
    assert classify_words(["the", "red", "circle"], {})[1].kind == "other"
    assert len(FUNCTION_WORDS) > 120


def test_deletion_of_the_object_beats_a_random_map_on_the_bundled_model(bundled):
    """On scenes with one large object, blurring the object first lowers the probability of the
    words describing it (its colour and the noun the model names) faster than a random order."""
    describing = set(COLOURS) | set(CATEGORIES) | set(PLURALS.values())
    scenes = [s for s in (render_scene(scene_rng(0, "test", i)) for i in range(30))
              if len(s.objects) == 1 and s.objects[0].area > 0.1][:2]
    truth_auc, random_auc = [], []
    for scene in scenes:
        image = Image.fromarray(scene.image)
        ids = bundled.generate(image, DEFAULT_PROMPT)
        tokens = [t for t, text in enumerate(bundled.token_texts(ids)) if text.strip() in describing][:2]
        assert tokens, bundled.token_texts(ids)
        for t in tokens:
            truth = deletion_insertion(bundled, image, DEFAULT_PROMPT, ids, t, scene.seg_label > 0, steps=4)
            noise = deletion_insertion(bundled, image, DEFAULT_PROMPT, ids, t,
                                       random_saliency(scene.seg_label.shape, seed=t), steps=4)
            truth_auc.append(truth.deletion_auc)
            random_auc.append(noise.deletion_auc)
    assert len(scenes) == 2
    assert np.mean(truth_auc) < np.mean(random_auc)
