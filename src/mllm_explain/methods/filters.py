"""The rank Gaussian filter of TAM (Token Activation Maps): a 3x3 denoiser for token maps.

Each pixel becomes a Gaussian-weighted mean of its sorted 3x3 neighbourhood, the weights centred on the
median rank with a width set by the window's coefficient of variation s = sigma / mu.  A flat window
(s -> 0) keeps its median, a noisy one (large s) tends to its mean, and a window whose mean is not
positive becomes 0.

Borders use reflect padding (numpy "reflect": the edge pixel is not repeated).  A dimension of size 1
cannot be reflected, so it is padded by replicating its single row / column instead.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

_RANKS = np.arange(-4, 5)  # rank offsets u; u indexes sorted[u + 4]


# A sorting network for 9 inputs of the least possible size: 25 compare-exchanges in 7 layers (one per row).
# Each (i, j), applied in order, leaves the smaller value in slot i and the larger in slot j; by the 0-1
# principle it sorts every input because it sorts all 2^9 inputs of 0s and 1s (checked in the tests).
_SORT9 = ((0, 3), (1, 7), (2, 5), (4, 8),
          (0, 7), (2, 4), (3, 8), (5, 6),
          (0, 2), (1, 3), (4, 5), (7, 8),
          (1, 4), (3, 6), (5, 7),
          (0, 1), (2, 4), (3, 5), (6, 8),
          (2, 3), (4, 5), (6, 7),
          (1, 2), (3, 4), (5, 6))


def rank_gaussian_filter(maps: Tensor) -> Tensor:
    """Filter every 2-D map of `maps` (..., H, W) at once; same shape, same float dtype.

    Vectorised over whole (T, gh, gw) stacks of token maps without ever materialising the 9x window
    tensor: the nine shifted maps (views of the padded input, one per window position) are put in rank
    order by a fixed sorting network, 25 compare-exchanges `(lo, hi) = (min(a, b), max(a, b))` applied to
    whole maps, so that afterwards map k holds every pixel's rank-k window value.  Mean and population
    std are running sums over the nine sorted maps, and the symmetric weights are applied in pairs:
    out = (x_0 + sum_{u=1..4} g(u) (x_u + x_-u)) / (1 + 2 sum_{u=1..4} g(u)), where x_u is the value of
    rank offset u (x_0 the median) and g(0) = 1.
    Integer input is filtered in the default float dtype.
    """
    if maps.ndim < 2:
        raise ValueError(f"rank_gaussian_filter needs maps of shape (..., H, W), got shape {tuple(maps.shape)}")
    if not maps.is_floating_point():
        maps = maps.to(torch.get_default_dtype())
    if maps.numel() == 0:
        return maps.clone()
    height, width = maps.shape[-2:]
    padded = maps[..., _pad_index(height, maps.device), :][..., _pad_index(width, maps.device)]
    ranked = [padded[..., dy:dy + height, dx:dx + width] for dy in range(3) for dx in range(3)]
    for i, j in _SORT9:
        ranked[i], ranked[j] = torch.minimum(ranked[i], ranked[j]), torch.maximum(ranked[i], ranked[j])
    mu = sum(ranked[1:], ranked[0]) / 9
    sigma = (sum(((x - mu) ** 2 for x in ranked[1:]), (ranked[0] - mu) ** 2) / 9).sqrt()
    s = sigma / mu
    # A flat window has s = 0 and u / s = inf, so g(u) = exp(-inf) = 0 for u != 0: exactly the median,
    # the s -> 0 limit.  (A window with mu <= 0 may give inf / nan here; it is set to 0 below.)
    numerator, norm = ranked[4], 1.0
    for u in range(1, 5):
        g = torch.exp(-0.5 * (u / s) ** 2)
        numerator = numerator + g * (ranked[4 + u] + ranked[4 - u])
        norm = norm + 2 * g
    out = numerator / norm
    return torch.where(mu > 0, out, torch.zeros_like(out))


def _pad_index(size: int, device: torch.device) -> Tensor:
    """Indices that pad one axis by 1 on each side: reflect, or replicate when the axis has size 1."""
    if size == 1:
        return torch.zeros(3, dtype=torch.long, device=device)
    inner = torch.arange(size, device=device)
    return torch.cat([inner[1:2], inner, inner[-2:-1]])


def rank_gaussian_filter_reference(grid: np.ndarray) -> np.ndarray:
    """The rank Gaussian filter of one 2-D map, one pixel at a time, in float64.

    A deliberately plain double loop over pixels: the oracle the tests check `rank_gaussian_filter`
    against and the baseline the benchmark times it against, so it favours being obviously correct.
    """
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 2:
        raise ValueError(f"rank_gaussian_filter_reference needs one 2-D map, got shape {grid.shape}")
    height, width = grid.shape
    padded = np.pad(grid, ((1, 1), (0, 0)), mode="reflect" if height > 1 else "edge")
    padded = np.pad(padded, ((0, 0), (1, 1)), mode="reflect" if width > 1 else "edge")
    out = np.zeros_like(grid)
    for y in range(height):
        for x in range(width):
            window = np.sort(padded[y:y + 3, x:x + 3].ravel())
            mu = np.mean(window)
            sigma = np.std(window)
            if mu <= 0:
                out[y, x] = 0.0
                continue
            s = sigma / mu
            if s == 0:
                out[y, x] = window[4]
                continue
            g = np.exp(-_RANKS**2 / (2 * s**2))
            out[y, x] = np.sum(window * g) / np.sum(g)
    return out
