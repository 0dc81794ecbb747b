"""Multivariate metrics: energy score, energy distance, average pairwise distance, variogram.

Each flattens the trailing ``event_dims`` axes into one vector per sample and reduces the
sample axis with the blocked pair sums of :mod:`snfseq.metrics._pairwise`; see
:mod:`snfseq.metrics` for shapes, weights and memory.

Example:
    >>> import torch
    >>> samples, obs = torch.randn(50, 4, 8, 6), torch.randn(4, 8, 6)
    >>> energy_score(samples, obs).shape, apd(samples).shape
    (torch.Size([4]), torch.Size([4]))
"""

from __future__ import annotations

__all__ = ["apd", "energy_distance", "energy_score", "variogram_score"]

from typing import Literal

import torch
from torch import Tensor

from snfseq.metrics._core import (
    _check_obs,
    _check_samples,
    _check_tensor,
    _compute_dtype,
    _fair_denominator,
    _output_dtype,
    _reduce_event,
    _sample_weights,
)
from snfseq.metrics._pairwise import (
    _chunk_rows,
    _cross_pair_sum,
    _flatten,
    _group_slices,
    _point_distance_sum,
    _self_pair_sum,
    _sorted_pair_sum,
)


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
            result does not depend on it beyond rounding; memory does (see
            :mod:`snfseq.metrics`).

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
