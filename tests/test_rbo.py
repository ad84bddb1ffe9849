"""Extrapolated rank-biased overlap: known values, its bounds, and the vectorised matrix against pairs."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mllm_explain.methods.rbo import rbo, rbo_matrix


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 0.98])
def test_identical_is_one_and_disjoint_is_zero(p: float) -> None:
    items = list(range(20))
    assert rbo(items, items, p) == pytest.approx(1.0, abs=1e-12)
    assert rbo(items, list(range(20, 40)), p) == 0.0
    assert rbo(["x"], ["x"], p) == pytest.approx(1.0, abs=1e-12)


def test_hand_computed_partial_overlap() -> None:
    # A = [a, b, c], B = [b, a, d], p = 0.5: X_1 = 0, X_2 = 2, X_3 = 2, so A_1 = 0, A_2 = 1, A_3 = 2/3.
    # RBO_ext = (X_3/3) p^3 + ((1-p)/p) (A_1 p + A_2 p^2 + A_3 p^3)
    #         = (2/3)(1/8) + 1 * (0 + 1/4 + (2/3)(1/8)) = 1/12 + 1/4 + 1/12 = 5/12 = 0.41667.
    assert rbo(["a", "b", "c"], ["b", "a", "d"], 0.5) == pytest.approx(5 / 12, abs=1e-12)
    assert rbo_matrix(torch.tensor([[0, 1, 2], [1, 0, 3]]), 0.5)[0, 1].item() == pytest.approx(5 / 12, abs=1e-6)


@st.composite
def permutation_pairs(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    k = draw(st.integers(1, 12))
    pool = list(range(draw(st.integers(k, 2 * k))))
    return draw(st.permutations(pool))[:k], draw(st.permutations(pool))[:k]


@settings(max_examples=50, deadline=None)
@given(pair=permutation_pairs(), p=st.floats(0.05, 0.95))
def test_symmetric_and_bounded(pair: tuple[list[int], list[int]], p: float) -> None:
    a, b = pair
    value = rbo(a, b, p)
    assert 0.0 <= value <= 1.0 + 1e-12
    assert value == pytest.approx(rbo(b, a, p), abs=1e-12)


@pytest.mark.parametrize("p", [0.5, 0.9])
def test_matrix_matches_pairwise(p: float) -> None:
    generator = torch.Generator().manual_seed(0)
    # Rows drawn from a small vocabulary so that most pairs share some (differently ranked) ids.
    ids = torch.stack([torch.randperm(15, generator=generator)[:8] for _ in range(10)])
    ids[3] = ids[1]  # one identical pair
    ids[4] = torch.arange(100, 108)  # one row disjoint from all others
    matrix = rbo_matrix(ids, p)
    assert matrix.dtype == torch.float32 and matrix.shape == (10, 10)
    assert torch.equal(matrix, matrix.T)
    expected = torch.tensor([[rbo(a.tolist(), b.tolist(), p) for b in ids] for a in ids])
    torch.testing.assert_close(matrix, expected.float(), rtol=0, atol=1e-6)


def test_matrix_handles_many_rows_in_chunks() -> None:
    ids = torch.stack([torch.randperm(300, generator=torch.Generator().manual_seed(i))[:50] for i in range(512)])
    matrix = rbo_matrix(ids)
    assert matrix.shape == (512, 512)
    torch.testing.assert_close(matrix.diagonal(), torch.ones(512), rtol=0, atol=1e-6)
    for a, b in [(0, 1), (7, 300), (511, 256)]:
        assert matrix[a, b].item() == pytest.approx(rbo(ids[a].tolist(), ids[b].tolist()), abs=1e-6)


@pytest.mark.parametrize("p", [0.0, 1.0, -0.5, 1.5, float("nan")])
def test_invalid_p_raises(p: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        rbo([1, 2], [2, 1], p)
    with pytest.raises(ValueError, match="between 0 and 1"):
        rbo_matrix(torch.tensor([[1, 2], [2, 1]]), p)


def test_invalid_rankings_raise() -> None:
    with pytest.raises(ValueError, match="equal depth"):
        rbo([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="non-empty"):
        rbo([], [])
    with pytest.raises(ValueError, match="repeated"):
        rbo([1, 1], [1, 2])
    with pytest.raises(ValueError, match="repeated"):
        rbo_matrix(torch.tensor([[1, 2], [3, 3]]))
    with pytest.raises(ValueError, match=r"\(n, k\)"):
        rbo_matrix(torch.tensor([1, 2, 3]))
