"""End to end on the bundled model: `mllm-explain explain` writes a complete report."""

import json
import subprocess
import sys

import numpy as np
import pytest


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    result = subprocess.run([sys.executable, "-c", "from mllm_explain.cli import main; main()", "explain",
                             "examples/scene.png", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return out, result.stdout.strip()


def test_explain_writes_maps_tokens_pngs_and_html(report):
    out, answer = report
    tokens = json.loads((out / "tokens.json").read_text())
    assert tokens["answer"] == answer and tokens["method"] == "msea_arc"
    n = len(tokens["tokens"])
    maps = np.load(out / "maps.npz")
    assert maps["grid_maps"].shape == (n, *tokens["grid"]) and np.isfinite(maps["grid_maps"]).all()
    assert maps["image_size"].tolist() == tokens["image_size"] and maps["image_box"].tolist() == tokens["image_box"]
    assert maps["relevance"].shape == (n, len(tokens["context_tokens"]))
    assert len(list((out / "words").glob("*.png"))) == len(tokens["words"])
    html = (out / "report.html").read_text()
    assert html.count('class="token"') >= n and "http://" not in html and "https://" not in html


def test_teacher_forced_answer_is_explained_as_given(tmp_path):
    text = "There is a red ring."
    result = subprocess.run([sys.executable, "-c", "from mllm_explain.cli import main; main()", "explain",
                             "examples/scene.png", "--answer", text, "--method", "tam", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    tokens = json.loads((tmp_path / "tokens.json").read_text())
    assert tokens["answer"] == text
    assert tokens["words"] == ["There", "is", "a", "red", "ring", "."]


def test_characters_split_over_tokens_are_printed_stored_and_shown_whole(tmp_path):
    text = "There is a 赤い ring 🐱."
    result = subprocess.run([sys.executable, "-c", "from mllm_explain.cli import main; main()", "explain",
                             "examples/scene.png", "--answer", text, "--method", "tam", "--out", str(tmp_path)],
                            capture_output=True, text=True, encoding="utf-8", timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == text
    tokens = json.loads((tmp_path / "tokens.json").read_text(encoding="utf-8"))
    assert tokens["answer"] == text and tokens["words"][-4:] == ["赤い", "ring", "🐱", "."]
    assert "".join(t["text"] for t in tokens["tokens"]) == text
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "\ufffd" not in html and "赤い" in html and "🐱" in html


def test_a_rotated_photo_is_explained_and_shown_upright(bundled, tmp_path):
    """A JPEG stored a quarter turn off with its EXIF orientation: the maps are those of the upright
    image (not of the stored pixels), and the report's word pictures are upright."""
    from PIL import Image
    from test_images import rotated_jpeg

    from mllm_explain import explain, save_report
    from mllm_explain.images import load_image

    upright = load_image("examples/scene.png").resize((200, 150))  # wide, so a turned image would be tall
    photo = rotated_jpeg(upright, tmp_path / "photo.jpg")
    options = dict(answer="There is a red ring.", method="logit_lens", grounding=False)
    got = explain(bundled, photo, "Describe this image.", **options)
    want = explain(bundled, upright, "Describe this image.", **options)
    assert got.image.size == (200, 150) and got.grid_maps.shape == want.grid_maps.shape
    assert np.corrcoef(got.grid_maps.ravel(), want.grid_maps.ravel())[0, 1] > 0.95  # JPEG's error only
    save_report(got, tmp_path / "got")
    save_report(want, tmp_path / "want")
    for name in ("003_red.png", "004_ring.png"):
        shown, expected = (np.asarray(Image.open(tmp_path / folder / "words" / name), dtype=float)
                           for folder in ("got", "want"))
        assert shown.shape == expected.shape == (150, 200, 3)
        assert np.abs(shown - expected).mean() < 6
