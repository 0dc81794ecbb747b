"""What is known about a frame besides the model: observed coordinates, fixed distances.

These energies are written in data units. In a forecast they become the likelihood of a
refinement whose prior is the flow's own forecast (``Refinement(prior="flow")``): refinement
plus path weights then give posterior forecasts, e.g. of the keypoints a packet did not carry
given those it did, or of a skeleton whose bones keep their length.

Example:
    >>> import torch
    >>> known = torch.tensor([True, False, True])
    >>> u = Observed(known, values=torch.tensor([1.0, 0.0, 2.0]), noise=0.5)
    >>> u(torch.tensor([[1.0, 9.0, 3.0]]))  # the unknown middle coordinate costs nothing
    tensor([2.])
"""

from __future__ import annotations

__all__ = ["Distances", "Observed"]

from collections.abc import Sequence

import torch
from torch import Tensor

from snfseq.energy.base import Energy, check_factor, like


def _points(x: Tensor, coords: int) -> Tensor:
    """``Tensor[..., K * C] -> Tensor[..., K, C]``."""
    if x.shape[-1] % coords:
        raise ValueError(f"{x.shape[-1]} features are not keypoints of {coords} coordinates")
    return x.reshape(*x.shape[:-1], x.shape[-1] // coords, coords)


class Observed(Energy):
    """Gaussian likelihood of the observed coordinates of a frame:
    ``0.5 * sum_d mask_d * ((x_d - values_d) / noise_d)^2``.

    Coordinates outside the mask add nothing (their ``values`` may be NaN): their posterior
    comes from the prior the energy is combined with.

    Args:
        mask: ``Tensor[..., D]`` (bool), which coordinates are observed; broadcast against the
            points like a :class:`~snfseq.energy.Gaussian`'s ``loc`` (``[D]`` for the same
            coordinates everywhere, ``[N, D]`` per row).
        values: ``Tensor[..., D]``, the observed values (data units); entries outside the mask
            are ignored, NaN included.
        noise: Observation noise standard deviation, a positive float or ``Tensor[D]``.

    Raises:
        ValueError: A mask that is not boolean, a non-positive noise, or a NaN inside the mask.

    Example:
        >>> import torch
        >>> values = torch.tensor([[0.0, float("nan")]])  # the second coordinate is unknown
        >>> u = Observed(~values.isnan(), values, noise=1.0)
        >>> u.value_and_grad(torch.tensor([[2.0, 5.0]]))
        (tensor([2.]), tensor([[2., 0.]]))
    """

    def __init__(self, mask: Tensor, values: Tensor, noise: Tensor | float = 1.0) -> None:
        mask, values = torch.as_tensor(mask), torch.as_tensor(values)
        if mask.dtype != torch.bool:
            raise ValueError(f"mask must be a boolean Tensor[..., D], got dtype {mask.dtype}")
        if not values.is_floating_point() or values.dim() < 1:
            raise ValueError(
                f"values must be a floating-point Tensor[..., D], got shape "
                f"{tuple(values.shape)} and dtype {values.dtype}"
            )
        mask = torch.broadcast_to(mask, torch.broadcast_shapes(mask.shape, values.shape))
        if bool((mask & values.isnan()).any()):
            raise ValueError("values are NaN where the mask says they are observed")
        self.noise = check_factor("noise", noise)
        if isinstance(self.noise, float) and self.noise <= 0:
            raise ValueError(f"noise must be positive, got {self.noise}")
        self.mask = mask
        # Unobserved entries become 0 so that NaN never reaches the arithmetic.
        self.values = torch.where(mask, values, torch.zeros_like(values))

    def _residual(self, x: Tensor) -> Tensor:
        mask = self.mask.to(x.device)
        return torch.where(mask, (x - like(self.values, x)) / like(self.noise, x), 0.0)

    def __call__(self, x: Tensor) -> Tensor:
        return 0.5 * self._residual(x).square().sum(-1)

    def _value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        residual = self._residual(x.detach())
        return 0.5 * residual.square().sum(-1), residual / like(self.noise, x)

    def __repr__(self) -> str:
        return f"Observed({int(self.mask.sum())} of {self.mask.numel()} coordinates)"


class Distances(Energy):
    """Distances between pairs of keypoints held near given lengths (a skeleton's bones):
    ``0.5 * sum_p ((|x_i(p) - x_j(p)| - length_p) / scale_p)^2``.

    Args:
        pairs: ``(i, j)`` keypoint indices, one pair per distance; keypoint ``k`` is features
            ``k * coords .. (k + 1) * coords - 1`` of a frame.
        lengths: ``Tensor[..., P]``, the distance each pair should keep (data units), broadcast
            against the points' batch shape (``[P]`` for one skeleton, ``[N, P]`` per row).
        coords: Coordinates per keypoint (3 for x, y, z).
        scale: Tolerance, a positive float or ``Tensor[P]`` (data units): how far a distance
            may stray at one unit of energy.

    Example:
        >>> import torch
        >>> bone = Distances([(0, 1)], lengths=torch.tensor([1.0]), coords=2, scale=0.1)
        >>> bone(torch.tensor([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 2.0, 0.0]]))
        tensor([ 0., 50.])
    """

    def __init__(
        self,
        pairs: Sequence[tuple[int, int]],
        lengths: Tensor,
        *,
        coords: int = 3,
        scale: Tensor | float = 1.0,
    ) -> None:
        index = torch.as_tensor(list(pairs), dtype=torch.long)
        if index.dim() != 2 or index.shape[1] != 2 or len(index) == 0:
            raise ValueError(f"pairs must be a non-empty list of (i, j), got {list(pairs)!r}")
        if bool((index < 0).any()):
            raise ValueError(f"pairs must hold keypoint indices >= 0, got {list(pairs)!r}")
        lengths = torch.as_tensor(lengths)
        if not lengths.is_floating_point() or lengths.shape[-1:] != (len(index),):
            raise ValueError(
                f"lengths must be a floating-point Tensor[..., {len(index)}] (one per pair), "
                f"got shape {tuple(lengths.shape)}"
            )
        if coords < 1:
            raise ValueError(f"coords must be >= 1, got {coords}")
        self.scale = check_factor("scale", scale)
        if isinstance(self.scale, float) and self.scale <= 0:
            raise ValueError(f"scale must be positive, got {self.scale}")
        self.first, self.second = index[:, 0], index[:, 1]
        self.lengths, self.coords = lengths, coords

    def distances(self, x: Tensor) -> Tensor:
        """``Tensor[..., K * C] -> Tensor[..., P]``, the distance of every pair."""
        points = _points(x, self.coords)
        if int(max(self.first.max(), self.second.max())) >= points.shape[-2]:
            raise ValueError(f"a pair names a keypoint beyond the frame's {points.shape[-2]}")
        first, second = self.first.to(x.device), self.second.to(x.device)
        return (points[..., first, :] - points[..., second, :]).norm(dim=-1)

    def __call__(self, x: Tensor) -> Tensor:
        stray = (self.distances(x) - like(self.lengths, x)) / like(self.scale, x)
        return 0.5 * stray.square().sum(-1)

    def __repr__(self) -> str:
        return f"Distances({len(self.first)} pairs, coords={self.coords})"
