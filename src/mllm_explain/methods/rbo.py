"""Rank-biased overlap (Webber, Moffat & Zobel 2010) between top-k prediction lists.

Both functions compute the extrapolated RBO_ext of eq. (32) for two rankings of the same depth k with
distinct items: with X_d = |A[:d] ∩ B[:d]| and A_d = X_d / d,

    RBO_ext = (X_k / k) * p^k + ((1 - p) / p) * sum_{d=1..k} A_d * p^d,

which is 1 for identical rankings, 0 for disjoint ones, and weighs agreement at the top more (p < 1).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import torch
from torch import Tensor

# Rows of `rbo_matrix` handled at once, capped so each chunk's (rows, n, k) / (rows, unique ids)
# intermediates stay near this many elements.
_CHUNK_ELEMENTS = 1 << 22


def rbo(ranking_a: Sequence[Hashable], ranking_b: Sequence[Hashable], p: float = 0.9) -> float:
    """RBO_ext of two rankings (best first) of equal depth, each without repeated items."""
    _check_p(p)
    k = len(ranking_a)
    if k != len(ranking_b):
        raise ValueError(f"rbo needs rankings of equal depth, got {k} and {len(ranking_b)}")
    if k == 0:
        raise ValueError("rbo needs non-empty rankings")
    if len(set(ranking_a)) != k or len(set(ranking_b)) != k:
        raise ValueError("rbo needs rankings without repeated items")
    total = 0.0
    for d in range(1, k + 1):
        overlap = len(set(ranking_a[:d]) & set(ranking_b[:d]))
        total += overlap / d * p**d
    return overlap / k * p**k + (1 - p) / p * total


def rbo_matrix(topk_ids: Tensor, p: float = 0.9) -> Tensor:
    """(n, n) float32 RBO_ext between every pair of rows of `topk_ids` (n, k), rows ranked best first.

    RBO_ext is linear in the X_d, so each shared id contributes a weight w[m] that depends only on
    m = max(its rank in a, its rank in b): the depth from which it counts as overlap.  Summing w over
    the ids of row a, looked up at their ranks in row b, gives every pair in O(n^2 k) with no pair loop.
    """
    _check_p(p)
    if topk_ids.ndim != 2 or topk_ids.shape[1] == 0:
        raise ValueError(f"rbo_matrix needs an (n, k) tensor with k > 0, got shape {tuple(topk_ids.shape)}")
    if topk_ids.is_floating_point() or topk_ids.is_complex():
        raise ValueError(f"rbo_matrix needs integer ids, got {topk_ids.dtype}")
    n, k = topk_ids.shape
    ordered = topk_ids.sort(dim=1).values
    if bool((ordered[:, 1:] == ordered[:, :-1]).any()):
        raise ValueError("rbo_matrix needs rows without repeated ids")
    device = topk_ids.device

    depth = torch.arange(1, k + 1, dtype=torch.float64, device=device)
    coefficient = (1 - p) / p * p**depth / depth  # weight of X_d in RBO_ext
    coefficient[-1] += p**k / k
    weight = torch.zeros(k + 1, dtype=torch.float64, device=device)  # w[m]; w[k] = 0: id absent
    weight[:k] = coefficient.flip(0).cumsum(0).flip(0)

    _, compact = torch.unique(topk_ids, return_inverse=True)  # ids -> 0..U-1
    unique = int(compact.max()) + 1 if n else 0
    ranks = torch.arange(k, device=device)
    result = torch.empty(n, n, dtype=torch.float64, device=device)
    chunk = max(1, _CHUNK_ELEMENTS // max(unique, n * k))
    for start in range(0, n, chunk):
        rows = compact[start:start + chunk]
        rank_in_b = torch.full((len(rows), unique), k, dtype=torch.long, device=device)
        rank_in_b.scatter_(1, rows, ranks.expand_as(rows).contiguous())
        # rank_in_b[b, compact[a, i]]: where row a's i-th id sits in row b (k if absent).
        matched = torch.maximum(rank_in_b[:, compact], ranks)  # (rows b, n a, k)
        result[start:start + chunk] = weight[matched].sum(dim=-1)
    return ((result + result.T) / 2).float()


def _check_p(p: float) -> None:
    if not 0 < p < 1:
        raise ValueError(f"rbo persistence p must lie strictly between 0 and 1, got {p}")
