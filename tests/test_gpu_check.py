"""scripts/gpu_check.py at toy sizes on the CPU (what a CPU-only machine runs), and the full-size
configs it builds for the GPU checked without building them: parameter counts and vision tokens."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import gpu_check  # noqa: E402

from mllm_explain import list_methods  # noqa: E402


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    return out, gpu_check.main(["--toy", "--out", str(out), "--models", "Qwen2-VL-7B,LLaVA-1.5-7B,InternVL3-8B"])


def test_toy_run_writes_its_tables(report):
    out, result = report
    assert json.loads((out / "gpu_check.json").read_text()) == json.loads(json.dumps(result))
    table = (out / "gpu_check.md").read_text()
    assert result["mode"] == "toy"
    assert [m["model"] for m in result["models"]] == ["Qwen2-VL-7B", "LLaVA-1.5-7B", "InternVL3-8B"]
    for model in result["models"]:
        assert [r["method"] for r in model["methods"]] == [*list_methods(), "msea_arc, 3 scales",
                                                            "tam + grounding score"]
        for row in model["methods"]:
            assert row["finite"] and row["tokens"] == 16 and row["seconds"] > 0
            assert row["time_ratio"] == pytest.approx(row["seconds"] / model["generate"]["seconds"])
        assert f"**{model['model']}**" in table
    assert table.count("| msea_arc, 3 scales |") == 3
    assert all(m["sharing"]["forwards"] == {"one_by_one": 11, "shared": 4} for m in result["models"])
    assert result["models"][2]["views"] == 13  # the toy InternVL tiles the 168x126 image too: 12 tiles + thumbnail


def test_bfloat16_maps_are_within_the_tolerance(report):
    rows = {r["method"]: r for r in report[1]["bf16_vs_float32"]}
    assert set(rows) == set(list_methods())
    assert all(r["within"] for r in rows.values() if r["checked"])
    assert not rows["grad_act"]["checked"] and rows["tam"]["max_abs_diff"] > 0  # two precisions, not one


@pytest.mark.parametrize("name", list(gpu_check.MODELS))
def test_full_size_configs_match_the_checkpoints(report, name):
    counted = report[1]["parameter_counts"][name]
    assert counted == pytest.approx(gpu_check.PARAMETERS[name], rel=0.005)
    spec = gpu_check.MODELS[name]
    _, config, processor = gpu_check.BUILDERS[spec["family"]](spec)
    chat = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}]
    inputs = processor(images=[gpu_check.random_image(spec["image"])],
                       text=[processor.apply_chat_template(chat, add_generation_prompt=True)], return_tensors="pt")
    token = getattr(config, "image_token_id", None) or config.image_token_index
    assert int((inputs["input_ids"] == token).sum()) == gpu_check.VISION_TOKENS[spec["family"]]
