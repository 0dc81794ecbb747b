"""Energies moved between coordinates: pulled back through an invertible map, or through an
affine map with a closed-form gradient (an energy written in data units, used in flow space).

Example:
    >>> import torch
    >>> from snfseq.energy.gaussian import Gaussian
    >>> in_data_units = Gaussian(torch.tensor([10.0, 20.0]), 1.0)
    >>> u = Affine(in_data_units, offset=torch.tensor([10.0, 20.0]), scale=torch.tensor([2.0, 4.0]))
    >>> u(torch.zeros(1, 2))  # y = 0 maps to the Gaussian's centre
    tensor([0.])
"""

from __future__ import annotations

__all__ = ["Affine", "PullBack"]

from collections.abc import Callable

from torch import Tensor

from snfseq.energy.base import Energy, EnergyLike, as_energy, like


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
        >>> import math
        >>> from snfseq.energy import StandardNormal
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


class Affine(Energy):
    """An energy of ``x`` used in ``y``: ``E(y) = energy(offset + scale * y)``.

    The way to write a target in data units and use it where the sampler moves ``y`` (e.g. a
    forecast step's flow space; see :class:`snfseq.snf.AffineMap`). The gradient follows by
    the chain rule, ``scale * grad energy(x)``, so a closed-form gradient of ``energy`` stays
    closed-form. No log-determinant is added: it is constant in ``y`` and cancels in MCMC
    acceptance ratios and self-normalised weights.

    Args:
        energy: The energy of ``x`` (data units).
        offset: ``Tensor[..., D]`` (or broadcastable to the points).
        scale: ``Tensor[..., D]``, ``Tensor[D]`` or a float.

    Example:
        >>> import torch
        >>> from snfseq.energy.gaussian import SquaredDistance
        >>> u = Affine(SquaredDistance(torch.ones(2)), offset=torch.zeros(2), scale=2.0)
        >>> u.value_and_grad(torch.ones(1, 2))
        (tensor([2.]), tensor([[4., 4.]]))
    """

    def __init__(self, energy: EnergyLike, offset: Tensor, scale: Tensor | float) -> None:
        self.energy = as_energy(energy)
        self.offset = offset
        self.scale = scale

    def __call__(self, y: Tensor) -> Tensor:
        return self.energy(like(self.offset, y) + like(self.scale, y) * y)

    def _value_and_grad(self, y: Tensor) -> tuple[Tensor, Tensor]:
        scale = like(self.scale, y)
        x = like(self.offset, y) + scale * y
        energy, grad = self.energy.value_and_grad(x)
        return energy, scale * grad

    def __repr__(self) -> str:
        return f"Affine({self.energy!r})"
