"""The energy interface and its algebra: sums, scaling, interpolation, plain callables.

An energy maps ``Tensor[..., D]`` to ``Tensor[...]``; :class:`Energy` supplies
``value_and_grad`` by autograd unless a subclass has it in closed form.

Example:
    >>> import torch
    >>> u = Potential(lambda x: x.square().sum(-1)) * 2.0
    >>> u(torch.ones(3, 2))
    tensor([4., 4., 4.])
"""

from __future__ import annotations

__all__ = [
    "LOG_2PI",
    "Energy",
    "EnergyLike",
    "Interpolated",
    "Potential",
    "Scaled",
    "Sum",
    "as_energy",
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


def like(value: Tensor | float, x: Tensor) -> Tensor | float:
    """Moves a tensor parameter to the dtype and device of ``x`` (no copy when they match)."""
    if isinstance(value, Tensor):
        return value.to(dtype=x.dtype, device=x.device)
    return value


def per_point(factor: Tensor | float) -> Tensor | float:
    """Appends a feature axis to a batch-shaped factor so that it scales ``Tensor[..., D]``."""
    if isinstance(factor, Tensor) and factor.dim() > 0:
        return factor.unsqueeze(-1)
    return factor


def check_factor(name: str, value: object) -> Tensor | float:
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
        >>> from snfseq.energy import Gaussian, SquaredDistance, StandardNormal
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
        >>> from snfseq.energy import Gaussian, SquaredDistance, StandardNormal
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
        >>> from snfseq.energy import Gaussian, SquaredDistance, StandardNormal
        >>> u = torch.tensor([1.0, 3.0]) * StandardNormal()
        >>> u(torch.ones(2, 2))
        tensor([1., 3.])
    """

    def __init__(self, energy: Energy, factor: Tensor | float) -> None:
        if not isinstance(energy, Energy):
            raise TypeError(f"Scaled takes an Energy, got {type(energy).__name__}")
        self.energy = energy
        self.factor = check_factor("factor", factor)

    def __call__(self, x: Tensor) -> Tensor:
        return like(self.factor, x) * self.energy(x)

    def _value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        factor = like(self.factor, x)
        energy, grad = self.energy._value_and_grad(x)
        return factor * energy, per_point(factor) * grad

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
        >>> from snfseq.energy import Gaussian, SquaredDistance, StandardNormal
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
        self.lam = check_factor("lam", lam)

    def __call__(self, x: Tensor) -> Tensor:
        lam = like(self.lam, x)
        # The ends of an annealing schedule need one energy, not both (and 0 * inf is NaN).
        if isinstance(lam, float) and lam in (0.0, 1.0):
            return self.a(x) if lam == 0.0 else self.b(x)
        return torch.lerp(self.a(x), self.b(x), lam)

    def _value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        lam = like(self.lam, x)
        ea, ga = self.a._value_and_grad(x)
        eb, gb = self.b._value_and_grad(x)
        lam_point = per_point(lam)
        return (1.0 - lam) * ea + lam * eb, (1.0 - lam_point) * ga + lam_point * gb

    def __repr__(self) -> str:
        return f"Interpolated({self.a!r}, {self.b!r}, lam={self.lam!r})"


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
