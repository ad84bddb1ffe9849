"""Where and in what precision a model runs: the `--device` and `--dtype` of every command, checked
once here so that a bad value is one line `error: ...` (exit code 2), never a traceback."""

from __future__ import annotations

import numpy as np
import torch

from mllm_explain.errors import UserError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16,
          "fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

# How far a bfloat16 model's maps (in [0, 1]) may be from the float32 model's: maps are computed in
# float32, but the hidden states they read carry bfloat16's 8-bit mantissa.  Measured on the bundled
# model: logit_lens 0.027, tam 0.010, arc 0.007, msea 0.010, attention 0.026.  grad_act is left out: its
# gradients are taken in the model's precision and differ by up to 1.0 in bfloat16.
BF16_MAP_ATOL = 0.05
BF16_UNCHECKED_METHODS = ("grad_act",)
# ARC's threshold form is discontinuous: a context token whose RBO lies near tau can enter or leave
# the interference when bfloat16 moves a ranking, which changes that answer token's whole map.
# Measured on the bundled model: `msea_arc` differs by up to 0.11 on one token of ten (2.2% of the
# cells), 0.003 on average.  For these methods the average difference is what is bounded.
BF16_DISCONTINUOUS_METHODS = ("arc", "msea_arc")
BF16_MAP_MEAN_ATOL = 0.01


def bf16_maps_agree(method: str, half: np.ndarray, full: np.ndarray) -> bool:
    """Whether a bfloat16 model's maps are within the stated tolerance of the float32 model's."""
    difference = np.abs(half - full)
    if method in BF16_DISCONTINUOUS_METHODS:
        return bool(difference.mean() <= BF16_MAP_MEAN_ATOL)
    return bool(difference.max() <= BF16_MAP_ATOL)


def resolve_device(name: str | torch.device | None) -> torch.device:
    """`None`: CUDA when present, else the CPU."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise UserError(f"unsupported device {name!r}; use cpu, cuda or cuda:N")
    return device


def resolve_dtype(name: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """The weights' precision; `None`: bfloat16 on CUDA (half the memory, the speed of tensor cores),
    float32 on the CPU (where bfloat16 matmuls are slow on most processors)."""
    if isinstance(name, torch.dtype):
        if name not in DTYPES.values():
            raise UserError(f"unsupported dtype {name}; use {', '.join(list(DTYPES)[:3])}")
        return name
    if name is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    dtype = DTYPES.get(name.lower())
    if dtype is None:
        raise UserError(f"unknown dtype {name!r}; use {', '.join(list(DTYPES)[:3])}")
    return dtype
