"""Point and trajectory errors: MAE, MSE (with best-of-K), ADE/FDE and their minimum-over-S.

MAE and MSE score a point forecast (weighted median or mean) or the samples themselves;
ADE/FDE measure Euclidean keypoint displacements of trajectories, expected over samples or
best of S. See :mod:`snfseq.metrics` for shapes and weights.

Example:
    >>> import torch
    >>> samples, obs = torch.randn(50, 4, 8, 6), torch.randn(4, 8, 6)
    >>> mae(samples, obs).shape, min_fde(samples, obs, coords=3).shape
    (torch.Size([4]), torch.Size([4]))
"""

from __future__ import annotations

__all__ = ["ade", "fde", "mae", "min_ade", "min_fde", "mse"]

from typing import Literal

import torch
from torch import Tensor

from snfseq.metrics._core import (
    Reduce,
    _check_obs,
    _check_reduce,
    _check_samples,
    _compute_dtype,
    _output_dtype,
    _reduce_event,
    _sample_weights,
)
from snfseq.metrics.univariate import quantile


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
