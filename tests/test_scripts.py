"""The scripts behind docs/RESULTS.md run on the bundled model at toy sizes, so a change in the library
cannot leave them broken until the next time someone reproduces a table."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mllm_explain.data.synth import write_dataset

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenes") / "val"
    write_dataset(folder, n=3, seed=1, split="val")
    return folder


def _run(script: str, *args) -> str:
    done = subprocess.run([sys.executable, str(SCRIPTS / script), *map(str, args)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_msea_diagnostic_scores_every_map_it_names(scenes, tmp_path):
    out = tmp_path / "diagnostic.json"
    table = _run("msea_diagnostic.py", "--data", scenes, "--out", out, "--draws", 50)
    result = json.loads(out.read_text())
    assert list(result) == ["tam 1x", "tam 0.75x alone", "tam 1.5x alone", "1x map at 0.75x grid",
                            "1.5x map at 1x grid", "msea"]
    assert all(0 <= r[key] <= 1 for r in result.values() for key in ("obj_iou", "func_iou", "precision", "recall"))
    assert result["tam 1.5x alone"]["obj_iou"] != result["tam 1x"]["obj_iou"]  # an enlarged input, not scale 1 again
    assert all(e["minus_tam_1x"] == 0 for e in result["tam 1x"]["obj_iou_by_size"].values())
    assert sum(e["n"] for e in result["tam 1x"]["obj_iou_by_size"].values()) > 0
    assert table.count("\n| ") == len(result) + 1


def test_grounding_design_writes_features_per_noun(scenes, tmp_path):
    out = tmp_path / "design.json"
    _run("grounding_design.py", scenes, "--out", out)
    rows = json.loads(out.read_text())
    assert set(rows) == {"1.0", "0.5"}
    assert all(isinstance(row["hallucinated"], bool) for scale in rows.values() for row in scale)
    assert all(0 <= row[f"probability_{s}"] <= 1 for scale in rows.values() for row in scale for s in ("1.5", "2"))


@pytest.mark.parametrize("script, args", [
    ("msea_diagnostic.py", ["--data", "no-such-folder"]),
    ("interpolate_weights.py", ["no-such-base", "no-such-tuned", "--alpha", "0.5", "--out", "mix"]),
    ("tam_eval_fixture.py", ["--tam-repo", "no-such-clone", "--nltk-data", ".", "--out", "mix"]),
    ("models_table.py", ["--check", "no-such-readme.md"]),
])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, script, args):
    done = subprocess.run([sys.executable, str(SCRIPTS / script), *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in done.stderr
    assert not (tmp_path / "mix").exists()


def test_several_images_reports_shares_for_images_and_clips():
    result = json.loads(_run("several_images.py", "--pairs", 2, "--clips", 1, "--methods", "tam"))
    assert set(result) == {"images", "video"}
    images = result["images"]["tam"]
    assert images["nouns"] > 0 and 0 <= images["mean_share"] <= 1 and 0 < images["mean_token_share"] < 1


def test_video_scaling_measures_each_frame_count():
    result = json.loads(_run("video_scaling.py", "--frames", "2,4", "--methods", "logit_lens"))
    points = result["methods"]["logit_lens"]["points"]
    assert [p["frames"] for p in points] == [2, 4] and points[1]["vision_tokens"] == 2 * points[0]["vision_tokens"]
