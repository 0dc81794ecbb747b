"""Importance weights: self-normalisation, Kish effective sample size, resampling.

Refinement paths carry unnormalised log-weights ``Tensor[S, *B]`` (``S`` samples first, any
batch dims after). Self-normalised over ``S`` they turn sample averages into consistent
estimates under the target; the Kish ESS says how many equally weighted samples they are
worth; resampling draws ancestor indices in proportion to the weights, series by series.
Forecasts, SNF samples and metrics all use these functions.

Example:
    >>> import torch
    >>> log_w = torch.tensor([[0.0, 0.0], [0.0, -torch.inf]])
    >>> normalize(log_w)
    tensor([[0.5000, 1.0000],
            [0.5000, 0.0000]])
    >>> kish_ess(log_w)
    tensor([2., 1.])
"""

from __future__ import annotations

__all__ = ["Weighted", "kish_ess", "normalize", "resample", "resample_degenerate"]

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor


def normalize(log_weights: Tensor, dim: int = 0) -> Tensor:
    """Self-normalised weights ``softmax(log_weights)`` over ``dim`` (default: the sample axis).

    Args:
        log_weights: Unnormalised log-weights, e.g. ``Tensor[S, *B]``.
        dim: The sample axis.

    Example:
        >>> normalize(torch.log(torch.tensor([1.0, 3.0])))
        tensor([0.2500, 0.7500])
    """
    return torch.softmax(log_weights, dim=dim)


def kish_ess(log_weights: Tensor, dim: int = 0) -> Tensor:
    """Kish effective sample size ``(sum w)^2 / sum w^2`` of unnormalised log-weights.

    Args:
        log_weights: ``Tensor[S, *B]`` (or the sample axis at ``dim``).
        dim: The sample axis.

    Returns:
        ``Tensor[*B]``, between 1 and ``S``.

    Example:
        >>> kish_ess(torch.zeros(10, 3))
        tensor([10., 10., 10.])
    """
    log_w = log_weights - log_weights.amax(dim, keepdim=True)
    return torch.exp(2 * torch.logsumexp(log_w, dim) - torch.logsumexp(2 * log_w, dim))


def resample(
    log_weights: Tensor,
    method: Literal["systematic", "multinomial"] = "systematic",
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Ancestor indices drawn in proportion to the weights, independently for every series.

    Systematic resampling uses one uniform per series and ``S`` evenly spaced points on the
    weights' cumulative sum (low variance: a sample of weight ``w`` gets ``floor(S w)`` or
    ``ceil(S w)`` offspring); multinomial draws ``S`` independent ancestors.

    Args:
        log_weights: Unnormalised ``Tensor[S, *B]``.
        method: ``"systematic"`` or ``"multinomial"``.
        generator: Random generator (default: the global one).

    Returns:
        ``Tensor[S, *B]`` (long): the sample each new sample copies, within its own series.

    Example:
        >>> log_w = torch.log(torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]))
        >>> resample(log_w).T
        tensor([[1, 1, 1, 1],
                [0, 0, 0, 0]])
    """
    if log_weights.dim() < 1:
        raise ValueError("log_weights must be Tensor[S, *B] with the samples first")
    num_samples = log_weights.shape[0]
    flat = normalize(log_weights.reshape(num_samples, -1).double(), 0).T  # [B, S]
    if method == "multinomial":
        ancestors = torch.multinomial(flat, num_samples, replacement=True, generator=generator)
    elif method == "systematic":
        offset = torch.rand(
            flat.shape[0], 1, dtype=flat.dtype, device=flat.device, generator=generator
        )
        points = torch.arange(num_samples, dtype=flat.dtype, device=flat.device) + offset
        cumulative = flat.cumsum(-1)
        cumulative[:, -1] = 1.0  # rounding must not leave the last points without an ancestor
        ancestors = torch.searchsorted(cumulative, points / num_samples, right=True)
        ancestors = ancestors.clamp_max(num_samples - 1)
    else:
        raise ValueError(f"method must be 'systematic' or 'multinomial', got {method!r}")
    return ancestors.T.reshape(log_weights.shape)


def resample_degenerate(
    log_weights: Tensor,
    fraction: float,
    method: Literal["systematic", "multinomial"] = "systematic",
) -> tuple[Tensor, Tensor] | None:
    """Resamples the columns of ``log_weights: Tensor[S, B]`` whose Kish ESS is below
    ``fraction x S`` (one step of sequential Monte Carlo); None when no column is.

    Returns:
        ``index: Tensor[S * B]`` (long), the row each row copies in the row-major order
        ``s * B + b`` (within its column; itself in the columns left alone), and
        ``Tensor[S, B]``, the copies' log-weights: their column's log mean weight where it was
        resampled (the copies restart equal and the column's total weight is kept), the
        weights as they were elsewhere.

    Example:
        >>> log_w = torch.log(torch.tensor([[1.0, 1.0], [0.0, 1.0]]))  # S = 2, B = 2
        >>> index, restarted = resample_degenerate(log_w, 0.9)
        >>> index.tolist(), restarted.exp().tolist()
        ([0, 1, 0, 3], [[0.5, 1.0], [0.5, 1.0]])
    """
    samples, columns = log_weights.shape
    low = kish_ess(log_weights) < fraction * samples
    if not bool(low.any()):
        return None
    device = log_weights.device
    ancestors = torch.where(
        low, resample(log_weights, method), torch.arange(samples, device=device)[:, None]
    )
    index = (ancestors * columns + torch.arange(columns, device=device)).flatten()
    mean = torch.logsumexp(log_weights, 0) - math.log(samples)
    return index, torch.where(low, mean.expand_as(log_weights), log_weights)


class Weighted:
    """Mixin for results that hold ``samples: Tensor[S, *B, ...]`` and optional
    ``log_weights: Tensor[S, *B]``: self-normalised weights, Kish ESS and weighted averages.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Draws(Weighted):
        ...     samples: Tensor
        ...     log_weights: Tensor | None = None
        >>> draws = Draws(torch.tensor([[0.0], [2.0]]), torch.log(torch.tensor([1.0, 3.0])))
        >>> draws.expectation(), draws.ess
        (tensor([1.5000]), tensor(1.6000))
    """

    samples: Tensor
    log_weights: Tensor | None

    @property
    def weights(self) -> Tensor | None:
        """Self-normalised importance weights ``Tensor[S, *B]`` (None without log-weights)."""
        return None if self.log_weights is None else normalize(self.log_weights)

    @property
    def ess(self) -> Tensor | None:
        """Kish effective sample size ``Tensor[*B]`` (None without log-weights)."""
        return None if self.log_weights is None else kish_ess(self.log_weights)

    def expectation(self, fn: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """Self-normalised importance estimate of ``E[fn(x)]`` over the sample axis.

        Args:
            fn: Applied to ``samples`` (default: identity); unweighted mean without weights.
        """
        values = self.samples if fn is None else fn(self.samples)
        weights = self.weights
        if weights is None:
            return values.mean(0)
        weights = weights.to(values.dtype)
        return (
            weights.reshape(weights.shape + (1,) * (values.dim() - weights.dim())) * values
        ).sum(0)
