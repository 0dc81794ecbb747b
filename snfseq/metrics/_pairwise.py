"""Blocked pairwise-distance kernels of the metrics: the pair sums behind the energy metrics.

Private to :mod:`snfseq.metrics`. Samples are laid out as points ``Tensor[G, N, F]`` (``G``
series, ``N`` samples, ``F`` flattened event entries, see ``_flatten``). Rows of the distance
matrix are computed block by block from ``|a - b|**2 = |a|**2 + |b|**2 - 2 a.b`` on centred
data, only the upper block triangle is computed, and pairs too close for that formula's
cancellation are recomputed from their difference. ``_BLOCK_BUDGET`` bounds the elements of
any temporary when no ``chunk_size`` is given.
"""

from __future__ import annotations

__all__ = [
    "_chunk_rows",
    "_cross_pair_sum",
    "_distances",
    "_flatten",
    "_group_slices",
    "_point_distance_sum",
    "_prod",
    "_self_pair_sum",
    "_sorted_pair_sum",
]

from collections.abc import Sequence

import torch
from torch import Tensor

# Elements of the largest temporary a pairwise block may hold when no chunk_size is given.
_BLOCK_BUDGET = 1 << 20
# Rows per block when memory allows more: small enough that the block-triangular scheme
# skips most of the lower triangle, large enough for efficient matrix products.
_MAX_BLOCK_ROWS = 256
# Pairs with |a - b|^2 below this fraction of |a|^2 + |b|^2 get their distance recomputed.
_REFINE = 1.0 / 32.0


# ----------------------------------------------------------------------------- layout


def _chunk_rows(chunk_size: int | None, rows: int, per_row: int) -> int:
    if chunk_size is None:
        return max(1, min(rows, _MAX_BLOCK_ROWS, _BLOCK_BUDGET // max(per_row, 1)))
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
    return min(chunk_size, rows)


def _flatten(samples: Tensor, event_dims: int) -> tuple[Tensor, tuple[int, ...]]:
    """``[S, *B, *E] -> [prod(B), S, prod(E)]`` and the batch shape ``B``."""
    batch = tuple(samples.shape[1 : samples.ndim - event_dims])
    event = _prod(samples.shape[samples.ndim - event_dims :])
    return samples.reshape(samples.shape[0], _prod(batch), event).transpose(0, 1), batch


def _prod(shape: Sequence[int]) -> int:
    out = 1
    for size in shape:
        out *= size
    return out


# ----------------------------------------------------------------------------- pair sums


def _group_slices(groups: int, per_group: int) -> list[slice]:
    """Slices of the group axis whose centred copies fit the block budget."""
    step = max(1, _BLOCK_BUDGET // max(per_group, 1))
    return [slice(start, start + step) for start in range(0, max(groups, 1), step)]


def _distances(
    rows: Tensor, rows_sq: Tensor, cols: Tensor, cols_sq: Tensor, shared_start: bool
) -> Tensor:
    """Euclidean distances ``[G, R, C]`` between ``rows [G, R, F]`` and ``cols [G, C, F]``.

    ``|a|^2 + |b|^2 - 2ab`` loses ``eps * (|a|^2 + |b|^2) / |a - b|^2`` relative precision,
    so pairs closer than ``_REFINE`` of that scale (duplicates, low-dimensional neighbours)
    are recomputed from their difference: every distance keeps ``~64 eps`` relative error.
    ``shared_start`` says that row ``i`` and column ``i`` are the same point.
    """
    norms = rows_sq.unsqueeze(-1) + cols_sq.unsqueeze(-2)
    squared = torch.baddbmm(norms, rows, cols.transpose(1, 2), alpha=-2.0)
    if shared_start:
        squared.diagonal(dim1=1, dim2=2).zero_()
    with torch.no_grad():
        close = squared < norms.mul_(_REFINE)
        if shared_start:
            close.diagonal(dim1=1, dim2=2).zero_()
        indices = close.nonzero(as_tuple=True) if bool(close.any()) else ()
    del norms, close
    step = max(1, _BLOCK_BUDGET // rows.shape[-1])
    for start in range(0, indices[0].numel() if indices else 0, step):
        group, row, col = (index[start : start + step] for index in indices)
        exact = (rows[group, row] - cols[group, col]).square().sum(-1)
        squared.index_put_((group, row, col), exact)
    # Clamping at `tiny` rather than 0 keeps sqrt's gradient finite where distances vanish.
    tiny = torch.finfo(squared.dtype).tiny
    if squared.requires_grad:
        return squared.clamp_min(tiny).sqrt()
    return squared.clamp_min_(tiny).sqrt_()


def _self_pair_sum(points: Tensor, w: Tensor, chunk: int) -> Tensor:
    """``sum_ij w_i w_j |x_i - x_j|`` per group for centred ``points [G, N, F]``, ``w [G, N]``."""
    size = points.shape[1]
    sq = torch.linalg.vector_norm(points, dim=-1).square()
    total = points.new_zeros(points.shape[0])
    for start in range(0, size, chunk):
        stop = min(start + chunk, size)
        rows, cols = points[:, start:stop], points[:, start:]
        dist = _distances(rows, sq[:, start:stop], cols, sq[:, start:], shared_start=True)
        # Blocks right of the diagonal block stand for their mirror images below it too.
        twice = torch.ones(size - start, device=w.device, dtype=w.dtype)
        twice[stop - start :] = 2.0
        row_sums = dist.bmm((w[:, start:] * twice).unsqueeze(-1)).squeeze(-1)
        total = total + (row_sums * w[:, start:stop]).sum(-1)
    return total


def _cross_pair_sum(a: Tensor, wa: Tensor, b: Tensor, wb: Tensor, chunk: int) -> Tensor:
    """``sum_ij wa_i wb_j |a_i - b_j|`` per group for centred ``a [G, N, F]``, ``b [G, M, F]``."""
    a_sq = torch.linalg.vector_norm(a, dim=-1).square()
    b_sq = torch.linalg.vector_norm(b, dim=-1).square()
    total = a.new_zeros(a.shape[0])
    for start in range(0, a.shape[1], chunk):
        stop = start + chunk
        dist = _distances(a[:, start:stop], a_sq[:, start:stop], b, b_sq, shared_start=False)
        total = total + (dist.bmm(wb.unsqueeze(-1)).squeeze(-1) * wa[:, start:stop]).sum(-1)
    return total


def _point_distance_sum(points: Tensor, w: Tensor, target: Tensor, chunk: int) -> Tensor:
    """``sum_i w_i |x_i - y|`` per group for ``points [G, N, F]`` and ``target [G, F]``."""
    total = points.new_zeros(points.shape[0])
    for start in range(0, points.shape[1], chunk):
        block = points[:, start : start + chunk] - target.unsqueeze(1)
        norms = torch.linalg.vector_norm(block, dim=-1)
        total = total + (norms * w[:, start : start + chunk]).sum(-1)
    return total


def _sorted_pair_sum(values: Tensor, w: Tensor) -> Tensor:
    """``sum_ij w_i w_j |x_i - x_j|`` along dim 0 in ``O(S log S)``; ``w`` broadcasts."""
    values = values - values.mean(0)  # the coefficients below sum to zero: centring is exact
    ordered, order = values.sort(dim=0)
    w_sorted = w.expand_as(values).gather(0, order)
    cum = w_sorted.cumsum(0)
    # x_(i) appears with + for the cum[i-1] mass below it and - for the mass above it.
    return 2.0 * (w_sorted * ordered * (2.0 * cum - w_sorted - cum[-1:])).sum(0)
