"""The statistics of ``bench_quality.py``: moving-block bootstrap over forecast windows, paired
intervals, the claims rule, the pooled energy distance and the noise-matched control's scale.

Shapes: ``values: Array[N, *E]`` holds one entry per test window (already averaged over seeds;
``E`` e.g. the horizon steps), the windows of one sequence consecutive and in time order;
``groups`` lists how many windows each sequence has, in that order (they sum to ``N``).
Replicates are index arrays ``Array[R, N]``, so that every variant and every paired
difference is resampled with the same windows.

Example:
    >>> import numpy as np
    >>> indices = block_indices([30, 20], block=5, reps=500)
    >>> difference = np.full(50, 0.3) + np.random.default_rng(0).normal(0, 0.1, 50)
    >>> verdict(interval(difference, indices), "higher")
    'held'
"""

from __future__ import annotations

__all__ = [
    "VERDICTS",
    "block_indices",
    "fidelity_verdict",
    "interval",
    "noise_scale",
    "pooled_energy_distance",
    "pooled_interval",
    "pooled_matrices",
    "verdict",
]

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

#: The three outcomes of a claim.
VERDICTS = ("held", "not held", "inconclusive")
# Rows of sample points per block of pairwise distances in pooled_matrices.
_ROWS = 2048
Direction = Literal["lower", "higher"]


def block_indices(groups: Sequence[int], block: int, reps: int, seed: int = 0) -> np.ndarray:
    """``Array[R, N]`` window indices of ``reps`` moving-block bootstrap replicates.

    A sequence of ``n`` windows is rebuilt from ``ceil(n / L)`` runs of ``L = min(block, n)``
    consecutive windows of that same sequence (starts uniform over ``0..n - L``), cut to
    ``n``: no block crosses a sequence boundary, and every sequence keeps its window count.

    Args:
        groups: Windows per sequence, in order.
        block: Block length ``L`` in windows (about ``(context + horizon) / stride``, the
            windows that share frames with a given one).
        reps: Replicates ``R``.
        seed: Seed of the starts.

    Example:
        >>> block_indices([3, 2], block=2, reps=2, seed=1)
        array([[0, 1, 1, 3, 4],
               [1, 2, 1, 3, 4]])
    """
    if block < 1 or reps < 1:
        raise ValueError(f"block and reps must be >= 1, got block={block}, reps={reps}")
    if not groups or min(groups) < 1:
        raise ValueError(f"groups must be positive window counts, got {list(groups)}")
    rng = np.random.default_rng(seed)
    parts, offset = [], 0
    for count in groups:
        length = min(block, count)
        starts = rng.integers(0, count - length + 1, size=(reps, math.ceil(count / length)))
        index = (starts[..., None] + np.arange(length)).reshape(reps, -1)[:, :count]
        parts.append(offset + index)
        offset += count
    return np.concatenate(parts, axis=1)


def interval(values: np.ndarray, indices: np.ndarray, level: float = 0.95) -> dict[str, Any]:
    """Mean over windows and its percentile bootstrap interval.

    Args:
        values: ``Array[N, *E]``; a NaN anywhere makes every number NaN.
        indices: ``Array[R, N]`` from :func:`block_indices`.
        level: Central probability of the interval.

    Returns:
        ``{"mean", "low", "high"}``: floats, or lists of shape ``E``.

    Example:
        >>> import numpy as np
        >>> interval(np.arange(4.0), np.array([[0, 0, 1, 1], [2, 3, 2, 3]]), level=0.5)
        {'mean': 1.5, 'low': 1.0, 'high': 2.0}
    """
    values = np.asarray(values, dtype=np.float64)
    replicates = values[indices].mean(axis=1)
    tail = 50 * (1 - level)
    low, high = np.percentile(replicates, [tail, 100 - tail], axis=0)
    return {"mean": _number(values.mean(axis=0)), "low": _number(low), "high": _number(high)}


def _number(value: np.ndarray) -> Any:
    return float(value) if np.ndim(value) == 0 else np.asarray(value).tolist()


def verdict(difference: dict[str, Any], direction: Direction) -> str:
    """The claims rule on a paired difference (variant minus baseline): ``"held"`` when its
    interval excludes zero in the claimed ``direction``, ``"not held"`` when it excludes zero
    in the other, else ``"inconclusive"`` (NaN bounds are inconclusive).

    Example:
        >>> below, across = {"low": -0.3, "high": -0.1}, {"low": -0.3, "high": 0.1}
        >>> verdict(below, "lower"), verdict(across, "lower"), verdict(below, "higher")
        ('held', 'inconclusive', 'not held')
    """
    if direction not in ("lower", "higher"):
        raise ValueError(f"direction must be 'lower' or 'higher', got {direction!r}")
    low, high = difference["low"], difference["high"]
    below, above = high < 0, low > 0
    if direction == "lower":
        below, above = above, below
    return "held" if above else "not held" if below else "inconclusive"


def fidelity_verdict(*differences: dict[str, Any]) -> str:
    """Claim 3, fidelity kept (a not-worse claim on errors): ``"held"`` when no interval of
    the paired error differences lies entirely above zero, else ``"not held"``; a NaN bound
    gives ``"inconclusive"``.

    Example:
        >>> fidelity_verdict({"low": -0.1, "high": 0.2}, {"low": 0.0, "high": 0.3})
        'held'
        >>> fidelity_verdict({"low": -0.1, "high": 0.2}, {"low": 0.01, "high": 0.3})
        'not held'
    """
    lows = [d["low"] for d in differences]
    if any(low is None or math.isnan(low) for low in lows):
        return "inconclusive"
    return "not held" if any(low > 0 for low in lows) else "held"


def pooled_matrices(
    samples: Tensor, truth: Tensor, log_weights: Tensor | None = None, thin: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Window-by-window mean distances from which the pooled energy distance follows
    (:func:`pooled_energy_distance`), for the windows once each or for a bootstrap replicate.

    ``xy[b, c] = sum_s w_sb |x_sb - y_c|``, ``xx[b, c] = sum_st w_sb w_tc |x_sb - x_tc|``,
    ``yy[b, c] = |y_b - y_c|``: Euclidean norms over the flattened window, ``w`` the weights
    self-normalised over each window's samples, float64 around the mean true window. The
    ``S^2 B^2`` pairs of ``xx`` dominate the cost: ``thin=K`` computes the entries of two
    different windows (``b != c``) of both ``xy`` and ``xx`` from ``K`` points per window
    (the deterministic systematic resample of its weights at ``(k + 1/2) / K``: with equal
    weights, ``S = 100`` and ``K = 20``, every fifth sample), so that their errors cancel in
    ``2 xy - xx``, and the diagonals from every sample.

    Args:
        samples: ``Tensor[S, B, *E]`` forecast windows (``E`` e.g. frames x features).
        truth: ``Tensor[B, *E]`` true windows.
        log_weights: ``Tensor[S, B]`` importance log-weights, or None for equal weights.
        thin: ``K`` points per window for the between-window entries; None: every sample.

    Returns:
        ``(xy, xx, yy)``, each ``Array[B, B]``.

    Example:
        >>> import torch
        >>> xy, xx, yy = pooled_matrices(torch.zeros(2, 2, 1), torch.tensor([[0.0], [2.0]]))
        >>> xy.tolist(), xx.tolist(), yy.tolist()
        ([[0.0, 2.0], [0.0, 2.0]], [[0.0, 0.0], [0.0, 0.0]], [[0.0, 2.0], [2.0, 0.0]])
    """
    size, batch = samples.shape[:2]
    centre = truth.double().reshape(batch, -1).mean(0)
    x = samples.double().reshape(size, batch, -1) - centre
    y = truth.double().reshape(batch, -1) - centre
    if log_weights is None:
        w = torch.full((size, batch), 1.0 / size, dtype=torch.float64)
    else:
        w = torch.softmax(log_weights.double(), dim=0)
    points, mass = x, w
    if thin is not None:
        positions = (torch.arange(thin, dtype=torch.float64) + 0.5) / thin
        cumulative = w.cumsum(0).T.contiguous()
        index = torch.searchsorted(cumulative, positions.expand(batch, thin).contiguous())
        points = x[index.clamp_max(size - 1).T, torch.arange(batch)]
        mass = torch.full((thin, batch), 1.0 / thin, dtype=torch.float64)
    count = len(points)
    xy = torch.einsum(
        "kb,kbc->bc",
        mass,
        torch.cdist(points.reshape(-1, x.shape[-1]), y).reshape(count, batch, batch),
    )
    # Rows k * B + b of the flattened points, a chunk of rows against all at a time.
    flat, row_mass = points.reshape(-1, x.shape[-1]), mass.reshape(-1)
    window = torch.arange(len(flat)) % batch
    xx = torch.zeros(batch, batch, dtype=torch.float64)
    for start in range(0, len(flat), _ROWS):
        rows = slice(start, start + _ROWS)
        distances = torch.cdist(flat[rows], flat).reshape(-1, count, batch)
        part = torch.einsum("rlc,lc->rc", distances, mass) * row_mass[rows, None]
        xx.index_add_(0, window[rows], part)
    if thin is not None:
        xy.diagonal().copy_((w * torch.linalg.vector_norm(x - y, dim=-1)).sum(0))
        per_window = x.transpose(0, 1).contiguous()
        within = torch.cdist(per_window, per_window)  # [B, S, S]
        xx.diagonal().copy_(torch.einsum("sb,bst,tb->b", w, within, w))
    return xy.numpy(), xx.numpy(), torch.cdist(y, y).numpy()


def pooled_energy_distance(
    xy: np.ndarray, xx: np.ndarray, yy: np.ndarray, counts: np.ndarray | None = None
) -> Any:
    """The pooled energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` (V-statistic) between
    all windows' forecasts pooled (each window's samples carrying ``1 / B`` of the mass) and
    all true windows, from :func:`pooled_matrices`.

    With ``K = 2 xy - xx - yy`` it is ``mean(K) = mean(diag K) / B + (B - 1) / B x (mean of
    K off the diagonal)``: a within-window part (each window's forecast against its own
    truth) and a between-window part. A bootstrap replicate keeps that structure: the
    diagonal averaged with the windows' counts, the off-diagonal over pairs of *different*
    windows. (Plugging the resampled multiset into the formula would count the pairs of a
    window's copies as different windows that agree perfectly and bias every replicate up.)

    Args:
        xy: ``Array[B, B]``, as ``xx`` and ``yy``.
        xx: See ``xy``.
        yy: See ``xy``.
        counts: ``Array[R, B]``: how often each window enters each bootstrap replicate;
            None for the windows once each. A replicate of a single window has no
            between-window pairs: NaN.

    Returns:
        A float, or ``Array[R]`` with ``counts``.

    Example:
        >>> import numpy as np
        >>> xy, xx = np.array([[0.0, 2.0], [0.0, 2.0]]), np.zeros((2, 2))
        >>> yy = np.array([[0.0, 2.0], [2.0, 0.0]])
        >>> pooled_energy_distance(xy, xx, yy)  # K = [[0, 2], [-2, 4]]
        1.0
        >>> pooled_energy_distance(xy, xx, yy, counts=np.array([[1, 1], [1, 3], [2, 0]]))
        array([1. , 1.5, nan])
    """
    kernel = 2 * xy - xx - yy
    if counts is None:
        return float(kernel.mean())
    windows, diagonal = kernel.shape[0], np.diag(kernel)
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum(axis=1)
    within = c @ diagonal / total
    pairs = np.einsum("rb,bc,rc->r", c, kernel, c) - (c**2) @ diagonal
    mass = total**2 - (c**2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        between = np.where(mass > 0, pairs / mass, np.nan)
    return within / windows + (windows - 1) / windows * between


def pooled_interval(
    matrices: tuple[np.ndarray, np.ndarray, np.ndarray],
    indices: np.ndarray,
    baseline: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    level: float = 0.95,
) -> dict[str, float]:
    """The pooled energy distance (or its paired difference to ``baseline``'s, on the same
    resampled windows) and its block-bootstrap interval.

    Example:
        >>> import numpy as np
        >>> xy, yy = np.array([[0.0, 2.0], [0.0, 2.0]]), np.array([[0.0, 2.0], [2.0, 0.0]])
        >>> m = (xy, np.zeros((2, 2)), yy)
        >>> pooled_interval(m, np.array([[0, 1], [1, 1], [1, 0]]), level=0.5)  # 1, nan, 1
        {'mean': 1.0, 'low': 1.0, 'high': 1.0}
    """
    windows = matrices[0].shape[0]
    counts = np.stack([np.bincount(row, minlength=windows) for row in indices])
    value = pooled_energy_distance(*matrices)
    replicates = pooled_energy_distance(*matrices, counts=counts)
    if baseline is not None:
        value -= pooled_energy_distance(*baseline)
        replicates = replicates - pooled_energy_distance(*baseline, counts=counts)
    tail = 50 * (1 - level)
    low, high = np.nanpercentile(replicates, [tail, 100 - tail])
    return {"mean": value, "low": float(low), "high": float(high)}


def noise_scale(refined: Tensor, reference: Tensor) -> Tensor:
    """``Tensor[H, D]``: the noise-matched control's per-step, per-feature scale,
    ``sigma^2 = max(0, mean_b var_s(refined) - mean_b var_s(reference))`` over the validation
    windows ``b`` (zero where the refinement is narrower than the reference: there the
    control is the reference itself).

    Args:
        refined: ``Tensor[S, B, H, D]``, a refinement's validation forecasts.
        reference: ``Tensor[S, B, H, D]``, GRU-NF's on the same windows.

    Example:
        >>> import torch
        >>> wide = torch.tensor([-2.0, 2.0]).reshape(2, 1, 1, 1)  # variance 8
        >>> noise_scale(wide, wide / 2), noise_scale(wide / 2, wide)  # sqrt(8 - 2), 0
        (tensor([[2.4495]]), tensor([[0.]]))
    """
    if refined.shape[2:] != reference.shape[2:]:
        raise ValueError(
            f"refined {tuple(refined.shape)} and reference {tuple(reference.shape)} forecasts "
            "must share H and D"
        )
    excess = refined.var(0).mean(0) - reference.var(0).mean(0)
    return excess.clamp_min(0).sqrt()
