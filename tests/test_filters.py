"""The vectorised rank Gaussian filter against its per-pixel reference, plus hand-computed values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mllm_explain.methods.filters import _SORT9, rank_gaussian_filter, rank_gaussian_filter_reference

ATOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def _check_against_reference(grid: np.ndarray, dtype: torch.dtype) -> None:
    out = rank_gaussian_filter(torch.as_tensor(grid, dtype=dtype))
    assert out.dtype == dtype and out.shape == grid.shape
    expected = rank_gaussian_filter_reference(grid.astype(np.float32 if dtype == torch.float32 else np.float64))
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=ATOL[dtype])


@settings(max_examples=50, deadline=None)
@given(
    grid=arrays(
        np.float64,
        st.tuples(st.integers(2, 12), st.integers(2, 12)),
        elements=st.floats(-10, 10, allow_nan=False, allow_infinity=False, allow_subnormal=False),
    ),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_matches_reference_on_random_maps(grid: np.ndarray, dtype: torch.dtype) -> None:
    _check_against_reference(grid, dtype)


@pytest.mark.parametrize("shape", [(5, 9), (9, 5), (1, 7), (7, 1), (1, 1), (2, 2), (3, 3), (24, 24)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_reference_on_grid_shapes(shape: tuple[int, int], dtype: torch.dtype) -> None:
    rng = np.random.default_rng(sum(shape))
    _check_against_reference(rng.uniform(-0.5, 1.0, shape), dtype)
    _check_against_reference(rng.uniform(0.0, 1.0, shape), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_zero_and_constant_maps(dtype: torch.dtype) -> None:
    zeros = torch.zeros(4, 6, dtype=dtype)
    assert torch.equal(rank_gaussian_filter(zeros), zeros)
    constant = torch.full((4, 6), 0.3, dtype=dtype)
    torch.testing.assert_close(rank_gaussian_filter(constant), constant, rtol=0, atol=ATOL[dtype])
    negative = torch.full((4, 6), -2.0, dtype=dtype)
    assert torch.equal(rank_gaussian_filter(negative), torch.zeros_like(negative))
    for grid in (zeros, constant, negative):
        _check_against_reference(grid.numpy(), dtype)


def test_batched_maps_match_per_map_reference() -> None:
    maps = torch.rand(2, 3, 5, 7, dtype=torch.float64) - 0.2
    out = rank_gaussian_filter(maps)
    assert out.shape == maps.shape
    for index in np.ndindex(2, 3):
        np.testing.assert_allclose(out[index].numpy(), rank_gaussian_filter_reference(maps[index].numpy()),
                                   rtol=0, atol=1e-10)


def test_hand_computed_centre_and_corner() -> None:
    grid = np.ones((3, 3))
    grid[1, 1] = 10.0
    out = rank_gaussian_filter(torch.as_tensor(grid))
    # Centre window: eight 1s and one 10.  mu = 18/9 = 2, variance = (8 + 100)/9 - 4 = 8, sigma = 2*sqrt(2),
    # s = sqrt(2), so g(u) = exp(-u^2/4); only the top rank (u = 4) holds 10:
    # out = (sum_u g(u) + 9 g(4)) / sum_u g(u) = 1 + 9 e^-4 / (1 + 2(e^-1/4 + e^-1 + e^-9/4 + e^-4)).
    norm = 1 + 2 * (math.exp(-1 / 4) + math.exp(-1) + math.exp(-9 / 4) + math.exp(-4))
    assert out[1, 1].item() == pytest.approx(1 + 9 * math.exp(-4) / norm, abs=1e-12)
    # Corner (0, 0) with reflect padding sees rows {1, 0, 1} x cols {1, 0, 1}: the centre 10 four times,
    # 1 five times.  mu = 45/9 = 5, variance = (5 + 400)/9 - 25 = 20, s = sqrt(20)/5, 2 s^2 = 8/5:
    # g(u) = exp(-5 u^2 / 8), ranks u = 1..4 hold 10, u = -4..0 hold 1.
    g = {u: math.exp(-5 * u * u / 8) for u in range(-4, 5)}
    corner = (sum(g[u] for u in range(-4, 1)) + 10 * sum(g[u] for u in range(1, 5))) / sum(g.values())
    assert out[0, 0].item() == pytest.approx(corner, abs=1e-12)


def test_non_positive_window_mean_gives_zero() -> None:
    grid = torch.ones(3, 3, dtype=torch.float64)
    grid[1, 1] = -10.0  # centre window: mu = (8 - 10)/9 < 0
    assert rank_gaussian_filter(grid)[1, 1].item() == 0.0
    grid[1, 1] = -8.0  # centre window: mu = 0 exactly
    assert rank_gaussian_filter(grid)[1, 1].item() == 0.0


def test_single_pixel_map_keeps_positive_value() -> None:
    # A 1x1 map is replicate-padded: its window is nine copies of itself (s = 0, the median).
    assert rank_gaussian_filter(torch.tensor([[0.7]])).item() == pytest.approx(0.7)
    assert rank_gaussian_filter(torch.tensor([[-0.7]])).item() == 0.0


def test_rejects_one_dimensional_input() -> None:
    with pytest.raises(ValueError, match="H, W"):
        rank_gaussian_filter(torch.ones(5))


def test_sorting_network_sorts_every_zero_one_input() -> None:
    # The 0-1 principle: a comparator network that sorts all 2^9 inputs of 0s and 1s sorts every input.
    assert len(_SORT9) == 25
    for bits in itertools.product((0, 1), repeat=9):
        values = list(bits)
        for i, j in _SORT9:
            values[i], values[j] = min(values[i], values[j]), max(values[i], values[j])
        assert values == sorted(bits)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ties_and_flat_windows_match_reference(dtype: torch.dtype) -> None:
    # Few distinct values: many tied ranks, flat windows (s = 0) and windows with mean exactly 0.
    rng = np.random.default_rng(7)
    for shape in [(6, 8), (1, 5), (5, 1), (9, 9)]:
        _check_against_reference(rng.choice([0.0, 0.25, 1.0, -0.5], shape), dtype)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_keeps_float_dtype_and_promotes_integers(dtype: torch.dtype) -> None:
    maps = torch.rand(2, 4, 5, generator=torch.Generator().manual_seed(0)).to(dtype)
    out = rank_gaussian_filter(maps)
    assert out.dtype == dtype and out.shape == maps.shape
    expected = rank_gaussian_filter(maps.double())
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=2 * torch.finfo(dtype).eps)
    assert rank_gaussian_filter(torch.randint(0, 4, (3, 3))).dtype == torch.get_default_dtype()
