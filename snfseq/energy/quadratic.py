"""Isotropic quadratic energies, and Gaussian-type compositions collapsed into one.

Each block energy of the published refinement, ``(1 - lam) |y|^2 / 2 + lam |yhat - y|^2``, and
of its Gaussian-target variant is a weighted sum of isotropic quadratics, hence a single one:
``precision / 2 * |y - mean|^2 + offset``. Its value costs three operations and its gradient
one, where the composition evaluates every part and adds them up; a refinement block calls it
once or twice per transition (:func:`simplified`, used by :class:`snfseq.Refinement`).

The offset is kept exactly (up to rounding): blocks of different ``lam`` compare energies at
the same point in the path weights, so a collapsed energy must equal the composition, not
just share its gradient. Two quadratics add up to
``p = p1 + p2``, ``mean = (p1 m1 + p2 m2) / p``, ``offset = o1 + o2 + p1 p2 / (2 p) |m1 - m2|^2``
(the last form has no cancellation).

Example:
    >>> import torch
    >>> from snfseq.energy import Interpolated, SquaredDistance, StandardNormal
    >>> yhat = torch.randn(5, 3)
    >>> u = Interpolated(StandardNormal(), SquaredDistance(yhat), 0.25)
    >>> q = simplified(u)
    >>> x = torch.randn(5, 3)
    >>> type(q).__name__, bool(torch.allclose(q(x), u(x), atol=1e-5))
    ('Quadratic', True)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from snfseq.energy.base import (
    LOG_2PI,
    Energy,
    Interpolated,
    Scaled,
    Sum,
    check_factor,
    like,
    per_point,
)
from snfseq.energy.gaussian import Gaussian, SquaredDistance, StandardNormal

__all__ = ["Quadratic", "simplified"]


class Quadratic(Energy):
    """``precision / 2 * |x - mean|^2 + offset``: an isotropic Gaussian with its constant.

    Args:
        mean: ``Tensor[..., D]`` (broadcast against the points like :class:`Gaussian`'s
            ``loc``), or ``0.0``.
        precision: a positive float, or ``Tensor[...]`` (one per point).
        offset: a float, or ``Tensor[...]``.

    Example:
        >>> import torch
        >>> q = Quadratic(torch.ones(2, 3), precision=2.0, offset=1.0)
        >>> q.value_and_grad(torch.zeros(2, 3))
        (tensor([4., 4.]), tensor([[-2., -2., -2.],
                [-2., -2., -2.]]))
    """

    def __init__(
        self, mean: Tensor | float, precision: Tensor | float, offset: Tensor | float = 0.0
    ) -> None:
        if not isinstance(mean, Tensor) and mean != 0.0:
            raise ValueError(f"mean must be a Tensor[..., D] or 0.0, got {mean!r}")
        self.mean = mean if isinstance(mean, Tensor) else 0.0
        self.precision = check_factor("precision", precision)
        self.offset = check_factor("offset", offset)
        self._mean_norm: Tensor | float | None = None if isinstance(mean, Tensor) else 0.0

    def mean_norm(self) -> Tensor | float:
        """``|mean|^2``, ``Tensor[...]`` (computed once: the blocks of a refinement share
        their target's mean)."""
        if self._mean_norm is None:
            assert isinstance(self.mean, Tensor)
            self._mean_norm = torch.linalg.vecdot(self.mean, self.mean)
        return self._mean_norm

    def _parts(self, x: Tensor) -> tuple[Tensor, Tensor]:
        diff = x - like(self.mean, x)
        half = 0.5 * like(self.precision, x)
        energy = torch.linalg.vecdot(diff, diff) * half
        if not (isinstance(self.offset, float) and self.offset == 0.0):
            energy = energy + like(self.offset, x)
        return energy, diff

    def __call__(self, x: Tensor) -> Tensor:
        return self._parts(x)[0]

    def _value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        energy, diff = self._parts(x.detach())
        return energy, per_point(like(self.precision, x)) * diff

    def __repr__(self) -> str:
        shape = tuple(self.mean.shape) if isinstance(self.mean, Tensor) else self.mean
        return f"Quadratic(mean {shape}, precision={self.precision!r})"


def simplified(energy: Energy) -> Energy:
    """``energy`` as one :class:`Quadratic` when it is a composition (``+``, scaling,
    :class:`Interpolated`) of :class:`StandardNormal`, :class:`SquaredDistance`, scalar-scale
    :class:`Gaussian` and :class:`Quadratic` energies; else ``energy`` itself."""
    quadratic = _collapse(energy)
    return energy if quadratic is None else quadratic


def _collapse(energy: Energy) -> Quadratic | None:
    # Exact types: a subclass may compute something else (or count its calls).
    if type(energy) is Quadratic:
        return energy
    if type(energy) is StandardNormal:
        return Quadratic(0.0, 1.0)
    if type(energy) is SquaredDistance:
        return Quadratic(energy.loc, _times(2.0, energy.weight))
    if type(energy) is Gaussian:
        if not isinstance(energy.scale, float):
            return None  # a per-coordinate scale is not isotropic
        offset = 0.0
        if energy.normalized:
            offset = energy.loc.shape[-1] * (math.log(energy.scale) + 0.5 * LOG_2PI)
        return Quadratic(energy.loc, energy.scale**-2, offset)
    if type(energy) is Scaled:
        inner = _collapse(energy.energy)
        return None if inner is None else _scaled(inner, energy.factor)
    if type(energy) is Interpolated:
        lam = energy.lam
        a, b = _collapse(energy.a), _collapse(energy.b)
        if a is None or b is None:
            return None
        return _added(_scaled(a, _times(-1.0, lam, 1.0)), _scaled(b, lam))
    if type(energy) is Sum:
        parts = [_collapse(part) for part in energy.parts]
        if any(part is None for part in parts):
            return None
        total = parts[0]
        for part in parts[1:]:
            total = None if total is None or part is None else _added(total, part)
        return total
    return None


def _times(factor: float, value: Tensor | float, plus: float = 0.0) -> Tensor | float:
    """``factor * value + plus`` for a float or a tensor."""
    return factor * value + plus


def _scaled(q: Quadratic, factor: Tensor | float) -> Quadratic:
    scaled = Quadratic(q.mean, factor * q.precision, factor * q.offset)
    scaled._mean_norm = q._mean_norm  # the same mean
    return scaled


def _added(q1: Quadratic, q2: Quadratic) -> Quadratic | None:
    p1, p2 = q1.precision, q2.precision
    total = p1 + p2
    if isinstance(total, float) and total == 0.0:
        return None  # no curvature left: not a quadratic around a mean
    gap: Tensor | float
    mean: Tensor | float
    if isinstance(q1.mean, float) and isinstance(q2.mean, float):  # both 0
        gap, mean = 0.0, 0.0
    elif isinstance(q1.mean, float) or isinstance(q2.mean, float):  # one at 0: the common case
        other, weight = (q2, p2) if isinstance(q1.mean, float) else (q1, p1)
        assert isinstance(other.mean, Tensor)
        gap = other.mean_norm()
        mean = per_point(_ratio(weight, total)) * other.mean
    else:
        difference = _as_tensor(q1.mean, q2.mean) - _as_tensor(q2.mean, q1.mean)
        gap = torch.linalg.vecdot(difference, difference)
        mean = (per_point(p1) * q1.mean + per_point(p2) * q2.mean) / per_point(total)
    offset = q1.offset + q2.offset + 0.5 * (p1 * p2 / total) * gap
    return Quadratic(mean, total, offset)


def _ratio(a: Tensor | float, b: Tensor | float) -> Tensor | float:
    return a / b


def _as_tensor(value: Tensor | float, like_tensor: Tensor | float) -> Tensor:
    if isinstance(value, Tensor):
        return value
    assert isinstance(like_tensor, Tensor)
    return torch.full_like(like_tensor, value)
