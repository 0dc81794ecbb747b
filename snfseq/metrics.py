"""Forecast metrics for sample (ensemble) forecasts, optionally importance weighted.

Every metric takes ``samples`` with the sample axis first, ``Tensor[S, *B, H, D]`` (``S``
samples, any batch dims ``B``, ``H`` time steps, ``D`` features), and, where it compares
with an outcome, ``obs`` of shape ``Tensor[*B, H, D]``. The trailing ``event_dims`` axes
(default 2: time and features) form one event; metrics reduce the sample axis and return
batch-shaped tensors unless a ``reduce`` argument asks otherwise.

Importance weights, such as the path log-weights of a stochastic normalizing flow, enter
every metric through ``weights=`` (non-negative) and/or ``log_weights=`` (both
``Tensor[S, *B]``, broadcastable, aligned with the leading axes of ``samples``). They are
self-normalised over ``S``; given both, they multiply. A weighted metric is the metric of
the weighted empirical distribution, so integer weights ``[1, 3, 2]`` give the same
V-statistic as repeating the samples once, three and two times. Fair (unbiased)
estimators divide the pair term by ``1 - sum(w**2)`` instead of ``1``, which is
``(S - 1) / S`` for equal weights; they are not repetition invariant, because repeated
copies are not distinct draws.

Pairwise terms cost ``O(S**2 F)`` time for ``F`` event entries but never hold an
``S x S x F`` array: rows of the distance matrix are computed block by block from
``|a - b|**2 = |a|**2 + |b|**2 - 2 a.b`` (one matrix product) on data centred at the sample
mean, only the upper block triangle is computed, and pairs too close for that formula's
cancellation (duplicates, neighbours in few dimensions) are recomputed from their
difference, so every float32 distance is accurate to better than 1e-5 relative. Without a
``chunk_size`` the temporaries stay within about 2**20 elements plus one centred copy of
the samples of a few series; results do not depend on ``chunk_size`` beyond rounding. CRPS
and the ``p=1`` APD use the ``O(S log S)`` sorted-sample form with cumulative weights.
Everything runs on the device and in the floating dtype of the input (computing in at
least float32); the energy metrics and CRPS are differentiable.

Example:
    >>> import torch
    >>> from snfseq import metrics
    >>> samples, obs = torch.randn(100, 4, 8, 6), torch.randn(4, 8, 6)
    >>> metrics.energy_score(samples, obs).shape
    torch.Size([4])
    >>> metrics.crps(samples, obs).shape, metrics.crps(samples, obs, reduce="mean").shape
    (torch.Size([4, 8, 6]), torch.Size([4]))
    >>> log_w = torch.randn(100, 4)
    >>> metrics.min_ade(samples, obs, coords=3, log_weights=log_w).shape
    torch.Size([4])
"""

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "ade",
    "apd",
    "coverage",
    "crps",
    "energy_distance",
    "energy_score",
    "fde",
    "mae",
    "min_ade",
    "min_fde",
    "mse",
    "quantile",
    "variogram_score",
]

Reduce = Literal["sum", "mean"] | None

# Elements of the largest temporary a pairwise block may hold when no chunk_size is given.
_BLOCK_BUDGET = 1 << 20
# Rows per block when memory allows more: small enough that the block-triangular scheme
# skips most of the lower triangle, large enough for efficient matrix products.
_MAX_BLOCK_ROWS = 256
# Pairs with |a - b|^2 below this fraction of |a|^2 + |b|^2 get their distance recomputed.
_REFINE = 1.0 / 32.0


# ----------------------------------------------------------------------------- validation


def _check_tensor(name: str, value: object) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"{name} must be a real-valued tensor, got dtype {value.dtype}")
    # A sum is one cheap pass and is finite whenever every entry is (barring overflow).
    if value.numel() and not bool(torch.isfinite(value.sum())):
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name} contains NaN or infinite values")
    return value


def _compute_dtype(*tensors: Tensor) -> torch.dtype:
    dtype = torch.float32
    for tensor in tensors:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype


def _output_dtype(*tensors: Tensor) -> torch.dtype:
    dtype = tensors[0].dtype
    for tensor in tensors[1:]:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype if dtype.is_floating_point else torch.get_default_dtype()


def _check_samples(samples: object, event_dims: int, min_samples: int = 1) -> Tensor:
    samples = _check_tensor("samples", samples)
    if event_dims < 0:
        raise ValueError(f"event_dims must be non-negative, got {event_dims}")
    if samples.ndim < 1 + event_dims:
        raise ValueError(
            f"samples must have a sample axis and {event_dims} event dims, "
            f"got shape {tuple(samples.shape)}"
        )
    if samples.shape[0] < min_samples:
        raise ValueError(
            f"this estimator needs at least {min_samples} samples, got S={samples.shape[0]}"
        )
    return samples


def _check_obs(obs: object, samples: Tensor) -> Tensor:
    obs = _check_tensor("obs", obs)
    if obs.shape != samples.shape[1:]:
        raise ValueError(
            f"obs must have shape samples.shape[1:] = {tuple(samples.shape[1:])}, "
            f"got {tuple(obs.shape)}"
        )
    if obs.device != samples.device:
        raise ValueError(f"obs is on {obs.device} but samples are on {samples.device}")
    return obs


def _check_levels(name: str, levels: object) -> Tensor:
    try:
        out = torch.as_tensor(levels, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a float or a sequence of floats, got {levels!r}") from None
    if out.ndim > 1 or out.numel() == 0:
        raise ValueError(f"{name} must be a scalar or a non-empty 1-D sequence, got {levels!r}")
    if bool(((out < 0) | (out > 1) | out.isnan()).any()):
        raise ValueError(f"{name} must lie in [0, 1], got {levels!r}")
    return out


def _check_reduce(reduce: Reduce) -> None:
    if reduce not in ("sum", "mean", None):
        raise ValueError(f"reduce must be 'sum', 'mean' or None, got {reduce!r}")


def _reduce_event(values: Tensor, reduce: Reduce, event_dims: int) -> Tensor:
    if reduce is None or event_dims == 0:
        return values
    dims = tuple(range(-event_dims, 0))
    return values.sum(dims) if reduce == "sum" else values.mean(dims)


def _sample_weights(
    weights: Tensor | None,
    log_weights: Tensor | None,
    shape: Sequence[int],
    device: torch.device,
    dtype: torch.dtype,
) -> Tensor:
    """Self-normalised weights of shape ``[S, *B]``, uniform when none are given."""
    shape = tuple(shape)
    if weights is None and log_weights is None:
        return torch.full(shape, 1.0 / shape[0], device=device, dtype=dtype)
    log_total: Tensor | None = None
    total: Tensor | None = None
    for name, value in (("weights", weights), ("log_weights", log_weights)):
        if value is None:
            continue
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if value.device != device:
            raise ValueError(f"{name} is on {value.device} but samples are on {device}")
        if value.ndim > len(shape) or value.ndim == 0 or value.shape[0] != shape[0]:
            raise ValueError(
                f"{name} must have shape [S, *B] = {list(shape)} (or broadcast to it), "
                f"got {list(value.shape)}"
            )
        value = value.to(dtype).reshape(value.shape + (1,) * (len(shape) - value.ndim))
        try:
            value = value.expand(shape)
        except RuntimeError:
            raise ValueError(
                f"{name} of shape {list(value.shape)} does not broadcast to [S, *B] = {list(shape)}"
            ) from None
        if name == "weights":
            if not bool(torch.isfinite(value).all()) or bool((value < 0).any()):
                raise ValueError("weights must be finite and non-negative")
            total = value
        else:
            if bool(torch.isnan(value).any()) or bool((value == float("inf")).any()):
                raise ValueError("log_weights must not contain NaN or +inf")
            log_total = value
    if log_total is None:
        assert total is not None
        norm = total.sum(0)
        if bool((norm <= 0).any()):
            raise ValueError("weights sum to zero over the samples of some series")
        return total / norm
    if total is not None:
        log_total = log_total + total.log()
    if bool((log_total == float("-inf")).all(0).any()):
        raise ValueError("all weights are zero for some series")
    return torch.softmax(log_total, dim=0)


def _fair_denominator(w: Tensor) -> Tensor:
    """``1 - sum(w**2)`` over dim 0: the pair mass of distinct samples under weights ``w``."""
    # sum_i w_i (1 - w_i) rather than 1 - sum_i w_i**2: exact subtraction for a dominant w_i.
    denom = (w * (1.0 - w)).sum(0)
    if bool((denom <= 4 * torch.finfo(w.dtype).eps).any()):
        raise ValueError(
            "fair/unbiased estimators need at least two samples with positive weight per series"
        )
    return denom


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


# ----------------------------------------------------------------------------- energy metrics


def energy_score(
    samples: Tensor,
    obs: Tensor,
    *,
    fair: bool = False,
    event_dims: int = 2,
    weights: Tensor | None = None,
    log_weights: Tensor | None = None,
    chunk_size: int | None = None,
) -> Tensor:
    r"""Energy score of a sample forecast, the multivariate CRPS (lower is better).

    ``ES = sum_i w_i |x_i - y| - 1/2 sum_ij w_i w_j |x_i - x_j|`` with the Euclidean norm
    over the flattened event (time x features, as the paper's window energy distance), the
    ``nrg`` estimator of scoringrules. ``fair=True`` divides the pair term by
    ``1 - sum(w**2)`` (``S(S - 1)`` pairs for equal weights), the unbiased ``fair`` estimator.
    ``energy_distance`` to a single observation is twice the (non-fair) energy score.

    Args:
        samples: ``Tensor[S, *B, H, D]`` forecast samples.
        obs: ``Tensor[*B, H, D]`` outcome.
        fair: Use the fair (unbiased for the population score) estimator; needs ``S >= 2``.
        event_dims: Trailing axes flattened into one vector (2: time and features).
        weights: ``Tensor[S, *B]`` non-negative importance weights.
        log_weights: ``Tensor[S, *B]`` log importance weights.
        chunk_size: Sample rows per block of pairwise distances; ``None`` picks one. The
            result does not depend on it beyond rounding; memory does (see the module doc).

    Returns:
        ``Tensor[*B]`` energy scores.

    Example:
        >>> import torch
        >>> samples = torch.zeros(10, 3, 8, 4)
        >>> energy_score(samples, torch.ones(3, 8, 4))
        tensor([5.6569, 5.6569, 5.6569])
    """
    samples = _check_samples(samples, event_dims, 2 if fair else 1)
    obs = _check_obs(obs, samples)
    dtype = _compute_dtype(samples, obs)
    points, batch = _flatten(samples.to(dtype), event_dims)
    target = obs.to(dtype).reshape(points.shape[0], points.shape[2])
    w = _sample_weights(weights, log_weights, samples.shape[:1] + batch, samples.device, dtype)
    w = w.reshape(samples.shape[0], -1).T
    denom = _fair_denominator(w.T) if fair else None
    groups, size, features = points.shape
    scores = []
    for part in _group_slices(groups, size * features):
        # Centring makes the |a|^2 + |b|^2 - 2ab cancellation relative to the spread only.
        centre = points[part].mean(1, keepdim=True)
        centred, target_part = points[part] - centre, target[part] - centre.squeeze(1)
        chunk = _chunk_rows(chunk_size, size, centred.shape[0] * size)
        spread = _self_pair_sum(centred, w[part], chunk)
        if denom is not None:
            spread = spread / denom[part]
        scores.append(_point_distance_sum(centred, w[part], target_part, chunk) - 0.5 * spread)
    return torch.cat(scores).reshape(batch).to(_output_dtype(samples, obs))


def energy_distance(
    x: Tensor,
    y: Tensor,
    *,
    unbiased: bool = False,
    event_dims: int = 1,
    x_weights: Tensor | None = None,
    x_log_weights: Tensor | None = None,
    y_weights: Tensor | None = None,
    y_log_weights: Tensor | None = None,
    chunk_size: int | None = None,
) -> Tensor:
    r"""Energy distance between two sample sets (Szekely's, as ``dcor.energy_distance``).

    ``ED = 2 E|X - Y| - E|X - X'| - E|Y - Y'|`` with Euclidean norms over the flattened
    event. The default is the V-statistic (all pairs, ``dcor``'s default); ``unbiased=True``
    gives the U-statistic, whose within-set terms average distinct pairs only (weighted:
    divided by ``1 - sum(w**2)``) and which can be negative. ``ED(F, delta_y)`` is twice the
    energy score of ``F`` at ``y``. For nearly equal distributions the three terms cancel, so
    the rounding error is relative to ``E|X - Y|``, not to the (small) distance.

    Args:
        x: ``Tensor[N, *B, *E]`` first sample set (e.g. ground-truth windows).
        y: ``Tensor[M, *B, *E]`` second sample set (e.g. forecast windows).
        unbiased: U-statistic instead of V-statistic; needs ``N, M >= 2``.
        event_dims: Trailing axes flattened into one vector (1: a feature vector; pass 2
            for ``[*, H, D]`` windows).
        x_weights: ``Tensor[N, *B]`` non-negative weights of ``x``.
        x_log_weights: ``Tensor[N, *B]`` log weights of ``x``.
        y_weights: ``Tensor[M, *B]`` non-negative weights of ``y``.
        y_log_weights: ``Tensor[M, *B]`` log weights of ``y``.
        chunk_size: Rows per block of pairwise distances; ``None`` picks one.

    Returns:
        ``Tensor[*B]`` energy distances.

    Example:
        >>> import torch
        >>> x = torch.tensor([[0.0], [2.0]])
        >>> energy_distance(x, x), energy_distance(x, x, unbiased=True)
        (tensor(0.), tensor(-2.))
        >>> energy_distance(torch.randn(50, 4, 8, 6), torch.randn(70, 4, 8, 6), event_dims=2).shape
        torch.Size([4])
    """
    x = _check_tensor("x", x)
    y = _check_tensor("y", y)
    minimum = 2 if unbiased else 1
    for name, value in (("x", x), ("y", y)):
        if value.ndim < 1 + event_dims or value.shape[0] < minimum:
            raise ValueError(
                f"{name} must be [N, *B, *E] with {event_dims} event dims and N >= {minimum}, "
                f"got shape {tuple(value.shape)}"
            )
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(
            f"x and y must agree after the sample axis, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if x.device != y.device:
        raise ValueError(f"x is on {x.device} but y is on {y.device}")
    dtype = _compute_dtype(x, y)
    a, batch = _flatten(x.to(dtype), event_dims)
    b, _ = _flatten(y.to(dtype), event_dims)
    wa = _sample_weights(x_weights, x_log_weights, x.shape[:1] + batch, x.device, dtype)
    wb = _sample_weights(y_weights, y_log_weights, y.shape[:1] + batch, y.device, dtype)
    wa, wb = wa.reshape(x.shape[0], -1).T, wb.reshape(y.shape[0], -1).T
    denom_a = _fair_denominator(wa.T) if unbiased else torch.ones_like(wa[:, 0])
    denom_b = _fair_denominator(wb.T) if unbiased else torch.ones_like(wb[:, 0])
    size_a, size_b = a.shape[1], b.shape[1]
    out = []
    for part in _group_slices(a.shape[0], (size_a + size_b) * a.shape[2]):
        centre = 0.5 * (a[part].mean(1, keepdim=True) + b[part].mean(1, keepdim=True))
        a_part, b_part = a[part] - centre, b[part] - centre
        groups = a_part.shape[0]
        chunk_a = _chunk_rows(chunk_size, size_a, groups * max(size_a, size_b))
        chunk_b = _chunk_rows(chunk_size, size_b, groups * size_b)
        within_a = _self_pair_sum(a_part, wa[part], chunk_a) / denom_a[part]
        within_b = _self_pair_sum(b_part, wb[part], chunk_b) / denom_b[part]
        between = _cross_pair_sum(a_part, wa[part], b_part, wb[part], chunk_a)
        out.append(2.0 * between - within_a - within_b)
    return torch.cat(out).reshape(batch).to(_output_dtype(x, y))


def apd(
    samples: Tensor,
    *,
    p: Literal[1, 2] = 2,
    event_dims: int = 2,
    weights: Tensor | None = None,
    log_weights: Tensor | None = None,
    chunk_size: int | None = None,
) -> Tensor:
    r"""Average pairwise distance between distinct samples, a diversity measure.

    ``p=2`` (default, the motion-prediction convention of DLow and successors): mean over
    pairs ``i != j`` of the Euclidean norm of the flattened event difference.
    ``p=1`` (the GRU-SNF paper's "mean absolute pairwise difference"): mean over pairs and
    over event entries of ``|x_i - x_j|``, on the scale of one coordinate. Weighted:
    ``sum_{i != j} w_i w_j d_ij / (1 - sum(w**2))``.

    Args:
        samples: ``Tensor[S, *B, H, D]`` forecast samples, ``S >= 2``.
        p: 2 for Euclidean distances, 1 for mean absolute differences.
        event_dims: Trailing axes that form one event.
        weights: ``Tensor[S, *B]`` non-negative importance weights.
        log_weights: ``Tensor[S, *B]`` log importance weights.
        chunk_size: Sample rows per block of pairwise distances (``p=2``); ``None`` picks one.

    Returns:
        ``Tensor[*B]`` average pairwise distances.

    Example:
        >>> import torch
        >>> samples = torch.tensor([0.0, 1.0, 3.0]).reshape(3, 1, 1, 1)
        >>> apd(samples, p=1)
        tensor([2.])
    """
    samples = _check_samples(samples, event_dims, 2)
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p!r}")
    dtype = _compute_dtype(samples)
    batch = tuple(samples.shape[1 : samples.ndim - event_dims])
    w = _sample_weights(weights, log_weights, samples.shape[:1] + batch, samples.device, dtype)
    denom = _fair_denominator(w)
    if p == 1:
        values = samples.to(dtype)
        w_event = w.reshape(w.shape + (1,) * event_dims)
        pair_sum = _sorted_pair_sum(values, w_event)
        out = _reduce_event(pair_sum, "mean", event_dims) / denom
    else:
        points, _ = _flatten(samples.to(dtype), event_dims)
        groups, size, features = points.shape
        flat_w = w.reshape(size, -1).T
        sums = []
        for part in _group_slices(groups, size * features):
            centred = points[part] - points[part].mean(1, keepdim=True)
            chunk = _chunk_rows(chunk_size, size, centred.shape[0] * size)
            sums.append(_self_pair_sum(centred, flat_w[part], chunk))
        out = torch.cat(sums).reshape(batch) / denom
    return out.to(_output_dtype(samples))


def variogram_score(
    samples: Tensor,
    obs: Tensor,
    *,
    p: float = 0.5,
    pair_weights: Tensor | None = None,
    fair: bool = False,
    event_dims: int = 2,
    weights: Tensor | None = None,
    log_weights: Tensor | None = None,
    chunk_size: int | None = None,
) -> Tensor:
    r"""Variogram score of order ``p`` (Scheuerer and Hamill 2015), sensitive to correlations.

    ``VS = sum_kl c_kl (|y_k - y_l|**p - sum_i w_i |x_ik - x_il|**p)**2`` over the entries
    ``k, l`` of the flattened event, ``c`` the ``pair_weights`` (scoringrules' ``nrg``
    estimator). ``fair=True`` subtracts the estimation variance of the sample variogram,
    matching scoringrules' ``fair`` estimator. Memory is ``O(chunk_size * prod(B) * F**2)``
    for ``F`` event entries.

    Args:
        samples: ``Tensor[S, *B, H, D]`` forecast samples.
        obs: ``Tensor[*B, H, D]`` outcome.
        p: Order of the variogram, ``p > 0``.
        pair_weights: ``Tensor[F, F]`` (or broadcastable to ``[*B, F, F]``) non-negative
            weights of the entry pairs; all ones by default.
        fair: Use the fair estimator; needs ``S >= 2``.
        event_dims: Trailing axes flattened into one vector.
        weights: ``Tensor[S, *B]`` non-negative importance weights.
        log_weights: ``Tensor[S, *B]`` log importance weights.
        chunk_size: Samples per block of ``[F, F]`` variograms; ``None`` picks one.

    Returns:
        ``Tensor[*B]`` variogram scores.

    Example:
        >>> import torch
        >>> samples = torch.tensor([[0.0, 1.0], [0.0, 3.0]]).reshape(2, 1, 2)
        >>> variogram_score(samples, torch.tensor([[0.0, 2.0]]), p=1.0, event_dims=1)
        tensor([0.])
    """
    samples = _check_samples(samples, event_dims, 2 if fair else 1)
    obs = _check_obs(obs, samples)
    if not p > 0:
        raise ValueError(f"p must be positive, got {p}")
    dtype = _compute_dtype(samples, obs)
    points, batch = _flatten(samples.to(dtype), event_dims)
    groups, size, features = points.shape
    target = obs.to(dtype).reshape(groups, features)
    w = _sample_weights(weights, log_weights, samples.shape[:1] + batch, samples.device, dtype)
    w = w.reshape(size, -1).T
    pair: Tensor | None = None
    if pair_weights is not None:
        pair = _check_tensor("pair_weights", pair_weights).to(dtype)
        if pair.device != samples.device:
            raise ValueError(f"pair_weights is on {pair.device} but samples on {samples.device}")
        if bool((pair < 0).any()):
            raise ValueError("pair_weights must be non-negative")
        try:
            pair = pair.expand(batch + (features, features)).reshape(groups, features, features)
        except RuntimeError:
            raise ValueError(
                f"pair_weights of shape {tuple(pair.shape)} does not broadcast to "
                f"[*B, F, F] = {batch + (features, features)}"
            ) from None

    shrink = w.square().sum(-1) / _fair_denominator(w.T) if fair else None
    scores = []
    for part in _group_slices(groups, features * features):
        chunk = _chunk_rows(chunk_size, size, (part.stop - part.start) * features * features)
        error, var = _variogram_error(points[part], target[part], w[part], p, chunk, fair)
        score = error if shrink is None else error - var * shrink[part].reshape(-1, 1, 1)
        scores.append(score.sum((-2, -1)) if pair is None else (score * pair[part]).sum((-2, -1)))
    return torch.cat(scores).reshape(batch).to(_output_dtype(samples, obs))


def _variogram(x: Tensor, p: float) -> Tensor:
    """``|x_k - x_l|**p`` over the last axis: ``[..., F] -> [..., F, F]``."""
    return (x.unsqueeze(-1) - x.unsqueeze(-2)).abs().pow(p)


def _variogram_error(
    points: Tensor, target: Tensor, w: Tensor, p: float, chunk: int, with_variance: bool
) -> tuple[Tensor, Tensor]:
    """Squared error of the weighted mean variogram and the weighted variance, ``[G, F, F]``."""
    mean = points.new_zeros(points.shape[0], points.shape[2], points.shape[2])
    for start in range(0, points.shape[1], chunk):
        block = _variogram(points[:, start : start + chunk], p)
        mean = mean + torch.einsum("gs,gskl->gkl", w[:, start : start + chunk], block)
    var = torch.zeros_like(mean)
    if with_variance:
        # A second pass around the finished mean avoids E[V^2] - E[V]^2 cancellation.
        for start in range(0, points.shape[1], chunk):
            block = (_variogram(points[:, start : start + chunk], p) - mean.unsqueeze(1)).square()
            var = var + torch.einsum("gs,gskl->gkl", w[:, start : start + chunk], block)
    return (_variogram(target, p) - mean).square(), var


# ----------------------------------------------------------------------------- univariate


def crps(
    samples: Tensor,
    obs: Tensor,
    *,
    fair: bool = False,
    reduce: Reduce = None,
    event_dims: int = 2,
    weights: Tensor | None = None,
    log_weights: Tensor | None = None,
) -> Tensor:
    r"""Continuous ranked probability score of a sample forecast, per entry.

    ``CRPS = sum_i w_i |x_i - y| - 1/2 sum_ij w_i w_j |x_i - x_j|`` for every entry (the
    ``nrg`` estimator of scoringrules, the weighted one of properscoring), computed from
    sorted samples and cumulative weights in ``O(S log S)``. ``fair=True`` divides the pair
    term by ``1 - sum(w**2)`` (scoringrules' ``fair``, equal to its ``pwm``, for equal
    weights).

    Args:
        samples: ``Tensor[S, *B, H, D]`` forecast samples.
        obs: ``Tensor[*B, H, D]`` outcome.
        fair: Use the fair estimator; needs ``S >= 2``.
        reduce: ``None`` keeps every entry; ``"sum"`` or ``"mean"`` reduce the
            ``event_dims`` trailing axes.
        event_dims: Trailing axes that ``reduce`` acts on.
        weights: ``Tensor[S, *B]`` non-negative importance weights.
        log_weights: ``Tensor[S, *B]`` log importance weights.

    Returns:
        ``Tensor[*B, H, D]``, or ``Tensor[*B]`` when reduced.

    Example:
        >>> import torch
        >>> samples = torch.tensor([0.0, 1.0]).reshape(2, 1, 1, 1)
        >>> crps(samples, torch.zeros(1, 1, 1)).flatten()
        tensor([0.2500])
        >>> crps(torch.randn(30, 4, 8, 6), torch.randn(4, 8, 6), reduce="sum").shape
        torch.Size([4])
    """
    samples = _check_samples(samples, event_dims, 2 if fair else 1)
    obs = _check_obs(obs, samples)
    _check_reduce(reduce)
    dtype = _compute_dtype(samples, obs)
    values, target = samples.to(dtype), obs.to(dtype)
    batch = tuple(samples.shape[1 : samples.ndim - event_dims])
    w = _sample_weights(weights, log_weights, samples.shape[:1] + batch, samples.device, dtype)
    w_event = w.reshape(w.shape + (1,) * event_dims)
    spread = _sorted_pair_sum(values, w_event)
    if fair:
        spread = spread / _fair_denominator(w).reshape(batch + (1,) * event_dims)
    score = (w_event * (values - target).abs()).sum(0) - 0.5 * spread
    return _reduce_event(score, reduce, event_dims).to(_output_dtype(samples, obs))


def quantile(
    samples: Tensor,
    q: float | Sequence[float] | Tensor,
    *,
    weights: Tensor | None = None,
    log_weights: Tensor | None = None,
) -> Tensor:
    r"""Quantiles of the (weighted) empirical distribution over the sample axis.

    Uses the averaged inverse CDF (numpy's ``averaged_inverted_cdf``, Hyndman and Fan type 2):
    the smallest ``x`` with ``F(x) >= q``, averaged with the next sample when ``F`` equals
    ``q`` exactly (so the median of an even number of equally weighted samples is the mean
    of the middle two). It depends on the weighted CDF only, so integer weights equal
    repetition and zero-weight samples are ignored; no interpolation between samples.

    Args:
        samples: ``Tensor[S, ...]`` samples.
        q: A level in ``[0, 1]`` or a sequence/1-D tensor of levels.
        weights: ``Tensor[S, *B]`` non-negative weights over the leading axes.
        log_weights: ``Tensor[S, *B]`` log weights over the leading axes.

    Returns:
        ``Tensor[...]`` for a scalar level, ``Tensor[Q, ...]`` for ``Q`` levels.

    Example:
        >>> import torch
        >>> x = torch.tensor([4.0, 1.0, 3.0, 2.0])
        >>> quantile(x, 0.5), quantile(x, [0.0, 0.3, 1.0])
        (tensor(2.5000), tensor([1., 2., 4.]))
        >>> quantile(x, 0.5, weights=torch.tensor([1.0, 0.0, 0.0, 0.0]))
        tensor(4.)
    """
    samples = _check_samples(samples, 0)
    dtype = _compute_dtype(samples)
    # Cumulative weights in float64 so that ties of F with q are found at 1e-12 precision.
    acc = torch.float32 if samples.device.type == "mps" else torch.float64
    levels = _check_levels("quantile levels", q).to(acc).to(samples.device)
    scalar = levels.ndim == 0
    levels = levels.reshape(-1)
    size = samples.shape[0]
    rest = tuple(samples.shape[1:])
    given = [value.ndim for value in (weights, log_weights) if isinstance(value, Tensor)]
    lead = rest[: max(given, default=1) - 1]
    w = _sample_weights(weights, log_weights, (size,) + lead, samples.device, acc)
    w = w.reshape(w.shape + (1,) * (samples.ndim - w.ndim)).expand(samples.shape)
    ordered, order = samples.to(dtype).sort(dim=0)
    cum = w.gather(0, order).cumsum(0).movedim(0, -1).contiguous()
    total = cum[..., -1:]
    tol = 8 * size * torch.finfo(acc).eps
    grid = levels.expand(rest + (levels.numel(),))
    lower = (grid - tol).clamp_min(tol).contiguous()
    upper = torch.minimum(grid + tol, total - tol).contiguous()
    moved = ordered.movedim(0, -1)
    lo = torch.searchsorted(cum, lower).clamp_max(size - 1)
    hi = torch.searchsorted(cum, upper).clamp_max(size - 1)
    out = 0.5 * (moved.gather(-1, lo) + moved.gather(-1, hi))
    out = out.movedim(-1, 0).to(_output_dtype(samples))
    return out[0] if scalar else out


def coverage(
    samples: Tensor,
    obs: Tensor,
    levels: float | Sequence[float] | Tensor,
    *,
    reduce: Reduce = "mean",
    event_dims: int = 2,
    weights: Tensor | None = None,
    log_weights: Tensor | None = None,
) -> Tensor:
    r"""Empirical coverage of central prediction intervals.

    For level ``l`` the interval is ``[quantile((1 - l) / 2), quantile((1 + l) / 2)]``
    (closed, see ``quantile``); an entry is covered when ``obs`` lies inside. A calibrated
    forecast covers a fraction ``l`` on average.

    Args:
        samples: ``Tensor[S, *B, H, D]`` forecast samples.
        obs: ``Tensor[*B, H, D]`` outcome.
        levels: A central interval probability in ``[0, 1]`` or several (``L``).
        reduce: ``"mean"`` gives the covered fraction over the ``event_dims`` trailing
            axes, ``"sum"`` the count, ``None`` the 0/1 indicator per entry.
        event_dims: Trailing axes that ``reduce`` acts on.
        weights: ``Tensor[S, *B]`` non-negative importance weights.
        log_weights: ``Tensor[S, *B]`` log importance weights.

    Returns:
        ``Tensor[L, *B]`` (``Tensor[*B]`` for a scalar level), or with the event axes kept
        when ``reduce=None``.

    Example:
        >>> import torch
        >>> samples = torch.arange(10.0).reshape(10, 1, 1)
        >>> coverage(samples, torch.tensor([[8.5]]), [0.5, 0.8], event_dims=1)
        tensor([[0.], [1.]])
    """
    samples = _check_samples(samples, event_dims)
    obs = _check_obs(obs, samples)
    _check_reduce(reduce)
    levels_t = _check_levels("interval levels", levels)
    probs = torch.stack([(1 - levels_t) / 2, (1 + levels_t) / 2], -1).reshape(-1)
    bounds = quantile(samples, probs, weights=weights, log_weights=log_weights)
    bounds = bounds.reshape(levels_t.shape + (2,) + tuple(samples.shape[1:]))
    inside = (bounds.select(levels_t.ndim, 0) <= obs) & (obs <= bounds.select(levels_t.ndim, 1))
    return _reduce_event(inside.to(_output_dtype(samples, obs)), reduce, event_dims)


# ----------------------------------------------------------------------------- point errors


def _error(
    samples: Tensor,
    obs: Tensor,
    point: str,
    best: int | None,
    reduce: Reduce,
    event_dims: int,
    weights: Tensor | None,
    log_weights: Tensor | None,
    power: int,
) -> Tensor:
    samples = _check_samples(samples, event_dims)
    obs = _check_obs(obs, samples)
    _check_reduce(reduce)
    if point not in ("mean", "median", "samples"):
        raise ValueError(f"point must be 'mean', 'median' or 'samples', got {point!r}")
    if best is not None and (point != "samples" or reduce is None):
        raise ValueError("best=k needs point='samples' and a reduce, to rank whole samples")
    if best is not None and not 1 <= best <= samples.shape[0]:
        raise ValueError(f"best must lie in [1, S={samples.shape[0]}], got {best}")
    dtype = _compute_dtype(samples, obs)
    values, target = samples.to(dtype), obs.to(dtype)
    batch = tuple(samples.shape[1 : samples.ndim - event_dims])
    lead = samples.shape[:1] + batch
    if point == "median":
        forecast = quantile(values, 0.5, weights=weights, log_weights=log_weights)
        out = _reduce_event((forecast - target).abs().pow(power), reduce, event_dims)
        return out.to(_output_dtype(samples, obs))
    w = _sample_weights(weights, log_weights, lead, samples.device, dtype)
    w_event = w.reshape(w.shape + (1,) * event_dims)
    if point == "mean":
        forecast = (w_event * values).sum(0)
        out = _reduce_event((forecast - target).abs().pow(power), reduce, event_dims)
    elif best is None:
        out = _reduce_event(
            (w_event * (values - target).abs().pow(power)).sum(0), reduce, event_dims
        )
    else:
        per_sample = _reduce_event((values - target).abs().pow(power), reduce, event_dims)
        per_sample = per_sample.masked_fill(w == 0, float("inf"))
        if bool((w > 0).sum(0).lt(best).any()):
            raise ValueError(f"best={best} exceeds the samples with positive weight in a series")
        out = per_sample.topk(best, dim=0, largest=False).values.mean(0)
    return out.to(_output_dtype(samples, obs))


def mae(
    samples: Tensor,
    obs: Tensor,
    *,
    point: Literal["median", "mean", "samples"] = "median",
    best: int | None = None,
    reduce: Reduce = "mean",
    event_dims: int = 2,
    weights: Tensor | None = None,
    log_weights: Tensor | None = None,
) -> Tensor:
    r"""Mean absolute error of a sample forecast.

    ``point="median"`` (default) scores the (weighted) sample median, the point forecast
    that minimises expected absolute error; ``"mean"`` the weighted mean; ``"samples"`` the
    expected error over samples, ``sum_i w_i |x_i - y|``. With ``point="samples"`` and
    ``best=k`` it averages the ``k`` samples of smallest error instead (the GRU-SNF paper's
    "MAE of the best 20 of 100"; best-of-k favours wide forecasts, so report it beside the
    all-sample figure). Zero-weight samples are never selected; selected samples count
    equally.

    Args:
        samples: ``Tensor[S, *B, H, D]`` forecast samples.
        obs: ``Tensor[*B, H, D]`` outcome.
        point: Which point forecast (or ``"samples"``) is scored.
        best: Average the ``best`` lowest-error samples (``point="samples"`` only).
        reduce: ``"mean"``/``"sum"`` over the ``event_dims`` trailing axes or ``None``.
        event_dims: Trailing axes that ``reduce`` acts on.
        weights: ``Tensor[S, *B]`` non-negative importance weights.
        log_weights: ``Tensor[S, *B]`` log importance weights.

    Returns:
        ``Tensor[*B]``, or ``Tensor[*B, H, D]`` when ``reduce=None``.

    Example:
        >>> import torch
        >>> samples = torch.tensor([0.0, 1.0, 5.0]).reshape(3, 1, 1, 1)
        >>> obs = torch.zeros(1, 1, 1)
        >>> mae(samples, obs), mae(samples, obs, point="mean"), mae(samples, obs, point="samples")
        (tensor([1.]), tensor([2.]), tensor([2.]))
        >>> mae(samples, obs, point="samples", best=2)
        tensor([0.5000])
    """
    return _error(samples, obs, point, best, reduce, event_dims, weights, log_weights, 1)


def mse(
    samples: Tensor,
    obs: Tensor,
    *,
    point: Literal["mean", "median", "samples"] = "mean",
    best: int | None = None,
    reduce: Reduce = "mean",
    event_dims: int = 2,
    weights: Tensor | None = None,
    log_weights: Tensor | None = None,
) -> Tensor:
    r"""Mean squared error of a sample forecast.

    ``point="mean"`` (default) scores the weighted sample mean, the point forecast that
    minimises expected squared error; ``"median"`` and ``"samples"`` (with optional
    ``best=k``) as in ``mae``.

    Args:
        samples: ``Tensor[S, *B, H, D]`` forecast samples.
        obs: ``Tensor[*B, H, D]`` outcome.
        point: Which point forecast (or ``"samples"``) is scored.
        best: Average the ``best`` lowest-error samples (``point="samples"`` only).
        reduce: ``"mean"``/``"sum"`` over the ``event_dims`` trailing axes or ``None``.
        event_dims: Trailing axes that ``reduce`` acts on.
        weights: ``Tensor[S, *B]`` non-negative importance weights.
        log_weights: ``Tensor[S, *B]`` log importance weights.

    Returns:
        ``Tensor[*B]``, or ``Tensor[*B, H, D]`` when ``reduce=None``.

    Example:
        >>> import torch
        >>> samples = torch.tensor([0.0, 1.0, 5.0]).reshape(3, 1, 1, 1)
        >>> mse(samples, torch.zeros(1, 1, 1)), mse(samples, torch.zeros(1, 1, 1), point="samples")
        (tensor([4.]), tensor([8.6667]))
    """
    return _error(samples, obs, point, best, reduce, event_dims, weights, log_weights, 2)


# ----------------------------------------------------------------------------- trajectories


def _keypoint_errors(
    samples: Tensor,
    obs: Tensor,
    coords: int,
    weights: Tensor | None,
    log_weights: Tensor | None,
) -> tuple[Tensor, Tensor]:
    """Per-sample Euclidean errors ``[S, *B, H, K]`` and weights ``[S, *B]``."""
    samples = _check_samples(samples, 2)
    obs = _check_obs(obs, samples)
    if isinstance(coords, bool) or not isinstance(coords, int) or coords < 1:
        raise ValueError(f"coords must be a positive int, got {coords!r}")
    features = samples.shape[-1]
    if features % coords:
        raise ValueError(
            f"the feature axis ({features}) must hold keypoints x coords; "
            f"{features} is not a multiple of coords={coords}"
        )
    dtype = _compute_dtype(samples, obs)
    diff = (samples.to(dtype) - obs.to(dtype)).unflatten(-1, (features // coords, coords))
    w = _sample_weights(weights, log_weights, samples.shape[:-2], samples.device, dtype)
    return torch.linalg.vector_norm(diff, dim=-1), w


def _expected(per_sample: Tensor, w: Tensor, like: tuple[Tensor, Tensor]) -> Tensor:
    return (w * per_sample).sum(0).to(_output_dtype(*like))


def _minimum(per_sample: Tensor, w: Tensor, like: tuple[Tensor, Tensor]) -> Tensor:
    return per_sample.masked_fill(w == 0, float("inf")).amin(0).to(_output_dtype(*like))


def ade(
    samples: Tensor,
    obs: Tensor,
    *,
    coords: int = 2,
    weights: Tensor | None = None,
    log_weights: Tensor | None = None,
) -> Tensor:
    r"""Average displacement error, expected over samples.

    The Euclidean distance per keypoint, averaged over keypoints and time steps, then
    averaged over samples with their weights. ``min_ade`` is the best-of-S variant.

    Args:
        samples: ``Tensor[S, *B, H, D]`` forecast samples, ``D = K * coords`` for ``K``
            keypoints stored as consecutive coordinate groups ``(x1, y1, x2, y2, ...)``.
        obs: ``Tensor[*B, H, D]`` ground-truth trajectory.
        coords: Coordinates per keypoint (2 for image points, 3 for 3-D joints).
        weights: ``Tensor[S, *B]`` non-negative importance weights.
        log_weights: ``Tensor[S, *B]`` log importance weights.

    Returns:
        ``Tensor[*B]``.
    Example:
        >>> import torch
        >>> samples = torch.zeros(2, 1, 4, 2)
        >>> samples[1, ..., 0] = 3.0
        >>> samples[1, ..., 1] = 4.0
        >>> ade(samples, torch.zeros(1, 4, 2))
        tensor([2.5000])
    """
    errors, w = _keypoint_errors(samples, obs, coords, weights, log_weights)
    return _expected(errors.mean((-2, -1)), w, (samples, obs))


def fde(
    samples: Tensor,
    obs: Tensor,
    *,
    coords: int = 2,
    weights: Tensor | None = None,
    log_weights: Tensor | None = None,
) -> Tensor:
    r"""Final displacement error, expected over samples.

    The Euclidean distance per keypoint at the last time step, averaged over keypoints, then
    averaged over samples with their weights. ``min_fde`` is the best-of-S variant.

    Args:
        samples: ``Tensor[S, *B, H, D]`` forecast samples, ``D = K * coords`` for ``K``
            keypoints stored as consecutive coordinate groups ``(x1, y1, x2, y2, ...)``.
        obs: ``Tensor[*B, H, D]`` ground-truth trajectory.
        coords: Coordinates per keypoint (2 for image points, 3 for 3-D joints).
        weights: ``Tensor[S, *B]`` non-negative importance weights.
        log_weights: ``Tensor[S, *B]`` log importance weights.

    Returns:
        ``Tensor[*B]``.
    Example:
        >>> import torch
        >>> samples = torch.zeros(2, 1, 4, 2)
        >>> samples[:, :, -1, 0] = torch.tensor([[1.0], [3.0]])
        >>> fde(samples, torch.zeros(1, 4, 2), weights=torch.tensor([3.0, 1.0]))
        tensor([1.5000])
    """
    errors, w = _keypoint_errors(samples, obs, coords, weights, log_weights)
    return _expected(errors[..., -1, :].mean(-1), w, (samples, obs))


def min_ade(
    samples: Tensor,
    obs: Tensor,
    *,
    coords: int = 2,
    weights: Tensor | None = None,
    log_weights: Tensor | None = None,
) -> Tensor:
    r"""Best-of-S average displacement error: the smallest ADE among the samples.

    Weights only select: samples of zero weight are excluded, the others compete equally.

    Args:
        samples: ``Tensor[S, *B, H, D]`` forecast samples, ``D = K * coords`` for ``K``
            keypoints stored as consecutive coordinate groups ``(x1, y1, x2, y2, ...)``.
        obs: ``Tensor[*B, H, D]`` ground-truth trajectory.
        coords: Coordinates per keypoint (2 for image points, 3 for 3-D joints).
        weights: ``Tensor[S, *B]`` non-negative importance weights.
        log_weights: ``Tensor[S, *B]`` log importance weights.

    Returns:
        ``Tensor[*B]``.
    Example:
        >>> import torch
        >>> samples = torch.arange(3.0).reshape(3, 1, 1, 1).expand(3, 1, 5, 2)
        >>> obs = torch.full((1, 5, 2), 2.0)
        >>> min_ade(samples, obs), min_ade(samples, obs, weights=torch.tensor([1.0, 1.0, 0.0]))
        (tensor([0.]), tensor([1.4142]))
    """
    errors, w = _keypoint_errors(samples, obs, coords, weights, log_weights)
    return _minimum(errors.mean((-2, -1)), w, (samples, obs))


def min_fde(
    samples: Tensor,
    obs: Tensor,
    *,
    coords: int = 2,
    weights: Tensor | None = None,
    log_weights: Tensor | None = None,
) -> Tensor:
    r"""Best-of-S final displacement error: the smallest FDE among the samples.

    Weights only select: samples of zero weight are excluded, the others compete equally.

    Args:
        samples: ``Tensor[S, *B, H, D]`` forecast samples, ``D = K * coords`` for ``K``
            keypoints stored as consecutive coordinate groups ``(x1, y1, x2, y2, ...)``.
        obs: ``Tensor[*B, H, D]`` ground-truth trajectory.
        coords: Coordinates per keypoint (2 for image points, 3 for 3-D joints).
        weights: ``Tensor[S, *B]`` non-negative importance weights.
        log_weights: ``Tensor[S, *B]`` log importance weights.

    Returns:
        ``Tensor[*B]``.
    Example:
        >>> import torch
        >>> samples = torch.arange(3.0).reshape(3, 1, 1, 1).expand(3, 1, 5, 2)
        >>> min_fde(samples, torch.full((1, 5, 2), 1.0))
        tensor([0.])
    """
    errors, w = _keypoint_errors(samples, obs, coords, weights, log_weights)
    return _minimum(errors[..., -1, :].mean(-1), w, (samples, obs))
