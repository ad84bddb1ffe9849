"""One forward serves every method: `explain_many` and `evaluate --cost shared` equal the methods run one by one,
a generated answer's scale-1 trace is the generation's own states, and the forwards are counted."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tiny_models import ANSWER, FAMILIES, PROMPT, WIDE, build_adapter, make_image
from typer.testing import CliRunner

from mllm_explain import explain, explain_many, list_methods, load_model
from mllm_explain.bench import counting_forwards
from mllm_explain.cli import app
from mllm_explain.data.synth import write_dataset
from mllm_explain.evaluation.runner import COST_FIELDS
from mllm_explain.grounding import detail_scale, grounding_scores
from mllm_explain.images import load_image
from mllm_explain.pipeline import SharedTraces

EXAMPLE = "examples/scene.png"


@pytest.fixture(scope="module")
def bundled():
    return load_model(device="cpu", dtype=torch.float32)


def test_explain_many_equals_explain_per_method(bundled):
    many = explain_many(bundled, EXAMPLE, "Describe this image.", methods=list_methods())
    for method in list_methods():
        one = explain(bundled, EXAMPLE, "Describe this image.", method=method)
        got = many[method]
        assert got.token_ids == one.token_ids and got.method == method
        assert np.array_equal(got.grid_maps, one.grid_maps), method
        assert np.array_equal(got.relevance, one.relevance, equal_nan=True)
        assert np.array_equal(got.grounding, one.grounding) and got.candidates == one.candidates


def test_seven_methods_with_generation_make_four_full_forwards(bundled):
    """Generation's prefill (its states are the scale-1 trace), the MSEA methods' 2x pass, attention's eager pass
    and grad_act's gradient pass; one by one they were 11."""
    with counting_forwards(bundled) as forwards:
        explain_many(bundled, EXAMPLE, "Describe this image.", methods=list_methods(), grounding=False)
    assert forwards[0] == 4
    with counting_forwards(bundled) as forwards:
        explain(bundled, EXAMPLE, "Describe this image.", method="tam", grounding=False)
    assert forwards[0] == 1  # the prefill alone


@pytest.mark.parametrize("name", ["bundled", *FAMILIES])
def test_generation_states_give_the_teacher_forced_maps(bundled, name):
    adapter = bundled if name == "bundled" else build_adapter(name)
    image = make_image(WIDE)
    prompt = "Describe this image." if name == "bundled" else PROMPT
    answer, generated = adapter.generate_trace(image, prompt, max_new_tokens=6, gradients=True)
    if generated is None:
        answer, generated = adapter.tokenize_answer(ANSWER), None
    for method in ("tam", "msea_arc", "grad_act"):
        reused = explain(adapter, image, prompt, method=method, grounding=False,
                         traces=SharedTraces(adapter, image, prompt, answer, generated))
        forced = explain(adapter, image, prompt, method=method, grounding=False,
                         traces=SharedTraces(adapter, image, prompt, answer))
        assert np.allclose(reused.grid_maps, forced.grid_maps, atol=1e-4), (method, generated is None)
        assert np.allclose(reused.relevance, forced.relevance, atol=1e-4, equal_nan=True)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenes")
    write_dataset(folder, n=3, seed=0, split="test")
    return folder


def evaluate(scenes, out, *extra):
    result = CliRunner().invoke(app, ["evaluate", "--data", str(scenes), "--methods", ",".join(list_methods()),
                                      "--out", str(out), "--steps", "2", "--device", "cpu", *extra])
    assert result.exit_code == 0, result.output
    rows = {(r["sample_id"], r["method"]): r for r in map(json.loads, (out / "samples.jsonl").read_text().splitlines())}
    return rows, json.loads((out / "summary.json").read_text())


def without_cost(row: dict) -> dict:
    return {key: value for key, value in row.items() if key not in COST_FIELDS}


def test_shared_evaluation_rows_and_summary_equal_one_by_one(scenes, tmp_path):
    """Teacher-forced reference captions: the same traces, shared or each method's own, so equal exactly."""
    shared, shared_summary = evaluate(scenes, tmp_path / "shared", "--answer", "reference")
    separate, separate_summary = evaluate(scenes, tmp_path / "separate", "--answer", "reference", "--cost", "separate")
    assert shared.keys() == separate.keys()
    for key in shared:
        assert without_cost(shared[key]) == without_cost(separate[key]), key
    for method, values in shared_summary["methods"].items():
        other = separate_summary["methods"][method]
        assert without_cost(values) == without_cost(other)
    assert shared_summary["cost"]["mode"] == "shared" and separate_summary["cost"]["mode"] == "separate"
    for row in (r for r in shared.values() if r["method"] in list_methods()):
        assert row["seconds"] == pytest.approx(row["seconds_own"] + row["seconds_forwards"])
        assert row["seconds_own"] >= 0 and row["seconds_forwards"] >= 0


def test_shared_evaluation_reuses_the_generation(scenes, tmp_path):
    rows, summary = evaluate(scenes, tmp_path, "--no-faithfulness")
    generations = [r for r in rows.values() if r["method"] == "generation"]
    assert all(r["states_reused"] for r in generations)  # the bundled tokenizer reads its captions back as given
    tam = [r for r in rows.values() if r["method"] == "tam"]
    assert all(r["seconds_forwards"] == 0 for r in tam)  # its one trace is the generation's
    assert set(summary["cost"]["seconds_own_per_caption"]) == set(list_methods())


def test_one_enlarged_forward_serves_msea_and_the_grounding_score(bundled):
    """The default method's 2x scale is the grounding score's detail view: one forward serves both, and the
    scores are those of the grounding score's own forwards."""
    image = load_image(EXAMPLE)
    image = image.resize((image.width // 2, image.height // 2))  # small enough for a detail view
    assert detail_scale(bundled, image) == 2.0
    with counting_forwards(bundled) as forwards:
        result = explain(bundled, image, "Describe this image.")  # msea_arc, grounding on
    assert result.scales == (1.0, 2.0) and forwards[0] == 2  # the prefill (scale 1) and the 2x pass
    expected = grounding_scores(bundled, image, "Describe this image.", result.token_ids)
    np.testing.assert_allclose(result.grounding, expected, atol=1e-5)
    with counting_forwards(bundled) as forwards:
        explain_many(bundled, image, "Describe this image.", methods=["tam", "msea_arc"])
    assert forwards[0] == 2  # tam's grounding reads the 2x trace msea_arc reads
