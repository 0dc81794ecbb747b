"""What a refinement's target is built from at each forecast step.

At every forecast step the model hands the refinement one :class:`ForecastStep`: the step
index, the point prediction, each sample's previous frame in data units, the series each
sampled row belongs to, and the :class:`AffineMap` between the flow's space (where the
sampler moves) and data units. A target builder (``Refinement(target=fn)``) turns it into an
energy on the flow's space, so that targets can be written in data units: observations of
part of a frame, constraints between keypoints, or the flow's own density.

Example:
    >>> import torch
    >>> from snfseq.energy import Gaussian
    >>> to_data = AffineMap(offset=torch.full((4, 2), 10.0), scale=torch.tensor([2.0, 0.5]))
    >>> step = ForecastStep(0, torch.zeros(4, 2), torch.full((4, 2), 10.0),
    ...                     torch.tensor([0, 1, 0, 1]), to_data, (2, 2))
    >>> u = to_data.pull_back(Gaussian(torch.tensor([12.0, 10.0])))  # written in data units
    >>> u(torch.tensor([[1.0, 0.0]]))  # every row: y = (1, 0) is x = (12, 10), the centre
    tensor([0., 0., 0., 0.])
"""

from __future__ import annotations

__all__ = ["AffineMap", "ForecastStep"]

from dataclasses import dataclass

from torch import Tensor

from snfseq.energy import Affine, Energy, EnergyLike


@dataclass
class AffineMap:
    """``x = offset + scale * y``: from the flow's space ``y`` to data units ``x``, per row.

    Attributes:
        offset: ``Tensor[N, D]`` in data units (for a residual model, each sample's previous
            frame).
        scale: ``Tensor[D]`` (or ``Tensor[N, D]``), data units per flow unit.

    Example:
        >>> import torch
        >>> to_data = AffineMap(offset=torch.tensor([[1.0, 2.0]]), scale=torch.tensor([2.0, 4.0]))
        >>> to_data.to_data(torch.ones(1, 2)), to_data.to_flow(torch.tensor([[3.0, 6.0]]))
        (tensor([[3., 6.]]), tensor([[1., 1.]]))
        >>> to_data.log_abs_det()  # log(2 * 4)
        tensor(2.0794)
    """

    offset: Tensor
    scale: Tensor

    def to_data(self, y: Tensor) -> Tensor:
        """``Tensor[N, D]`` in the flow's space -> data units."""
        return self.offset + self.scale * y

    def to_flow(self, x: Tensor) -> Tensor:
        """``Tensor[N, D]`` in data units -> the flow's space."""
        return (x - self.offset) / self.scale

    def log_abs_det(self) -> Tensor:
        """``log|det dx/dy|``: ``Tensor[]`` (or ``Tensor[N]`` for per-row scales)."""
        return self.scale.abs().log().sum(-1)

    def pull_back(self, energy: EnergyLike) -> Energy:
        """An energy written in data units, as an energy of ``y`` (closed-form gradient kept)."""
        return Affine(energy, self.offset, self.scale)


@dataclass
class ForecastStep:
    """Everything a target may depend on at one forecast step (rows ``N = S x B``, row
    ``s * B + b`` is sample ``s`` of series ``b``).

    Attributes:
        step: The forecast step ``h`` (0 for the first forecast frame).
        yhat: ``Tensor[N, D]``, the point head's prediction in the flow's space.
        previous: ``Tensor[N, D]``, each sample's previous frame in data units.
        series: ``Tensor[N]`` (long), the series of each row.
        to_data: The :class:`AffineMap` from the flow's space to data units.
        batch_shape: ``(S, B)``.

    Example:
        >>> import torch
        >>> from snfseq.energy import Gaussian
        >>> step = ForecastStep(step=0, yhat=torch.zeros(2, 1), previous=torch.zeros(2, 1),
        ...                     series=torch.tensor([0, 1]), batch_shape=(1, 2),
        ...                     to_data=AffineMap(torch.zeros(2, 1), torch.ones(1)))
        >>> def target(step):  # a target builder, as passed to Refinement(target=...)
        ...     return Gaussian(step.yhat, scale=0.5)
        >>> target(step)(torch.ones(2, 1))
        tensor([2., 2.])
    """

    step: int
    yhat: Tensor
    previous: Tensor
    series: Tensor
    to_data: AffineMap
    batch_shape: tuple[int, ...]
