"""Univariate (per-entry) metrics: CRPS, weighted quantiles and interval coverage.

They treat every entry of the event separately, from sorted samples and cumulative weights
(``O(S log S)``); see :mod:`snfseq.metrics` for shapes and weights.

Example:
    >>> import torch
    >>> samples, obs = torch.randn(50, 4, 8, 6), torch.randn(4, 8, 6)
    >>> crps(samples, obs).shape, quantile(samples, [0.1, 0.9]).shape
    (torch.Size([4, 8, 6]), torch.Size([2, 4, 8, 6]))
"""

from __future__ import annotations

__all__ = ["coverage", "crps", "quantile"]

from collections.abc import Sequence

import torch
from torch import Tensor

from snfseq.metrics._core import (
    Reduce,
    _check_levels,
    _check_obs,
    _check_reduce,
    _check_samples,
    _compute_dtype,
    _fair_denominator,
    _output_dtype,
    _reduce_event,
    _sample_weights,
)
from snfseq.metrics._pairwise import _sorted_pair_sum


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
