"""Device and precision: defaults, refusals, a bfloat16 model explained on the CPU with maps
computed in float32 that agree with the float32 model's, and float32 logits made a block of W at a
time, never from a float32 copy of the whole W."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import build_adapter

from mllm_explain import explain
from mllm_explain.adapters import load_model
from mllm_explain.devices import BF16_MAP_ATOL, bf16_maps_agree, resolve_device, resolve_dtype
from mllm_explain.errors import UserError
from mllm_explain.methods import list_methods

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


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_logits_in_vocabulary_blocks_equal_the_full_float32_logits(dtype):
    adapter = build_adapter("llava")
    adapter.model.to(dtype)
    W = adapter.unembedding.detach().float()
    vocabulary = len(W)
    assert vocabulary % 7, "a block size that does not divide V is tried"
    states = torch.randn(5, W.shape[1], generator=torch.Generator().manual_seed(0))
    for rows in (1, 7, vocabulary - 1, vocabulary, vocabulary + 5, None):
        logits = adapter.logits(states, block_rows=rows)
        assert logits.dtype == torch.float32 and logits.device.type == "cpu"
        torch.testing.assert_close(logits, states @ W.T, rtol=1e-6, atol=1e-6)
    ids = torch.tensor([vocabulary - 1, 0, 3])
    assert torch.equal(adapter.unembed_rows(ids), W[ids])


def _watched(W: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
    """W as a tensor that records every float32 tensor of W's full shape made from it: a float32 copy
    of the whole LM head, however it is made (.float(), .to, a float32 matmul operand ...)."""
    copies: list[str] = []

    class Watched(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            result = super().__torch_function__(func, types, args, kwargs or {})
            if (isinstance(result, torch.Tensor) and result.dtype == torch.float32
                    and sorted(result.shape) == sorted(W.shape)):
                copies.append(getattr(func, "__name__", str(func)))
            return result

    return W.detach().as_subclass(Watched), copies


def test_no_method_makes_a_float32_copy_of_the_whole_unembedding(bf16_model, monkeypatch):
    from mllm_explain.bench import EXAMPLE_IMAGE

    watched, copies = _watched(bf16_model.unembedding)
    monkeypatch.setattr(type(bf16_model), "unembedding", property(lambda _self: watched))
    rows = 100  # blocks of 100 rows, fewer than V: a block is never the whole W
    monkeypatch.setattr("mllm_explain.adapters.base.LOGIT_BLOCK_BYTES", 4 * watched.shape[1] * rows)
    assert len(watched) > rows
    for method in list_methods():
        explain(bf16_model, EXAMPLE_IMAGE, "Describe this image.", answer=ANSWER, method=method)
    image = Image.open(EXAMPLE_IMAGE).convert("RGB")
    bf16_model.answer_probabilities([image], "Describe this image.", bf16_model.tokenize_answer(ANSWER))
    assert copies == []


def test_the_watch_sees_a_float32_copy_of_the_whole_unembedding(bf16_model):
    watched, copies = _watched(bf16_model.unembedding)
    watched.float()
    assert copies == ["float"]
