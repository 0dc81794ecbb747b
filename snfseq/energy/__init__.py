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

from snfseq.energy.base import (
    LOG_2PI,
    Energy,
    EnergyLike,
    Interpolated,
    Potential,
    Scaled,
    Sum,
    as_energy,
)
from snfseq.energy.constraints import Distances, Observed
from snfseq.energy.gaussian import (
    Gaussian,
    GaussianMixture,
    SquaredDistance,
    StandardNormal,
    paper_energy,
)
from snfseq.energy.quadratic import Quadratic, simplified
from snfseq.energy.transformed import Affine, PullBack

__all__ = [
    "LOG_2PI",
    "Affine",
    "Distances",
    "Energy",
    "EnergyLike",
    "Gaussian",
    "GaussianMixture",
    "Interpolated",
    "Observed",
    "Potential",
    "PullBack",
    "Quadratic",
    "Scaled",
    "SquaredDistance",
    "StandardNormal",
    "Sum",
    "as_energy",
    "paper_energy",
    "simplified",
]
