"""Hallucination diagnosis: the grounding score, the detection metrics, and `evaluate --hallucination`
end to end on synthetic scenes with the bundled model."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mllm_explain.cli import app, main
from mllm_explain.data.synth import CATEGORY_IDS, DEFAULT_PROMPT, write_dataset
from mllm_explain.evaluation.hallucination import BASELINE, SCORES, detection
from mllm_explain.evaluation.metrics import object_mentions
from mllm_explain.evaluation.words import classify_words
from mllm_explain.grounding import MAX_DETAIL_SCALE, MIN_DETAIL_SCALE, detail_scale, grounding_scores, ungrounded_words
from mllm_explain.images import load_image
from mllm_explain.methods.base import base_scores


def nouns(labels: list[bool], grounding: list[float], probability: list[float] | None = None) -> list[dict]:
    probability = probability or [0.5] * len(labels)
    return [{"hallucinated": y, "scores": {name: (g if name == "grounding" else p) for name in SCORES}}
            for y, g, p in zip(labels, grounding, probability)]


def test_detection_rates_a_low_score_as_a_flag() -> None:
    perfect = [nouns([True, False], [0.1, 0.9]), nouns([False, True], [0.8, 0.2]), nouns([False], [0.7])]
    result = detection(perfect, resamples=200)
    assert (result["n_samples"], result["n_nouns"], result["n_hallucinated"]) == (3, 5, 2)
    assert result["rate"] == pytest.approx(0.4)
    grounding = result["scores"]["grounding"]
    assert grounding["auroc"] == 1.0 and grounding["ap"] == 1.0
    assert grounding["auroc_ci"][0] <= 1.0 <= grounding["auroc_ci"][1]
    assert result["scores"][BASELINE]["auroc"] == 0.5  # a constant score ranks nothing
    assert grounding[f"auroc_minus_{BASELINE}"] == pytest.approx(0.5)
    reversed_ = detection([nouns([True, False], [0.9, 0.1]), nouns([True, False], [0.8, 0.3])], resamples=50)
    assert reversed_["scores"]["grounding"]["auroc"] == 0.0


def test_detection_with_one_class_only_reports_no_rate() -> None:
    result = detection([nouns([False, False], [0.1, 0.9])], resamples=20)
    assert math.isnan(result["scores"]["grounding"]["auroc"])
    assert detection([], resamples=20)["n_nouns"] == 0


def test_object_mentions_merge_neighbouring_words_of_one_category() -> None:
    words = ["a", "traffic", "light", "and", "two", "dogs"]
    vocabulary = {"traffic light": 10, "dog": 18, "cat": 17}
    word_index = [0, 1, 1, 2, 3, 4, 5]  # 'traffic' is two tokens
    mentions = object_mentions(classify_words(words, vocabulary), word_index)
    assert [(m.words, m.category, m.token) for m in mentions] == [([1, 2], 10, 3), ([5], 18, 6)]


def test_ungrounded_words_are_low_nouns_only() -> None:
    words = ["a", "red", "star", "and", "moon"]
    assert ungrounded_words(words, [0.1, 0.1, 0.9, 0.1, 0.2], threshold=0.5) == [4]
    assert ungrounded_words(words, [None] * 5, threshold=0.5) == []


@pytest.fixture(scope="module")
def small_scene(bundled) -> tuple[Image.Image, list[int]]:
    """examples/scene.png at half size: small enough for a more detailed view."""
    image = load_image("examples/scene.png")
    image = image.resize((image.width // 2, image.height // 2), Image.BICUBIC)
    return image, bundled.generate(image, DEFAULT_PROMPT, max_new_tokens=16)


def test_grounding_is_the_lower_probability_of_two_views(bundled, small_scene) -> None:
    model, (image, ids) = bundled, small_scene
    scale = detail_scale(model, image)
    assert MIN_DETAIL_SCALE <= scale <= MAX_DETAIL_SCALE
    expected = np.minimum(model.answer_probabilities([image], DEFAULT_PROMPT, ids)[0].numpy(),
                          model.answer_probabilities([image], DEFAULT_PROMPT, ids, scale=scale)[0].numpy())
    scores = grounding_scores(model, image, DEFAULT_PROMPT, ids)
    assert scores.shape == (len(ids),) and np.all((0 <= scores) & (scores <= 1))
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    known = base_scores(model.trace(image, DEFAULT_PROMPT, ids), model).token_probability.numpy()
    reused = grounding_scores(model, image, DEFAULT_PROMPT, ids, {1.0: known})
    np.testing.assert_allclose(reused, scores, atol=1e-5)  # the scale-1 trace's probabilities stand in for a forward


def test_an_image_at_the_largest_input_has_one_view(bundled) -> None:
    """The detail view stays within the processor's own pixel range, although MSEA may enlarge past it."""
    image = load_image("examples/scene.png").resize((600, 600))
    assert detail_scale(bundled, image) == 1.0
    bundled.check_scale(image, MAX_DETAIL_SCALE)


def test_max_vision_tokens_bounds_the_detail_view(bundled, small_scene) -> None:
    """Half of examples/scene.png is fed as 7x6 merged patches (42 tokens): 2x (168) is over a bound of 100 and
    1.5x (90) is not; a bound of 60 leaves no view of 1.5x."""
    image, _ = small_scene
    assert detail_scale(bundled, image) == MAX_DETAIL_SCALE  # beyond the processor's cap (1.85x): MSEA's scale
    bundled.max_vision_tokens = 100
    try:
        assert MIN_DETAIL_SCALE <= detail_scale(bundled, image) < MAX_DETAIL_SCALE
        bundled.max_vision_tokens = 60
        assert detail_scale(bundled, image) == 1.0
    finally:
        del bundled.max_vision_tokens  # the class's bound again


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenes")
    write_dataset(folder, n=4, seed=0, split="test")
    return folder


def evaluate(*args: str):
    result = CliRunner().invoke(app, ["evaluate", "--format", "synthetic", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def fails(capsys, *args: str) -> str:
    """Run the real entry point, expect exit code 2 and return its one-line error."""
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "--format", "synthetic", *args])
    assert exit_.value.code == 2
    return capsys.readouterr().err


def test_evaluate_hallucination_labels_nouns_by_the_mask(scenes, tmp_path, capsys) -> None:
    result = evaluate("--data", str(scenes), "--methods", "none", "--hallucination", "--input-scale", "0.5",
                      "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "| grounding |" in result.stdout and "| probability |" in result.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    detected = summary["hallucination"]
    assert set(detected["scores"]) == set(SCORES)
    rows = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert {r["method"] for r in rows} == {"generation", "hallucination"}
    records = json.loads((scenes / "anno.json").read_text())
    labelled = 0
    for row in (r for r in rows if r["method"] == "hallucination"):
        index = int(row["sample_id"].split("-")[0])
        mask = np.asarray(Image.open(scenes / records[index][2]))
        for noun in row["nouns"]:  # the label is the mask's, whether or not the category is in the scene's list
            assert noun["category"] in CATEGORY_IDS.values()
            assert noun["hallucinated"] == (not (mask == noun["category"]).any())
            assert 0 <= noun["scores"]["grounding"] <= 1
            labelled += 1
    assert labelled == detected["n_nouns"] > 0
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert settings["input_scale"] == 0.5 and settings["hallucination"] is True
    # resuming at another input scale would mix two settings in one summary
    assert "input_scale 0.5 there" in fails(capsys, "--data", str(scenes), "--methods", "none", "--hallucination",
                                             "--out", str(tmp_path))


def test_evaluate_without_methods_needs_hallucination(scenes, tmp_path, capsys) -> None:
    assert "names no method" in fails(capsys, "--data", str(scenes), "--methods", "none", "--out", str(tmp_path))
    assert "--input-scale" in fails(capsys, "--data", str(scenes), "--input-scale", "0", "--out", str(tmp_path))


def test_explain_prints_the_nouns_it_flags(bundled, small_scene, tmp_path) -> None:
    image, _ = small_scene
    image.save(tmp_path / "small.png")
    result = CliRunner().invoke(app, ["explain", str(tmp_path / "small.png"), "--method", "logit_lens",
                                      "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "report" / "tokens.json").read_text())
    flagged = [saved["words"][w] for w in saved["ungrounded_words"]]
    assert flagged, "the half-size scene's caption names a shape the model loses in the detailed view"
    line = next(line for line in result.stdout.splitlines() if line.startswith("maybe not in the image"))
    assert [part.split(" (")[0] for part in line.split(": ", 1)[1].split(", ")] == flagged
    assert '<span class="token ungrounded"' in (tmp_path / "report" / "report.html").read_text()
