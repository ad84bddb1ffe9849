import numpy as np

from mllm_explain.data.synth import Scene, SceneObject
from mllm_explain.evaluation.caption_quality import named_objects, score_caption, summarise


def _scene(*objects):
    mask = np.zeros((4, 4), bool)
    return Scene(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8),
                 [SceneObject(c, col, 0.1, (0.0, 0.0), mask) for c, col in objects], "")


def test_named_objects_reads_colour_and_plurals():
    assert named_objects("There are two red circles to the left of a large blue star.") == [
        ("circle", "red"), ("star", "blue")]
    assert named_objects("A moon.") == [("moon", None)]


def test_score_counts_recall_hallucination_and_colour():
    scene = _scene(("circle", "red"), ("star", "blue"))
    score = score_caption("There is a red circle above a green square.", scene)
    assert (score.present, score.recalled, score.named, score.hallucinated) == (2, 1, 2, 1)
    assert (score.coloured, score.colour_correct) == (1, 1)
    summary = summarise([score, score_caption("A blue star and a pink circle.", scene)])
    assert summary["object_recall"] == 3 / 4
    assert summary["hallucination"] == 1 / 4
    assert summary["colour_accuracy"] == 2 / 3
