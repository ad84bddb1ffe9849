"""The benchmark's cheap, deterministic parts: its equality checks, its exponent fit, its CLI errors.

Nothing here asserts a time: performance is measured by `mllm-explain bench`, not by timed tests.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from tiny_models import PROMPT, WIDE, build_adapter, make_image

from mllm_explain.adapters.base import LOGIT_BLOCK_BYTES
from mllm_explain.bench import (
    FILTER_ATOL,
    MAP_ATOL,
    filter_case,
    fit_exponent,
    naive_tam,
    tam_maps,
    trace_memory,
)
from mllm_explain.memory import PROJECTIONS, method_work_bytes, trace_bytes


@pytest.mark.parametrize("side", [1, 2, 9])
def test_filter_case_checks_our_filter_against_the_per_pixel_loop(side):
    result = filter_case(side, batch=3, n_reference=3, min_time=0.0)
    assert result["reference_maps"] == 3
    assert 0 <= result["max_abs_diff"] <= FILTER_ATOL
    assert result["ratio_single"] > 0 and result["ratio_batched"] > 0


def test_naive_pipeline_gives_our_tam_maps_on_a_tiny_model():
    adapter = build_adapter("qwen2_vl")
    image = make_image(WIDE)
    naive = naive_tam(adapter, image, PROMPT, n_tokens=6)
    assert len(naive.answer_ids) == 6
    ours = tam_maps(adapter, image, PROMPT, naive.answer_ids).double().numpy()
    assert ours.shape == naive.maps.shape == (6, 4, 6)
    assert naive.maps.max() > 0  # the comparison is not between two blank stacks
    np.testing.assert_allclose(ours, naive.maps, rtol=0, atol=MAP_ATOL)
    vocabulary = adapter.unembedding.shape[0]
    assert naive.logit_elements == (naive.sequence_length - 1) * vocabulary  # every position, every round


@pytest.mark.parametrize("power, scale", [(1.0, 3.0), (2.0, 0.5), (0.5, 10.0)])
def test_fit_exponent_recovers_a_power_law(power, scale):
    x = np.array([16, 32, 64, 128, 256])
    assert fit_exponent(x, scale * x**power) == pytest.approx(power, abs=1e-9)


def test_bench_refuses_a_file_as_output_folder_in_one_line(tmp_path):
    target = tmp_path / "bench.json"
    target.write_text("{}")
    result = subprocess.run([sys.executable, "-c", "from mllm_explain.cli import main; main()", "bench", "--quick",
                             "--out", str(target)], check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "is a file" in errors[0], result.stderr


def test_trace_bytes_are_predicted_from_the_sizes_on_a_tiny_model():
    adapter = build_adapter("llava")
    answer = adapter.tokenize_answer(" a red square on a blue field")
    memory = trace_memory(adapter, make_image(WIDE), PROMPT, answer)
    row = memory["measured"]
    assert row["answer"] == len(answer) and row["vision"] == 36 and row["hidden"] == 64
    assert row["nbytes"] == {"plain": row["trace_bytes"], "with_attention": row["trace_bytes_with_attention"]}
    assert row["trace_bytes"] >= 4 * row["hidden"] * row["length"]  # the states of every position dominate
    assert row["trace_bytes_with_attention"] - row["trace_bytes"] == 4 * row["answer"] * row["length"]


def test_projections_grow_with_the_sizes():
    sizes = PROJECTIONS["Qwen2-VL-7B, 1200 vision tokens"]
    assert sizes.length == 1200 + 128 + sizes.prompt + sizes.template
    assert trace_bytes(sizes) > 4 * 3584 * 1356 - 1  # float32 states of L positions
    assert trace_bytes(replace(sizes, vocabulary=10)) == trace_bytes(sizes)  # never full-vocabulary logits
    logits = 4 * (128 + 8 + 128) * 152064  # float32 logits at the T predicting and the P + T context positions
    assert logits < method_work_bytes(sizes) < logits + 2 * LOGIT_BLOCK_BYTES  # and one float32 block of W
    assert method_work_bytes(sizes) < 4 * 152064 * 3584 / 5  # no float32 copy of the whole W (V x d)
    assert trace_bytes(replace(sizes, vision=2400)) > trace_bytes(sizes)


def test_sharing_counts_the_forwards_the_issue_counted():
    """Section 6 on the bundled model: 11 full forwards for a sample's generation and seven methods one by one
    (prefill, one scale-1 pass per method, msea's and msea_arc's 2x passes, grad_act's gradient pass), 4 shared."""
    from mllm_explain.adapters import load_model
    from mllm_explain.bench import EXAMPLE_IMAGE, memory_measure, sharing_case
    from mllm_explain.images import load_image

    adapter = load_model(device="cpu")
    result = sharing_case(adapter, load_image(EXAMPLE_IMAGE), "Describe this image.", 16, 1, memory_measure())
    assert result["forwards"] == {"one_by_one": 11, "shared": 4}
    assert set(result["explain_with_generation"]) == {"tam", "msea_arc"}
    assert result["speed_up"] > 0 and result["answer_tokens"] >= 1
