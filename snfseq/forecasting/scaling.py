"""Per-series scales taken from the context of each window, as a forecast would see it.

:class:`~snfseq.SequenceFlow` already centres every window on its context mean and divides
each series by one global spread learnt in training, which copes with series of different
magnitudes side by side (macrodata's GDP near 1e4 beside interest rates near 1). Two things it
does not cope with: its normaliser floors every spread at 1e-3 of the largest, which flattens a
series whose changes are a thousand times smaller than its neighbours' (GDP counted in dollars
beside rates in percent), and one spread for all time, while a series' changes grow with its
level (GDP's quarterly changes doubled between the 1960s and the 2000s). Dividing each window
by a scale of its own context first (``"mean_abs"``: the mean absolute value, as DeepAR does;
``"std"``: the standard deviation) makes the model see relative changes, and makes forecasts
equivariant to the units of each series (``tests/test_forecasting.py`` checks both).

A context whose scale falls below 1% of the series' scale over the whole training history (a
run of zeros, a constant stretch) uses that floor instead, so that it never divides by zero.

Example:
    >>> import numpy as np
    >>> windows = np.array([[[1.0, -2.0], [3.0, 2.0], [5.0, 0.0]]])  # [N=1, T=3, D=2]
    >>> context_scale(windows[:, :2], "mean_abs", floor=np.ones(2))
    array([[2., 2.]])
"""

from __future__ import annotations

__all__ = [
    "SCALINGS",
    "ContextScaling",
    "Scaling",
    "check_scaling",
    "context_scale",
    "history_scale",
    "sliding_windows",
]

from typing import Literal

import numpy as np
import torch
from torch import Tensor

Scaling = Literal["mean_abs", "std"] | None
#: The accepted ``scaling`` values.
SCALINGS: tuple[Scaling, ...] = ("mean_abs", "std", None)
_BLOCK = 64


def check_scaling(scaling: object) -> Scaling:
    """Returns ``scaling`` when it is one of :data:`SCALINGS`, else raises one line.

    Example:
        >>> check_scaling("max")
        Traceback (most recent call last):
        ...
        ValueError: scaling must be one of ('mean_abs', 'std', None), got 'max'
    """
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {SCALINGS}, got {scaling!r}")
    return scaling  # type: ignore[return-value]


def _raw_scale(values: np.ndarray, scaling: Scaling) -> np.ndarray:
    if scaling == "mean_abs":
        return np.abs(values).mean(-2)
    if scaling == "std":
        return values.std(-2)
    return np.ones(values.shape[:-2] + values.shape[-1:])


def history_scale(values: np.ndarray, scaling: Scaling) -> np.ndarray:
    """The scale of each series over a whole history ``Array[T, D]``: ``Array[D]`` (ones for
    ``scaling=None``; 1 where a series is zero throughout).

    Example:
        >>> import numpy as np
        >>> history_scale(np.array([[1.0, 0.0], [3.0, 0.0]]), "std")
        array([1., 1.])
    """
    values = np.asarray(values, dtype=np.float64)
    # A block of columns at a time: no temporary copy of a long history of many series.
    blocks = range(0, values.shape[-1], _BLOCK)
    scale = np.concatenate([_raw_scale(values[:, i : i + _BLOCK], scaling) for i in blocks])
    return np.where(scale > 0, scale, 1.0)


def context_scale(context: np.ndarray, scaling: Scaling, floor: np.ndarray) -> np.ndarray:
    """Per-window, per-series scales of context frames ``Array[..., T, D]``: ``Array[..., D]``.

    Args:
        context: The context frames of each window, in data units.
        scaling: ``"mean_abs"``, ``"std"`` or None (all ones).
        floor: ``Array[D]``, the series' scale over the training history; scales below 1%
            of it are raised to that.

    Example:
        >>> import numpy as np
        >>> context_scale(np.zeros((2, 3, 1)), "std", floor=np.array([5.0]))  # constant context
        array([[0.05],
               [0.05]])
    """
    scale = _raw_scale(np.asarray(context, dtype=np.float64), scaling)
    if scaling is None:
        return scale
    return np.maximum(scale, 0.01 * np.asarray(floor, dtype=np.float64))


def sliding_windows(values: np.ndarray, length: int) -> np.ndarray:
    """Every window of ``length`` consecutive rows of ``Array[T, ...]``: ``Array[N, length, ...]``
    with ``N = T - length + 1`` (a copy, C-contiguous).

    Example:
        >>> import numpy as np
        >>> sliding_windows(np.arange(5.0)[:, None], 3)[:, :, 0]
        array([[0., 1., 2.],
               [1., 2., 3.],
               [2., 3., 4.]])
    """
    view = np.lib.stride_tricks.sliding_window_view(values, length, axis=0)
    return np.ascontiguousarray(np.moveaxis(view, -1, 1))


class ContextScaling:
    """Divides the first ``series`` channels of each window ``Tensor[n, L, C]`` by the scale of
    its first ``context`` steps (:func:`context_scale` in torch, on the batch's device): the
    transform of the :class:`~snfseq.windows.Windows` a forecaster trains on.

    Example:
        >>> import numpy as np, torch
        >>> scaler = ContextScaling(2, series=1, scaling="mean_abs", floor=np.ones(1))
        >>> scaler(torch.tensor([[[2.0, 7.0], [4.0, 7.0], [6.0, 7.0]]]))[0, :, 0]
        tensor([0.6667, 1.3333, 2.0000])
    """

    def __init__(self, context: int, series: int, scaling: Scaling, floor: np.ndarray) -> None:
        self.context, self.series, self.scaling = context, series, scaling
        self.floor = 0.01 * torch.as_tensor(floor, dtype=torch.float32)

    def __call__(self, batch: Tensor) -> Tensor:
        if self.scaling is None:
            return batch
        frames = batch[..., : self.series]
        head = frames[:, : self.context]
        if self.scaling == "mean_abs":
            scale = head.abs().mean(1)
        else:
            scale = head.std(1, correction=0)
        scale = torch.maximum(scale, self.floor.to(scale))
        return torch.cat([frames / scale[:, None], batch[..., self.series :]], -1)
