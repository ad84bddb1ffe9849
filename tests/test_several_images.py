"""Several images in one prompt (issue 30): each image's views and maps, which image a word draws on, the files and
the report, and a one-line refusal where a family's placement of several images is not verified.  That each image's
tokens sit in its own views is the layout test's (tests/test_layout.py, for every family that takes several)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import ANSWER, PROMPT, WIDE, build_adapter, make_image
from typer.testing import CliRunner

from mllm_explain.cli import app
from mllm_explain.data.synth import iter_scenes
from mllm_explain.errors import UserError
from mllm_explain.methods.base import normalise_rows
from mllm_explain.pipeline import explain, explain_many

SCENE_PROMPT = "Describe the second image."
SCENE_ANSWER = "There is a small purple triangle."


@pytest.fixture(scope="module")
def scenes() -> list[Image.Image]:
    return [Image.fromarray(scene.image) for scene in iter_scenes(2, 0, "val")]


def test_each_image_has_its_views_and_maps(bundled, scenes):
    result = explain(bundled, scenes, SCENE_PROMPT, answer=SCENE_ANSWER, method="tam", grounding=False)
    assert result.images == scenes and result.image is scenes[0]
    assert [view["image_index"] for view in result.views] == [0, 1]
    assert [maps.shape[1:] for maps in result.image_grid_maps] == [tuple(view["grid"]) for view in result.views]
    assert result.grid_maps is result.image_grid_maps[0]
    np.testing.assert_allclose(result.image_shares.sum(1), 1.0, atol=1e-6)
    second = result.for_image(1)
    assert second.image is scenes[1] and second.views == [result.views[1]]
    np.testing.assert_array_equal(second.grid_maps, result.image_grid_maps[1])
    assert second.word_map(0).shape == (scenes[1].height, scenes[1].width)


def test_image_shares_are_each_images_part_of_the_map_mass(bundled, scenes):
    result = explain(bundled, scenes, SCENE_PROMPT, answer=SCENE_ANSWER, method="logit_lens", grounding=False)
    mass = np.stack([maps.sum(axis=(1, 2)) for maps in result.image_grid_maps], 1)
    np.testing.assert_allclose(result.image_shares, mass / mass.sum(1, keepdims=True), rtol=1e-5)
    assert (result.image_shares.max(1) < 1).all()  # both images hold part of every token's map


def test_each_image_normalised_alone_on_request(bundled, scenes):
    joint = explain(bundled, scenes, SCENE_PROMPT, answer=SCENE_ANSWER, method="tam", grounding=False)
    each = explain(bundled, scenes, SCENE_PROMPT, answer=SCENE_ANSWER, method="tam", grounding=False,
                   image_normalise="each")
    assert joint.options["image_normalise"] == "joint" and each.options["image_normalise"] == "each"
    for together, alone in zip(joint.image_grid_maps, each.image_grid_maps):
        expected = normalise_rows(torch.from_numpy(together).flatten(1)).view(together.shape)
        np.testing.assert_allclose(alone, expected.numpy(), atol=1e-6)
    assert not np.allclose(joint.image_grid_maps[1], each.image_grid_maps[1])  # joint keeps one scale per token


def test_explain_many_shares_the_forwards_of_several_images(bundled, scenes):
    many = explain_many(bundled, scenes, SCENE_PROMPT, answer=SCENE_ANSWER, methods=["tam", "msea"], grounding=False)
    for name, result in many.items():
        alone = explain(bundled, scenes, SCENE_PROMPT, answer=SCENE_ANSWER, method=name, grounding=False)
        for shared, own in zip(result.image_grid_maps, alone.image_grid_maps):
            np.testing.assert_allclose(shared, own, atol=1e-6)


def test_cli_explains_several_images(bundled, scenes, tmp_path):
    paths = []
    for k, scene in enumerate(scenes):
        paths.append(tmp_path / f"scene{k}.png")
        scene.save(paths[-1])
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["explain", *map(str, paths), "--prompt", SCENE_PROMPT, "--answer", SCENE_ANSWER,
                                      "--method", "tam", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert re.search(r"triangle: image 1 \d+%, image 2 \d+%", result.stdout)
    tokens = json.loads((out / "tokens.json").read_text())
    assert [image["size"] for image in tokens["images"]] == [list(scene.size) for scene in scenes]
    assert all(len(token["image_shares"]) == 2 for token in tokens["tokens"])
    arrays = np.load(out / "maps.npz")
    assert arrays["grid_maps_1"].shape[0] == arrays["grid_maps"].shape[0] == len(tokens["tokens"])
    assert list(arrays["image_size_1"]) == list(scenes[1].size) and arrays["image_shares"].shape[1] == 2
    html = (out / "report.html").read_text()
    assert html.count('class="image-panel"') == 2
    words = sorted(path.name for path in (out / "words").glob("*.png"))
    assert words[:2] == ["000_There_image1.png", "000_There_image2.png"]


def test_a_family_that_takes_one_image_refuses_two_in_one_line():
    adapter = build_adapter("paligemma")
    images = [make_image(WIDE), make_image(WIDE, seed=1)]
    with pytest.raises(UserError, match=r"^paligemma takes one image per prompt here \(2 given\)") as info:
        explain(adapter, images, PROMPT, answer=ANSWER, method="tam")
    assert "\n" not in str(info.value)


def test_no_image_is_refused(bundled):
    with pytest.raises(UserError, match="no image given"):
        explain(bundled, [], SCENE_PROMPT, answer=SCENE_ANSWER)
