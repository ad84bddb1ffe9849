"""Device and precision: defaults, refusals, and a bfloat16 model explained on the CPU with maps
computed in float32 that agree with the float32 model's."""

from pathlib import Path

import numpy as np
import pytest
import torch

from mllm_explain import explain
from mllm_explain.adapters import load_model
from mllm_explain.devices import BF16_MAP_ATOL, bf16_maps_agree, resolve_device, resolve_dtype
from mllm_explain.errors import UserError

BF16_METHODS = ("logit_lens", "msea_arc", "attention")
ANSWER = "There is a red ring and a blue square."


def test_defaults_follow_the_device():
    assert resolve_dtype(None, torch.device("cpu")) == torch.float32
    assert resolve_dtype(None, torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("call, fragment", [
    (lambda: resolve_dtype("int8", torch.device("cpu")), "unknown dtype 'int8'"),
    (lambda: resolve_dtype(torch.int8, torch.device("cpu")), "unsupported dtype"),
    (lambda: resolve_device("mps"), "unsupported device"),
    (lambda: load_model(dtype="half-ish"), "unknown dtype"),
])
def test_bad_values_are_user_errors(call, fragment):
    with pytest.raises(UserError, match=fragment):
        call()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_without_cuda_is_refused():
    with pytest.raises(UserError, match="CUDA is not available"):
        load_model(device="cuda")


@pytest.fixture(scope="module")
def bf16_model():
    return load_model(device="cpu", dtype="bfloat16")


def test_load_model_keeps_the_requested_precision(bf16_model, bundled):
    assert bf16_model.model.dtype == torch.bfloat16 and bf16_model.device.type == "cpu"
    assert bundled.model.dtype == torch.float32  # the CPU default


@pytest.mark.parametrize("method", BF16_METHODS)
def test_bfloat16_maps_agree_with_float32(bf16_model, bundled, method):
    from mllm_explain.bench import EXAMPLE_IMAGE

    half = explain(bf16_model, EXAMPLE_IMAGE, "Describe this image.", answer=ANSWER, method=method)
    full = explain(bundled, EXAMPLE_IMAGE, "Describe this image.", answer=ANSWER, method=method)
    assert half.grid_maps.dtype == np.float32 and half.grid_maps.shape == full.grid_maps.shape
    assert full.grid_maps.max() > 0.5  # not two blank stacks
    assert bf16_maps_agree(method, half.grid_maps, full.grid_maps), np.abs(half.grid_maps - full.grid_maps).max()


def test_explain_command_runs_a_bfloat16_model_on_the_cpu(bundled, tmp_path):
    from mllm_explain.bench import EXAMPLE_IMAGE
    from mllm_explain.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["explain", str(EXAMPLE_IMAGE), "--device", "cpu", "--dtype", "bfloat16", "--method", "tam",
              "--answer", ANSWER, "--out", str(tmp_path)])
    assert exit_.value.code == 0
    maps = np.load(Path(tmp_path) / "maps.npz")["grid_maps"]
    full = explain(bundled, EXAMPLE_IMAGE, "Describe this image.", answer=ANSWER, method="tam")
    assert maps.dtype == np.float32 and maps.shape == full.grid_maps.shape
    np.testing.assert_allclose(maps, full.grid_maps, rtol=0, atol=BF16_MAP_ATOL)
