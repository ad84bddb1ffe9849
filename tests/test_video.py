"""Video in one prompt (issue 30): frames sampled by the model's video processor, one view and map per group of frames
the model merges, with the frames' times; the files, the filmstrip and the refusals.  That each group's tokens sit in
its view is the layout test's (tests/test_layout.py, for every family that takes video)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from tiny_models import ANSWER, PROMPT, WIDE, build_adapter, make_image

from mllm_explain.data.synth import iter_scenes, render_clip, scene_rng, write_clips
from mllm_explain.errors import UserError
from mllm_explain.pipeline import explain
from mllm_explain.video import Video

VIDEO_PROMPT = "Describe this video."
VIDEO_ANSWER = "There is a small purple triangle."


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from mllm_explain.cli import main; main()", *args],
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two synthetic clips of 8 frames at 2 fps, one object entering at frame 4."""
    out = tmp_path_factory.mktemp("clips")
    write_clips(out, 2, seed=0, split="val")
    return out, json.loads((out / "clips.json").read_text())


def test_each_group_of_frames_has_its_view_and_map(bundled):
    frames = [Image.fromarray(scene.image).resize((224, 224)) for scene in iter_scenes(6, 0, "val")]
    notes = []
    result = explain(bundled, video=frames, fps=2.0, prompt=VIDEO_PROMPT, answer=VIDEO_ANSWER, method="msea",
                     grounding=False, notice=notes.append)
    assert [(view["kind"], view["frames"], view["times"]) for view in result.views] == [
        ("frames", [0, 1], [0.0, 0.5]), ("frames", [2, 3], [1.0, 1.5]), ("frames", [4, 5], [2.0, 2.5])]
    assert result.scales == (1.0,) and notes == [
        "scale 2.0 skipped for this video: a video is explained at scale 1 only (its frames at the video "
        "processor's own size)"]
    assert result.images == [frames[0], frames[2], frames[4]]  # each map is drawn over its group's first frame
    assert [result.frames_of(k)["frames"] for k in range(3)] == [[0, 1], [2, 3], [4, 5]]
    np.testing.assert_allclose(result.image_shares.sum(1), 1.0, atol=1e-6)


def test_clips_show_their_object_from_the_middle_frame_on():
    clip = render_clip(scene_rng(0, "val", 0), frames=8)
    before, after = clip.frames[clip.enters - 1].astype(int), clip.frames[clip.enters].astype(int)
    transient = next(o for o in clip.objects if o.category == clip.transient)
    changed = np.abs(after - before).max(-1) > 30
    assert changed[transient.mask].mean() > 0.5 and changed[~transient.mask].mean() < 0.01
    assert clip.shows(clip.transient) == [False] * 4 + [True] * 4


def test_cli_explains_a_video_file(clips, tmp_path):
    folder, records = clips
    out = tmp_path / "report"
    result = cli("explain", "--video", str(folder / records[0]["video"]), "--prompt", VIDEO_PROMPT, "--method", "tam",
                 "--answer", VIDEO_ANSWER, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "triangle: frames 1-2 " in result.stdout
    tokens = json.loads((out / "tokens.json").read_text())
    assert [image["frames"] for image in tokens["images"]] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert [image["times"] for image in tokens["images"]] == [[0.0, 0.5], [1.0, 1.5], [2.0, 2.5], [3.0, 3.5]]
    strip = Image.open(sorted((out / "words").glob("*.png"))[0])
    assert strip.width == 4 * strip.height  # one square frame per group, side by side
    html = (out / "report.html").read_text()
    assert "Frames 1-2 (0.0-0.5 s)" in html and "Frames 7-8 (3.0-3.5 s)" in html


def test_the_video_processor_samples_the_frames(clips, bundled):
    folder, records = clips
    by_rate = bundled.sample_video(folder / records[0]["video"], fps=1.0)
    assert by_rate.indices == [0, 2, 4, 6] and by_rate.timestamps == [0.0, 1.0, 2.0, 3.0]
    by_count = bundled.sample_video(folder / records[0]["video"], frames=2)
    assert by_count.indices == [0, 4]


@pytest.mark.parametrize(("args", "message"), [
    (["--video", "missing.mp4"], "error: video not found: missing.mp4"),
    (["--video", "{corrupt}"], "error: cannot read video"),
    (["{image}", "--video", "{corrupt}"], "error: give image files or --video, not both"),
    (["{image}", "--fps", "2"], "error: --fps and --frames sample a --video"),
])
def test_bad_video_input_is_one_line(tmp_path, args, message):
    corrupt, image = tmp_path / "corrupt.mp4", tmp_path / "image.png"
    corrupt.write_bytes(b"not a video at all")
    make_image(WIDE).save(image)
    args = [arg.format(corrupt=corrupt, image=image) for arg in args]
    result = cli("explain", *args, "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and result.stderr.strip().startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_family_without_video_refuses_it_in_one_line():
    adapter = build_adapter("paligemma")
    with pytest.raises(UserError, match=r"^paligemma takes no video here"):
        explain(adapter, video=Video.from_frames([make_image(WIDE)] * 2), prompt=PROMPT, answer=ANSWER)


def test_filmstrip_in_a_browser(clips, tmp_path):
    """Selecting a word redraws every group's map and share; clicking a frame enlarges it."""
    from test_report import CHROMIUM, CHROMIUM_ARGS, require_chromium

    require_chromium()
    from playwright.sync_api import sync_playwright

    folder, records = clips
    out = tmp_path / "report"
    assert cli("explain", "--video", str(folder / records[0]["video"]), "--prompt", VIDEO_PROMPT, "--method", "tam",
               "--answer", VIDEO_ANSWER, "--out", str(out)).returncode == 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto((out / "report.html").as_uri())
            page.locator('.token[data-token="3"]').click()
            maps = page.locator(".heatmap")
            assert maps.count() == 4
            assert {maps.nth(k).get_attribute("data-shown-token") for k in range(4)} == {"3"}
            shares = [float(page.locator(".share").nth(k).text_content().split("%")[0]) for k in range(4)]
            assert abs(sum(shares) - 100) < 0.5
            frame = page.locator(".filmstrip").nth(2)
            small = frame.locator("img.picture").bounding_box()["width"]
            frame.locator(".stack").click()
            assert "enlarged" in frame.get_attribute("class")
            assert frame.locator("img.picture").bounding_box()["width"] > 2 * small
            assert not errors
        finally:
            browser.close()


@pytest.mark.parametrize(("name", "setting", "message"), [
    ("glm4v", {"frames": 4}, "glm4v's video processor samples frames by its rate, not by a count"),
    ("glm46v", {"fps": 1.0}, "glm46v's video processor picks its own frame rate from the clip's length"),
])
def test_a_sampler_setting_the_video_processor_ignores_is_refused(clips, name, setting, message):
    """GLM's samplers take no frame count (GLM-4.6V's not even a rate): asked for one, they refuse in one line
    instead of sampling otherwise; what they take is applied."""
    folder, records = clips
    adapter = build_adapter(name)
    with pytest.raises(UserError, match=f"^{message}"):
        adapter.sample_video(folder / records[0]["video"], **setting)
    assert build_adapter("glm4v").sample_video(folder / records[0]["video"], fps=1.0).indices == [0, 2, 4, 6]


def test_data_clips_writes_clips_and_refuses_an_unknown_split(tmp_path):
    done = cli("data", "clips", "--out", str(tmp_path / "clips"), "--n", "1", "--frames", "4")
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "clips" / "clips.json").read_text())[0]
    assert record["frames"] == 4 and record["enters"] == 2 and (tmp_path / "clips" / record["video"]).stat().st_size
    refused = cli("data", "clips", "--out", str(tmp_path / "other"), "--split", "nope")
    assert refused.returncode == 2 and refused.stderr.startswith("error: unknown split 'nope'")
