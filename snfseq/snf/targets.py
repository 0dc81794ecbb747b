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

__all__ = ["AffineMap", "ForecastStep", "Observations"]

from dataclasses import dataclass

import torch
from torch import Tensor

from snfseq.energy import Affine, Energy, EnergyLike, Observed


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

    def rows(self, index: Tensor) -> AffineMap:
        """The map of the rows ``index`` (``Tensor[N]``, long), e.g. after resampling."""
        scale = self.scale[index] if self.scale.dim() > 1 else self.scale
        return AffineMap(self.offset[index], scale)


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

    def rows(self, index: Tensor) -> ForecastStep:
        """The step as seen by the rows ``index`` (``Tensor[N]``, long, within each series):
        what a resampled row's target is built from.

        Example:
            >>> import torch
            >>> to_data = AffineMap(torch.zeros(2, 1), torch.ones(1))
            >>> step = ForecastStep(0, torch.arange(2.0)[:, None], torch.zeros(2, 1),
            ...                     torch.tensor([0, 0]), to_data, (2, 1))
            >>> step.rows(torch.tensor([1, 1])).yhat.flatten().tolist()
            [1.0, 1.0]
        """
        return ForecastStep(
            self.step,
            self.yhat[index],
            self.previous[index],
            self.series[index],
            self.to_data.rows(index),
            self.batch_shape,
        )


class Observations:
    """A target builder: what is known of the forecast frames, as a likelihood in data units.

    ``values[b, h]`` holds what was observed of frame ``h`` of series ``b``, NaN where
    nothing was (e.g. the keypoints a packet did not carry). Used as
    ``Refinement(prior="flow", target=Observations(values, noise))``, refinement and path
    weights give the posterior forecast: the flow's forecast given those observations.

    Args:
        values: ``Tensor[B, H, D]`` in data units, NaN where unobserved.
        noise: Observation noise standard deviation (data units), a float or ``Tensor[D]``.

    Example:
        >>> import torch
        >>> values = torch.tensor([[[1.0, float("nan")]]])  # B = 1, H = 1: x known, y not
        >>> step = ForecastStep(0, torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3).long(),
        ...                     AffineMap(torch.zeros(3, 2), torch.ones(2)), (3, 1))
        >>> Observations(values, noise=0.5)(step)(torch.ones(3, 2))  # x on its observation
        tensor([0., 0., 0.])
    """

    def __init__(self, values: Tensor, noise: Tensor | float) -> None:
        values = torch.as_tensor(values)
        if values.dim() != 3 or not values.is_floating_point():
            raise ValueError(
                f"values must be a floating-point Tensor[B, H, D] (NaN where unobserved), "
                f"got shape {tuple(values.shape)} and dtype {values.dtype}"
            )
        self.values, self.noise = values, noise
        self.observed = ~values.isnan()

    def __call__(self, step: ForecastStep) -> Energy:
        if step.step >= self.values.shape[1]:
            raise ValueError(
                f"observations cover {self.values.shape[1]} forecast steps; step {step.step + 1} "
                f"has none"
            )
        if int(step.series.max()) >= self.values.shape[0]:
            raise ValueError(f"observations hold {self.values.shape[0]} series; the forecast more")
        series = step.series.to(self.values.device)
        rows = self.values[series, step.step].to(step.yhat.device)
        mask = self.observed[series, step.step].to(step.yhat.device)
        return step.to_data.pull_back(Observed(mask, rows, self.noise))
