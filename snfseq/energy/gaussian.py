"""Gaussian-type energies with closed-form gradients, and the published GRU-SNF energy.

Example:
    >>> import torch
    >>> u = 0.5 * StandardNormal() + SquaredDistance(torch.zeros(3))
    >>> u(torch.ones(2, 3))
    tensor([3.7500, 3.7500])
"""

from __future__ import annotations

__all__ = [
    "Gaussian",
    "GaussianMixture",
    "SquaredDistance",
    "StandardNormal",
    "paper_energy",
]

import math

import torch
from torch import Tensor

from snfseq.energy.base import LOG_2PI, Energy, Interpolated, check_factor, like, per_point


def _check_loc(loc: Tensor) -> Tensor:
    loc = torch.as_tensor(loc)
    if loc.dim() < 1 or not loc.is_floating_point():
        raise ValueError(
            f"loc must be a floating-point Tensor[..., D], got shape {tuple(loc.shape)} "
            f"and dtype {loc.dtype}"
        )
    return loc


def _matched(x: Tensor, loc: Tensor) -> Tensor:
    """``x``, after checking that its points have as many features as ``loc``."""
    if x.shape[-1:] != loc.shape[-1:] and loc.shape[-1] != 1:
        raise ValueError(f"the points have {x.shape[-1]} features, loc has {loc.shape[-1]}")
    return x


class StandardNormal(Energy):
    """``0.5 * |x|^2``: the energy of ``N(0, I)`` without its normaliser.

    Example:
        >>> import torch
        >>> StandardNormal()(torch.ones(2, 4))
        tensor([2., 2.])
    """

    def __call__(self, x: Tensor) -> Tensor:
        return 0.5 * x.square().sum(-1)

    def _value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = x.detach()
        return 0.5 * x.square().sum(-1), x.clone()

    def __repr__(self) -> str:
        return "StandardNormal()"


class Gaussian(Energy):
    """Diagonal Gaussian energy ``0.5 * sum(((x - loc) / scale)^2)``.

    Args:
        loc: mean, ``Tensor[..., D]``; leading dimensions broadcast against the points (a
            ``[B, D]`` loc with points ``[S, B, D]`` gives one mean per series).
        scale: standard deviation, a positive float or a tensor broadcastable to
            ``[..., D]`` (scalar or per dimension); tensor values are not checked, so that
            building the energy never waits on the device.
        normalized: add the log-normaliser ``sum(log scale) + D/2 log(2 pi)`` so that the
            energy is exactly ``-log N(x; loc, diag(scale^2))``.

    Example:
        >>> import torch
        >>> u = Gaussian(torch.zeros(4, 3), scale=2.0)
        >>> u(torch.randn(100, 4, 3)).shape
        torch.Size([100, 4])
    """

    def __init__(self, loc: Tensor, scale: Tensor | float = 1.0, normalized: bool = False) -> None:
        self.loc = _check_loc(loc)
        self.scale = check_factor("scale", scale)
        if isinstance(self.scale, float) and not 0 < self.scale < math.inf:
            raise ValueError(f"scale must be positive and finite, got {self.scale}")
        self.normalized = normalized

    def _standardize(self, x: Tensor) -> Tensor:
        return (_matched(x, self.loc) - like(self.loc, x)) / like(self.scale, x)

    def _log_normalizer(self, x: Tensor, standardized: Tensor) -> Tensor | float:
        scale = like(self.scale, x)
        dim = standardized.shape[-1]
        if isinstance(scale, Tensor):
            return torch.log(scale).expand(standardized.shape).sum(-1) + 0.5 * dim * LOG_2PI
        return dim * (math.log(scale) + 0.5 * LOG_2PI)

    def __call__(self, x: Tensor) -> Tensor:
        standardized = self._standardize(x)
        energy = 0.5 * standardized.square().sum(-1)
        if self.normalized:
            energy = energy + self._log_normalizer(x, standardized)
        return energy

    def _value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = x.detach()
        standardized = self._standardize(x)
        energy = 0.5 * standardized.square().sum(-1)
        if self.normalized:
            energy = energy + self._log_normalizer(x, standardized)
        return energy, standardized / like(self.scale, x)

    def __repr__(self) -> str:
        return f"Gaussian(loc shape {tuple(self.loc.shape)}, normalized={self.normalized})"


class SquaredDistance(Energy):
    """``weight * |x - loc|^2`` (no factor 1/2): the data term of the published GRU-SNF energy.

    Args:
        loc: the point the energy pulls towards, ``Tensor[..., D]``, broadcast like
            :class:`Gaussian`'s ``loc``.
        weight: a float or a tensor broadcastable to the batch shape ``[...]``.

    Example:
        >>> import torch
        >>> SquaredDistance(torch.zeros(3), weight=2.0)(torch.ones(1, 3))
        tensor([6.])
    """

    def __init__(self, loc: Tensor, weight: Tensor | float = 1.0) -> None:
        self.loc = _check_loc(loc)
        self.weight = check_factor("weight", weight)

    def __call__(self, x: Tensor) -> Tensor:
        distance = (x - like(self.loc, x)).square().sum(-1)
        if isinstance(self.weight, float) and self.weight == 1.0:
            return distance
        return like(self.weight, x) * distance

    def _value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = x.detach()
        weight = like(self.weight, x)
        diff = x - like(self.loc, x)
        return weight * diff.square().sum(-1), (2.0 * per_point(weight)) * diff

    def __repr__(self) -> str:
        return f"SquaredDistance(loc shape {tuple(self.loc.shape)}, weight={self.weight!r})"


class GaussianMixture(Energy):
    """``-log`` of a normalised mixture of diagonal Gaussians, computed with log-sum-exp.

    Args:
        locs: component means, ``Tensor[M, D]``.
        scales: component standard deviations: a float, ``Tensor[M]`` (isotropic per
            component) or ``Tensor[M, D]``.
        weights: mixture weights, ``Tensor[M]``, positive; normalised to sum to one.
            ``None`` gives equal weights.

    Example:
        >>> import torch
        >>> u = GaussianMixture(torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), 0.5)
        >>> u(torch.randn(7, 2)).shape
        torch.Size([7])
    """

    def __init__(
        self, locs: Tensor, scales: Tensor | float = 1.0, weights: Tensor | None = None
    ) -> None:
        locs = torch.as_tensor(locs)
        if locs.dim() != 2 or not locs.is_floating_point():
            raise ValueError(
                f"locs must be a floating-point Tensor[M, D], got shape {tuple(locs.shape)}"
            )
        num_components, dim = locs.shape
        scales_t = torch.as_tensor(scales, dtype=locs.dtype, device=locs.device)
        if scales_t.dim() == 0:
            scales_t = scales_t.expand(num_components, dim)
        elif scales_t.shape == (num_components,):
            scales_t = scales_t.unsqueeze(-1).expand(num_components, dim)
        elif scales_t.shape != (num_components, dim):
            raise ValueError(
                f"scales must be a float, Tensor[M] or Tensor[M, D] with M={num_components}, "
                f"D={dim}; got shape {tuple(scales_t.shape)}"
            )
        if not bool((scales_t > 0).all()):
            raise ValueError("scales must be positive")
        if weights is None:
            weights_t = torch.full(
                (num_components,), 1.0 / num_components, dtype=locs.dtype, device=locs.device
            )
        else:
            weights_t = torch.as_tensor(weights, dtype=locs.dtype, device=locs.device)
            if weights_t.shape != (num_components,):
                raise ValueError(
                    f"weights must be Tensor[M] with M={num_components}, got shape "
                    f"{tuple(weights_t.shape)}"
                )
            if not bool((weights_t > 0).all()):
                raise ValueError("weights must be positive")
        self.locs = locs
        self.scales = scales_t.contiguous()
        self.weights = weights_t / weights_t.sum()
        # Per-component constant of log(w_m N(x; loc_m, diag s_m^2)).
        self._log_const = (
            torch.log(self.weights) - torch.log(self.scales).sum(-1) - 0.5 * dim * LOG_2PI
        )

    def _component_terms(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if x.shape[-1] != self.locs.shape[-1]:
            raise ValueError(
                f"x has {x.shape[-1]} features but the mixture has {self.locs.shape[-1]}"
            )
        scales = self.scales.to(dtype=x.dtype, device=x.device)
        diff = x.unsqueeze(-2) - self.locs.to(dtype=x.dtype, device=x.device)
        standardized = diff / scales
        log_joint = self._log_const.to(dtype=x.dtype, device=x.device) - 0.5 * (
            standardized.square().sum(-1)
        )
        return log_joint, standardized, scales

    def __call__(self, x: Tensor) -> Tensor:
        log_joint, _, _ = self._component_terms(x)
        return -torch.logsumexp(log_joint, dim=-1)

    def _value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        log_joint, standardized, scales = self._component_terms(x.detach())
        log_density = torch.logsumexp(log_joint, dim=-1)
        responsibility = torch.exp(log_joint - log_density.unsqueeze(-1))
        grad = (responsibility.unsqueeze(-1) * standardized / scales).sum(-2)
        return -log_density, grad

    def __repr__(self) -> str:
        return f"GaussianMixture(M={self.locs.shape[0]}, D={self.locs.shape[1]})"


def paper_energy(yhat: Tensor, lam: Tensor | float) -> Interpolated:
    """The published GRU-SNF block energy ``(1 - lam) * 0.5 |y|^2 + lam * |yhat - y|^2``.

    Args:
        yhat: the GRU-driven prediction, ``Tensor[..., D]``.
        lam: interpolation weight in ``[0, 1]``, float or ``Tensor[...]``.

    Example:
        >>> import torch
        >>> paper_energy(torch.ones(2), 0.5)(torch.zeros(3, 2))
        tensor([1., 1., 1.])
    """
    return Interpolated(StandardNormal(), SquaredDistance(yhat), lam)
