"""`evaluate --protocol tam` against TAM's own evaluation code: the known answer in tests/fixtures/tam_eval was
made by scripts/tam_eval_fixture.py running TAM's eval.py (`evaluate`) on these maps; ours must equal it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from transformers import AutoTokenizer

from mllm_explain.adapters import BUNDLED_MODEL
from mllm_explain.errors import UserError
from mllm_explain.evaluation.datasets import TAM_COCO_CATEGORIES
from mllm_explain.evaluation.tam_protocol import (
    FUNCTION,
    OTHER,
    OTHER_NOUN,
    TamLanguage,
    pooled_mean,
    score_tam,
    tam_language,
    word_groups,
)

FIXTURE = Path(__file__).parent / "fixtures" / "tam_eval"
CASES = json.loads((FIXTURE / "cases.json").read_text())
MAPS = np.load(FIXTURE / "maps.npz")
KINDS = {OTHER_NOUN: "noun", FUNCTION: "function", OTHER: "others"}  # TAM's get_word_type names


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(BUNDLED_MODEL)


@pytest.fixture(scope="module")
def language(nltk_data):
    return tam_language(nltk_data)


def ours(case: dict, tokenizer, language):
    words, groups = word_groups(tokenizer, case["ids"])
    labels = [language.label(word, case["categories"]) for word in words]
    mask = cv2.imread(str(FIXTURE / case["mask"]), cv2.IMREAD_GRAYSCALE) if case["mask"] else None
    return score_tam(MAPS[case["name"]], words, groups, labels, mask)


def same(a: list, b: list) -> bool:
    """Equal lists within 1e-6, NaN (stored as null) equal to NaN."""
    a = [math.nan if v is None else v for v in a]
    b = [math.nan if v is None else v for v in b]
    return len(a) == len(b) and all((math.isnan(x) and math.isnan(y)) or abs(x - y) <= 1e-6 for x, y in zip(a, b))


@pytest.mark.parametrize("case", CASES["cases"], ids=[case["name"] for case in CASES["cases"]])
def test_each_caption_scores_as_tams_code_scores_it(case, tokenizer, language):
    scores = ours(case, tokenizer, language)
    assert scores.words == case["words"]
    assert [KINDS.get(label, "noun") for label in scores.labels] == case["word_types"]
    for key in ("obj_iou", "func_iou", "precision", "recall"):
        assert same(getattr(scores, key), case[key]), (key, getattr(scores, key), case[key])
    assert (scores.dropped is not None) == (case["name"] == "token_mismatch")


def test_the_dataset_means_equal_tams(tokenizer, language):
    scored = [ours(case, tokenizer, language) for case in CASES["cases"]]
    for key, expected in CASES["means"].items():
        value = pooled_mean([v for scores in scored for v in getattr(scores, key)])
        assert same([value], [expected]), key
    assert math.isnan(pooled_mean([v for scores in scored for v in scores.precision]))  # the empty foreground's


def test_the_fixture_reaches_the_rules_it_was_built_for():
    """The hand-made cases exercise what they are named after (else the comparison would prove less)."""
    cases = {case["name"]: case for case in CASES["cases"]}
    assert "-shirt" in cases["glued_words"]["words"] and ".5" in cases["glued_words"]["words"]
    assert all(case["words"][-1].endswith("<|im_end|>") for case in CASES["cases"] if case["name"] != "token_mismatch")
    assert cases["empty_foreground"]["precision"][0] is None
    assert cases["missing_mask"]["mask"] is None and cases["missing_mask"]["func_iou"]
    assert cases["token_mismatch"]["obj_iou"] == cases["token_mismatch"]["func_iou"] == []
    mask = cv2.imread(str(FIXTURE / cases["other_size"]["mask"]), cv2.IMREAD_GRAYSCALE)
    assert mask.shape != MAPS["other_size"].shape[1:] and mask.shape != (64, 80)


def test_coco_words_take_tams_last_matching_category(language):
    """TAM lets any name word match and the last category win: 'dog' is a hot dog, 'bear' a teddy bear, and
    'oven' is never scored (NLTK tags it RB)."""
    label = lambda word: language.label(word, TAM_COCO_CATEGORIES)  # noqa: E731
    assert (label("dog"), label("dogs"), label("bear"), label("person")) == (58, 58, 88, 1)
    assert label("oven") == OTHER
    assert (label("the"), label("There"), label("and"), label("there")) == (FUNCTION, FUNCTION, FUNCTION, OTHER)
    assert (label("blue"), label("nothing"), label("top")) == (OTHER_NOUN, OTHER_NOUN, OTHER_NOUN)


def test_words_glue_after_punctuation_and_keep_the_end_token(tokenizer):
    ids = tokenizer("A T-shirt costs 2.5 coins.<|im_end|>", add_special_tokens=False)["input_ids"]
    words, groups = word_groups(tokenizer, ids)
    assert words == ["A", "T", "-shirt", "costs", "2", ".5", "coins", ".<|im_end|>"]
    assert [t for group in groups for t in group] == list(range(len(ids)))


def maps_of(*values: np.ndarray) -> np.ndarray:
    return np.stack(values).astype(np.uint8)


def blob(top: int, left: int) -> np.ndarray:
    grid = np.zeros((8, 8), np.uint8)
    grid[top:top + 4, left:left + 4] = 200
    return grid


def test_a_two_word_category_absent_from_the_mask_merges_the_two_mentions_before_it():
    """TAM's bug, kept: 'hot dog' (both words labelled 58) is not in the mask, yet its second word merges the
    person's and the cat's IoUs into their maximum."""
    mask = np.zeros((8, 8), np.uint8)
    mask[:4, :4], mask[4:, 4:] = 1, 17
    maps = maps_of(blob(0, 0), blob(0, 4), blob(0, 4), blob(0, 4))  # person found, cat missed
    groups, labels = [[0], [1], [2], [3]], [1, 17, 58, 58]
    scores = score_tam(maps, ["person", "cat", "hot", "dog"], groups, labels, mask)
    assert scores.obj_iou == [1.0]
    unmerged = score_tam(maps, ["person", "cat", "hot", "cup"], groups, [1, 17, 58, 47], mask)
    assert unmerged.obj_iou == [1.0, 0.0]


def test_an_empty_foreground_has_a_nan_precision_and_tams_mean_keeps_it():
    mask = np.zeros((8, 8), np.uint8)
    mask[:4, :4] = 1
    scores = score_tam(maps_of(np.zeros((8, 8))), ["person"], [[0]], [1], mask)
    assert scores.obj_iou == [0.0] and math.isnan(scores.precision[0])
    assert math.isnan(pooled_mean([0.5, None])) and pooled_mean([]) != pooled_mean([])


def test_a_missing_mask_is_empty_at_the_grid_and_still_sets_theta():
    maps = maps_of(blob(0, 0), blob(2, 2))
    scores = score_tam(maps, ["the", "person"], [[0], [1]], [FUNCTION, 1], None)
    assert scores.obj_iou == [] and not math.isnan(scores.theta)
    assert scores.func_iou == [float((maps[0] < scores.theta).mean())]


def test_maps_the_words_do_not_cover_drop_the_caption():
    scores = score_tam(maps_of(blob(0, 0), blob(0, 0)), ["A"], [[0]], [OTHER], None)
    assert scores.dropped and scores.obj_iou == scores.func_iou == []


def test_missing_nltk_data_is_one_line_naming_the_download(tmp_path, monkeypatch):
    import nltk.data

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    with pytest.raises(UserError, match=r"nltk\.downloader averaged_perceptron_tagger wordnet.*--nltk-data") as error:
        TamLanguage()
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match="--nltk-data folder not found"):
        TamLanguage(tmp_path / "nowhere")


# --- `evaluate --protocol tam` end to end on the bundled model ---------------------------------------------

@pytest.fixture(scope="module")
def tam_run(tmp_path_factory, nltk_data):
    from mllm_explain.cli import main
    from mllm_explain.data.synth import write_dataset

    data, out = tmp_path_factory.mktemp("scenes"), tmp_path_factory.mktemp("tam_run")
    write_dataset(data, n=2, seed=0, split="test")
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "--data", str(data), "--methods", "tam,msea", "--protocol", "tam", "--out", str(out),
              *(["--nltk-data", str(nltk_data)] if nltk_data else [])])
    assert exit_.value.code == 0
    return data, out


def test_evaluate_under_tams_protocol_explains_and_scores_the_end_token(tam_run, bundled, nltk_data):
    from mllm_explain.evaluation.datasets import load_samples
    from mllm_explain.evaluation.tam_protocol import grid_uint8
    from mllm_explain.pipeline import SharedTraces, explain

    data, out = tam_run
    settings = json.loads((out / "settings.json").read_text())
    assert (settings["protocol"], settings["max_new_tokens"], settings["faithfulness"]) == ("tam", 256, False)
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    generation = next(r for r in rows if r["method"] == "generation")
    end = bundled.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert generation["answer_ids"][-1] == end and "<|im_end|>" not in generation["answer"]
    row = next(r for r in rows if r["method"] == "tam" and r["sample_id"] == generation["sample_id"])
    assert row["words"][-1]["word"].endswith("<|im_end|>") and row["dropped"] is None and not row["faithfulness"]
    # the row's scores are TAM's on the maps `explain` gives for the generated ids, the end token's included
    sample = next(s for s in load_samples(data, "synthetic") if s.sample_id == row["sample_id"])
    image = Image.open(sample.image).convert("RGB")
    ids = generation["answer_ids"]
    explanation = explain(bundled, image, sample.prompt, method="tam", grounding=False,
                          traces=SharedTraces(bundled, image, sample.prompt, ids))
    words, groups = word_groups(bundled.tokenizer, ids)
    language = tam_language(nltk_data)
    expected = score_tam(grid_uint8(explanation.grid_maps), words, groups,
                         [language.label(word, sample.categories) for word in words], sample.mask("tam"))
    assert same([m["iou"] for m in row["mentions"]], expected.obj_iou) and expected.obj_iou
    assert same([w["background"] for w in row["words"] if w["class"] == "function"], expected.func_iou)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"] == "tam" and set(summary["methods"]) == {"generation", "tam", "msea", "random"}
    for method in ("tam", "msea", "random"):
        values = summary["methods"][method]
        assert 0 < values["obj_iou"] < 1 and 0 < values["func_iou"] < 1 and values["dropped"] == 0
        assert values["insertion_auc"] is None


def test_tams_protocol_refuses_what_tams_code_does_not_do(tam_run, tmp_path, capsys, nltk_data):
    from mllm_explain.cli import main

    data, out = tam_run
    data_args = ["evaluate", "--data", str(data), "--methods", "tam", "--limit", "1"]
    nltk = ["--nltk-data", str(nltk_data)] if nltk_data else []
    for extra, fragment in [(["--faithfulness"], "plausibility only"), (["--answer", "reference"], "own captions"),
                            (["--nltk-data", str(tmp_path / "nowhere")], "--nltk-data folder not found"),
                            (["--protocol", "theirs"], "--protocol must be one of")]:
        with pytest.raises(SystemExit) as exit_:
            main([*data_args, "--out", str(tmp_path / "out"), "--protocol", "tam", *nltk, *extra])
        lines = capsys.readouterr().err.strip().splitlines()
        assert exit_.value.code == 2 and len(lines) == 1 and fragment in lines[0], lines
    with pytest.raises(SystemExit) as exit_:  # a run folder of one protocol is not resumed under the other
        main([*data_args, "--out", str(out), "--no-faithfulness"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and "protocol" in lines[0] and "other settings" in lines[0]


def test_separate_cost_scores_the_same_captions_the_same(tam_run, tmp_path, nltk_data):
    """With --cost separate each method runs its own forward over the generated ids, end token included."""
    from mllm_explain.cli import main

    data, out = tam_run
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "--data", str(data), "--methods", "tam", "--protocol", "tam", "--limit", "1", "--cost",
              "separate", "--out", str(tmp_path), *(["--nltk-data", str(nltk_data)] if nltk_data else [])])
    assert exit_.value.code == 0
    separate = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    lines = (out / "samples.jsonl").read_text().splitlines()
    shared = {(r["sample_id"], r["method"]): r for r in map(json.loads, lines)}
    for row in (r for r in separate if r["method"] in ("tam", "random")):
        assert row["dropped"] is None
        assert row["mentions"] == shared[row["sample_id"], row["method"]]["mentions"]
        assert row["words"] == shared[row["sample_id"], row["method"]]["words"]
