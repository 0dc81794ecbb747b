"""Composable energies ``u(x) = -log p(x) + const`` over the last axis of a tensor.

An energy maps ``Tensor[..., D]`` to ``Tensor[...]``: every leading index is an independent
point (a sample, a series, a chain). Energies compose with ``+``, with multiplication by a
float or by a tensor broadcastable to the batch shape, and with :class:`Interpolated`.
``value_and_grad`` returns the energy and its gradient; the Gaussian-type energies and their
compositions supply it in closed form, everything else falls back to autograd.

Example:
    >>> import torch
    >>> yhat = torch.zeros(4, 3)
    >>> u = 0.5 * StandardNormal() + SquaredDistance(yhat)
    >>> x = torch.randn(100, 4, 3)
    >>> e, g = u.value_and_grad(x)
    >>> e.shape, g.shape
    (torch.Size([100, 4]), torch.Size([100, 4, 3]))
    >>> bool(torch.allclose(e, 0.5 * 0.5 * x.square().sum(-1) + x.square().sum(-1)))
    True
"""

from __future__ import annotations

__all__ = [
    "Energy",
    "EnergyLike",
    "Gaussian",
    "GaussianMixture",
    "LOG_2PI",
    "Interpolated",
    "PullBack",
    "Potential",
    "Scaled",
    "SquaredDistance",
    "StandardNormal",
    "Sum",
    "as_energy",
    "paper_energy",
]

import abc
import math
from collections.abc import Callable
from typing import Union

import torch
from torch import Tensor

#: Anything a kernel accepts as a potential: an :class:`Energy` or a plain callable.
EnergyLike = Union["Energy", Callable[[Tensor], Tensor]]

#: ``log(2 pi)``, the constant of every Gaussian log-density.
LOG_2PI = math.log(2.0 * math.pi)


def _like(value: Tensor | float, x: Tensor) -> Tensor | float:
    """Moves a tensor parameter to the dtype and device of ``x`` (no copy when they match)."""
    if isinstance(value, Tensor):
        return value.to(dtype=x.dtype, device=x.device)
    return value


def _per_point(factor: Tensor | float) -> Tensor | float:
    """Appends a feature axis to a batch-shaped factor so that it scales ``Tensor[..., D]``."""
    if isinstance(factor, Tensor) and factor.dim() > 0:
        return factor.unsqueeze(-1)
    return factor


def _check_factor(name: str, value: object) -> Tensor | float:
    if isinstance(value, Tensor):
        if not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"{name} must be a float or a Tensor, got {type(value).__name__}")


class Energy(abc.ABC):
    """Base class: a scalar energy per point, ``Tensor[..., D] -> Tensor[...]``.

    Subclasses implement ``__call__``; those with a closed-form gradient override
    ``_value_and_grad``. Energies are plain callables (not ``nn.Module``): parameters live on
    the tensors they were given and follow the dtype and device of the input.

    Example:
        >>> import torch
        >>> u = StandardNormal() + 2.0 * Gaussian(torch.ones(3))
        >>> u(torch.zeros(5, 3)).shape
        torch.Size([5])
    """

    @abc.abstractmethod
    def __call__(self, x: Tensor) -> Tensor:
        """Energy of every point.

        Args:
            x: points, ``Tensor[..., D]``.

        Returns:
            ``Tensor[...]``, the energy of each point.
        """

    def value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Energy and its gradient with respect to ``x``, both detached.

        Works inside ``torch.no_grad()``. ``x`` must carry the full batch shape of the result
        (expand it first when a parameter has more batch dimensions than ``x``).

        Args:
            x: points, ``Tensor[..., D]``.

        Returns:
            ``(energy, grad)`` with shapes ``Tensor[...]`` and ``Tensor[..., D]``.

        Raises:
            ValueError: when the energy does not have shape ``x.shape[:-1]``.
        """
        energy, grad = self._value_and_grad(x)
        if energy.shape != x.shape[:-1] or grad.shape != x.shape:
            raise ValueError(
                f"value_and_grad needs x to carry the full batch shape: x has shape "
                f"{tuple(x.shape)} but the energy has shape {tuple(energy.shape)}; expand x "
                f"to the broadcast batch shape first"
            )
        return energy, grad

    def _value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            leaf = x.detach().requires_grad_(True)
            energy = self(leaf)
            grad: Tensor | None = None
            # An energy that ignores x (or part of it) has a zero gradient there.
            if energy.requires_grad:
                (grad,) = torch.autograd.grad(energy.sum(), leaf, allow_unused=True)
        if grad is None:
            grad = torch.zeros_like(x)
        return energy.detach(), grad.detach()

    def __add__(self, other: object) -> Energy:
        if not isinstance(other, Energy):
            return NotImplemented
        return Sum(self, other)

    def __radd__(self, other: object) -> Energy:
        # ``sum(energies)`` starts from the integer 0.
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented

    def __mul__(self, factor: object) -> Energy:
        if isinstance(factor, Energy) or not isinstance(factor, (int, float, Tensor)):
            return NotImplemented
        return Scaled(self, factor)

    __rmul__ = __mul__


class Sum(Energy):
    """Sum of energies; nested sums are flattened.

    The gradient is the sum of the parts' gradients, so a sum of closed-form energies needs
    no autograd.

    Args:
        *parts: the energies to add, at least one.

    Example:
        >>> import torch
        >>> u = Sum(StandardNormal(), SquaredDistance(torch.ones(2)))
        >>> u(torch.zeros(1, 2))
        tensor([2.])
    """

    def __init__(self, *parts: Energy) -> None:
        if not parts:
            raise ValueError("Sum needs at least one energy")
        flat: list[Energy] = []
        for part in parts:
            if not isinstance(part, Energy):
                raise TypeError(f"Sum takes Energy objects, got {type(part).__name__}")
            flat.extend(part.parts if isinstance(part, Sum) else (part,))
        self.parts: tuple[Energy, ...] = tuple(flat)

    def __call__(self, x: Tensor) -> Tensor:
        total = self.parts[0](x)
        for part in self.parts[1:]:
            total = total + part(x)
        return total

    def _value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        energy, grad = self.parts[0]._value_and_grad(x)
        for part in self.parts[1:]:
            e, g = part._value_and_grad(x)
            energy, grad = energy + e, grad + g
        return energy, grad

    def __repr__(self) -> str:
        return " + ".join(repr(part) for part in self.parts)


class Scaled(Energy):
    """An energy times a factor: ``factor * energy(x)``.

    Args:
        energy: the energy to scale.
        factor: a float or a tensor broadcastable to the batch shape ``[...]`` (one factor
            per point, e.g. a per-chain inverse temperature).

    Example:
        >>> import torch
        >>> u = torch.tensor([1.0, 3.0]) * StandardNormal()
        >>> u(torch.ones(2, 2))
        tensor([1., 3.])
    """

    def __init__(self, energy: Energy, factor: Tensor | float) -> None:
        if not isinstance(energy, Energy):
            raise TypeError(f"Scaled takes an Energy, got {type(energy).__name__}")
        self.energy = energy
        self.factor = _check_factor("factor", factor)

    def __call__(self, x: Tensor) -> Tensor:
        return _like(self.factor, x) * self.energy(x)

    def _value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        factor = _like(self.factor, x)
        energy, grad = self.energy._value_and_grad(x)
        return factor * energy, _per_point(factor) * grad

    def __repr__(self) -> str:
        return f"{self.factor!r} * ({self.energy!r})"


class Interpolated(Energy):
    """Linear interpolation of two energies: ``(1 - lam) * a(x) + lam * b(x)``.

    This is the annealing path ``u_lam`` of a stochastic normalizing flow between a prior
    energy ``a`` (``lam = 0``) and a target energy ``b`` (``lam = 1``).

    Args:
        a: energy at ``lam = 0``.
        b: energy at ``lam = 1``.
        lam: a float or a tensor broadcastable to the batch shape ``[...]``.

    Example:
        >>> import torch
        >>> u = Interpolated(StandardNormal(), SquaredDistance(torch.ones(2)), 0.25)
        >>> u(torch.ones(1, 2))
        tensor([0.7500])
    """

    def __init__(self, a: Energy, b: Energy, lam: Tensor | float) -> None:
        if not isinstance(a, Energy) or not isinstance(b, Energy):
            raise TypeError(
                f"Interpolated takes two Energy objects, got {type(a).__name__} "
                f"and {type(b).__name__}"
            )
        self.a = a
        self.b = b
        self.lam = _check_factor("lam", lam)

    def __call__(self, x: Tensor) -> Tensor:
        lam = _like(self.lam, x)
        # The ends of an annealing schedule need one energy, not both (and 0 * inf is NaN).
        if isinstance(lam, float) and lam in (0.0, 1.0):
            return self.a(x) if lam == 0.0 else self.b(x)
        return torch.lerp(self.a(x), self.b(x), lam)

    def _value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        lam = _like(self.lam, x)
        ea, ga = self.a._value_and_grad(x)
        eb, gb = self.b._value_and_grad(x)
        lam_point = _per_point(lam)
        return (1.0 - lam) * ea + lam * eb, (1.0 - lam_point) * ga + lam_point * gb

    def __repr__(self) -> str:
        return f"Interpolated({self.a!r}, {self.b!r}, lam={self.lam!r})"


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
        loc = torch.as_tensor(loc)
        if loc.dim() < 1 or not loc.is_floating_point():
            raise ValueError(
                f"loc must be a floating-point Tensor[..., D], got shape {tuple(loc.shape)} "
                f"and dtype {loc.dtype}"
            )
        self.loc = loc
        self.scale = _check_factor("scale", scale)
        if isinstance(self.scale, float) and self.scale <= 0:
            raise ValueError(f"scale must be positive, got {self.scale}")
        self.normalized = normalized

    def _standardize(self, x: Tensor) -> Tensor:
        return (x - _like(self.loc, x)) / _like(self.scale, x)

    def _log_normalizer(self, x: Tensor, standardized: Tensor) -> Tensor | float:
        scale = _like(self.scale, x)
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
        return energy, standardized / _like(self.scale, x)

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
        loc = torch.as_tensor(loc)
        if loc.dim() < 1 or not loc.is_floating_point():
            raise ValueError(
                f"loc must be a floating-point Tensor[..., D], got shape {tuple(loc.shape)} "
                f"and dtype {loc.dtype}"
            )
        self.loc = loc
        self.weight = _check_factor("weight", weight)

    def __call__(self, x: Tensor) -> Tensor:
        distance = (x - _like(self.loc, x)).square().sum(-1)
        if isinstance(self.weight, float) and self.weight == 1.0:
            return distance
        return _like(self.weight, x) * distance

    def _value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = x.detach()
        weight = _like(self.weight, x)
        diff = x - _like(self.loc, x)
        return weight * diff.square().sum(-1), (2.0 * _per_point(weight)) * diff

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


class Potential(Energy):
    """Wraps any callable ``Tensor[..., D] -> Tensor[...]`` as an energy (autograd gradient).

    Args:
        fn: the energy function; it must return one value per point.

    Example:
        >>> import torch
        >>> u = Potential(lambda x: x.abs().sum(-1))
        >>> u.value_and_grad(torch.tensor([[1.0, -2.0]]))
        (tensor([3.]), tensor([[ 1., -1.]]))
    """

    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        if not callable(fn):
            raise TypeError(f"Potential needs a callable, got {type(fn).__name__}")
        self.fn = fn

    def __call__(self, x: Tensor) -> Tensor:
        energy = self.fn(x)
        if not isinstance(energy, Tensor) or energy.shape != x.shape[:-1]:
            shape = tuple(energy.shape) if isinstance(energy, Tensor) else type(energy).__name__
            raise ValueError(
                f"the potential must return one energy per point, shape {tuple(x.shape[:-1])} "
                f"for x of shape {tuple(x.shape)}; got {shape}"
            )
        return energy

    def __repr__(self) -> str:
        return f"Potential({getattr(self.fn, '__name__', type(self.fn).__name__)})"


class PullBack(Energy):
    """A target energy pulled back through an invertible map: ``E(y) = target(x) - ladj``.

    With ``(x, ladj) = transform(y)`` mapping an intermediate variable ``y`` (e.g. between
    flow layers) to data ``x`` and ``ladj = log|det dx/dy|``, ``exp(-E)`` is the target
    density expressed in ``y``: the principled energy for MCMC between flow layers.

    Args:
        target: the energy of ``x``.
        transform: ``y -> (x, log|det dx/dy|)`` with shapes ``Tensor[..., D]`` and
            ``Tensor[...]``.

    Example:
        >>> import torch
        >>> affine = lambda y: (2.0 * y + 1.0, torch.full(y.shape[:-1], 3 * math.log(2.0)))
        >>> u = PullBack(StandardNormal(), affine)
        >>> u(torch.zeros(2, 3))
        tensor([-0.5794, -0.5794])
    """

    def __init__(self, target: EnergyLike, transform: Callable[[Tensor], tuple[Tensor, Tensor]]):
        if not callable(transform):
            raise TypeError(f"transform must be callable, got {type(transform).__name__}")
        self.target = as_energy(target)
        self.transform = transform

    def __call__(self, y: Tensor) -> Tensor:
        x, ladj = self.transform(y)
        return self.target(x) - ladj

    def __repr__(self) -> str:
        return f"PullBack({self.target!r})"


def as_energy(potential: EnergyLike) -> Energy:
    """Returns ``potential`` itself when it is an :class:`Energy`, else wraps it in
    :class:`Potential`.

    Example:
        >>> as_energy(lambda x: x.sum(-1))
        Potential(<lambda>)
    """
    if isinstance(potential, Energy):
        return potential
    if callable(potential):
        return Potential(potential)
    raise TypeError(f"expected an Energy or a callable, got {type(potential).__name__}")


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
