"""Every family as a new user runs it: its tiny model saved with `save_pretrained`, then `caption`, `explain` and
`evaluate` from that folder through the CLI; and the default method explains every image size the processor
accepts (small, both aspect ratios, an extreme one, one that makes several tiles)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_models import ANSWER, FAMILIES, PROMPT, TALL, WIDE, build_adapter, make_image
from typer.testing import CliRunner

from mllm_explain import explain, load_model
from mllm_explain.cli import app
from mllm_explain.data.synth import write_dataset
from mllm_explain.errors import UserError
from mllm_explain.images import load_image


@pytest.fixture(scope="module", params=list(FAMILIES))
def saved(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    adapter = build_adapter(request.param)
    adapter.full_model.save_pretrained(folder)
    adapter.processor.save_pretrained(folder)
    return request.param, folder


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenes")
    write_dataset(folder, n=1, seed=0, split="test")
    return folder


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.output


def test_caption_explain_evaluate_from_a_saved_folder(saved, scenes, tmp_path):
    name, folder = saved
    image = tmp_path / "wide.png"
    make_image(WIDE).save(image)
    run("caption", str(image), "--model", str(folder), "--max-new-tokens", "4", "--device", "cpu")
    out = tmp_path / "report"
    run("explain", str(image), "--model", str(folder), "--answer", ANSWER, "--out", str(out), "--device", "cpu")
    tokens = json.loads((out / "tokens.json").read_text())
    assert [(v["kind"], tuple(v["grid"]), tuple(v["image_box"])) for v in tokens["views"]] == FAMILIES[name].views
    arrays = np.load(out / "maps.npz")
    assert np.isfinite(arrays["grid_maps"]).all()
    if len(tokens["views"]) > 1:  # each view's own maps, and the views drawn on the page
        assert all(arrays[f"view_maps_{i}"].shape[1:] == tuple(v["grid"]) for i, v in enumerate(tokens["views"]))
        assert (out / "report.html").read_text().count('class="tile views-outline"') == sum(
            v["kind"] == "tile" for v in tokens["views"])
    evaluation = tmp_path / "evaluation"
    run("evaluate", "--data", str(scenes), "--methods", "tam", "--model", str(folder), "--out", str(evaluation),
        "--steps", "2", "--answer", "reference", "--device", "cpu")
    rows = [json.loads(line) for line in (evaluation / "samples.jsonl").read_text().splitlines()]
    assert {row["method"] for row in rows} >= {"tam"}
    adapter = load_model(folder, device="cpu")
    scene = next((scenes / "image").iterdir())
    views = adapter.trace(load_image(scene), "a", adapter.tokenize_answer(ANSWER)).views
    assert [row["views"] for row in rows if row["method"] == "tam"] == [len(views)]


@pytest.fixture(scope="module")
def loaded(saved):
    return load_model(saved[1], device="cpu")


@pytest.mark.parametrize("size", [(40, 30), WIDE, TALL, (400, 60), "large"])
def test_the_default_method_explains_every_size_the_processor_takes(saved, loaded, size):
    size = FAMILIES[saved[0]].large if size == "large" else size
    image = make_image(size)
    try:
        loaded.encode(loaded.scaled_image(image, 1.0)[0], PROMPT)
    except UserError:
        pytest.skip(f"the processor refuses a {size[0]}x{size[1]} image")
    notes: list[str] = []
    result = explain(loaded, image, PROMPT, answer=ANSWER, grounding=False, notice=notes.append)
    assert result.scales and np.isfinite(result.grid_maps).all() and result.image_maps.shape[1:] == image.size[::-1]
    assert len(notes) == 2 - len(result.scales)  # msea_arc's two scales: each one skipped is named
