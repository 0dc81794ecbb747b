"""Training windows cut from long series on demand, one batch at a time.

Every window of ``L`` consecutive steps of a history of ``T`` steps and ``C`` channels, held as
one tensor, takes ``(T - L + 1) * L * C`` numbers: 50,000 steps of the 1,404-feature face mesh
in windows of 48 steps would fill 13 GB. :class:`Windows` keeps the history once
(``T * C`` numbers, 280 MB there) and the first step of each window, and builds a batch of
windows when the training loop asks for it (``windows[index]``), optionally passing it through a
``transform`` (the forecasters divide each window by the scale of its own context there).
Anything that takes a ``Tensor[N, L, C]`` of rows and only calls ``len``, ``shape``, slicing
and indexing with an index tensor takes a :class:`Windows` too
(:func:`snfseq.training.fit_loop`, :meth:`snfseq.SequenceFlow.fit`).

Example:
    >>> import torch
    >>> series = torch.arange(12.0).reshape(6, 2)  # [T=6, C=2]
    >>> windows = Windows(series, length=3)
    >>> windows.shape, len(windows)
    ((4, 3, 2), 4)
    >>> windows[torch.tensor([0, 3])][:, :, 0]
    tensor([[ 0.,  2.,  4.],
            [ 6.,  8., 10.]])
    >>> windows[2:].shape, windows.materialize().shape
    ((2, 3, 2), torch.Size([4, 3, 2]))
"""

from __future__ import annotations

__all__ = ["Windows", "batches"]

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor


class Windows:
    """The windows of ``length`` steps of a series ``Tensor[T, C]``, built when indexed.

    Args:
        series: The whole history, ``Tensor[T, C]`` (or an array), kept as given.
        length: Steps per window ``L``.
        starts: First step of each window (default: every one, ``0 .. T - L``).
        transform: Applied to every batch ``Tensor[n, L, C] -> Tensor[n, L, C']`` as it is
            built (None: the windows as cut).

    Example:
        >>> import torch
        >>> w = Windows(torch.ones(10, 3), 4, torch.tensor([0, 6]), transform=lambda b: 2 * b)
        >>> w.shape, float(w[torch.tensor([1])].sum())
        ((2, 4, 3), 24.0)
    """

    def __init__(
        self,
        series: Tensor | np.ndarray,
        length: int,
        starts: Tensor | None = None,
        transform: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        series = torch.as_tensor(series)
        if series.ndim != 2:
            raise ValueError(f"series must be [T, C], got shape {tuple(series.shape)}")
        if not 1 <= length <= series.shape[0]:
            raise ValueError(f"length must be in [1, {series.shape[0]}], got {length}")
        last = series.shape[0] - length
        if starts is None:
            starts = torch.arange(last + 1)
        starts = torch.as_tensor(starts, dtype=torch.long)
        if starts.ndim != 1 or (starts.numel() and (starts.min() < 0 or starts.max() > last)):
            raise ValueError(f"starts must be a 1-d index of steps in [0, {last}]")
        self.series, self.length, self.starts, self.transform = series, length, starts, transform
        self._offsets = torch.arange(length)
        self._channels = int(self[torch.zeros(1, dtype=torch.long)].shape[-1]) if len(starts) else 0

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(N, L, C)``: windows, steps and channels of a built window."""
        return len(self.starts), self.length, self._channels

    @property
    def device(self) -> torch.device:
        """Where the series (and so every batch) lives."""
        return self.series.device

    def checked(self, channels: int) -> Windows:
        """These windows when they build ``[N >= 1, T >= 2, channels]``, else one line.

        Example:
            >>> Windows(torch.zeros(5, 3), 2).checked(4)
            Traceback (most recent call last):
            ...
            ValueError: windows must build [N >= 1, T >= 2, 4], got [4, 2, 3]
        """
        if self.shape[-1] != channels or len(self) < 1 or self.length < 2:
            raise ValueError(
                f"windows must build [N >= 1, T >= 2, {channels}], got {list(self.shape)}"
            )
        return self

    def to(self, device: str | torch.device, dtype: torch.dtype = torch.float32) -> Windows:
        """The same windows of the series moved to ``device`` as ``dtype``."""
        return Windows(self.series.to(device, dtype), self.length, self.starts, self.transform)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: Tensor | slice) -> Any:
        """``windows[index_tensor]`` builds ``Tensor[n, L, C]``; ``windows[a:b]`` is the
        :class:`Windows` of those starts."""
        if isinstance(index, slice):
            return Windows(self.series, self.length, self.starts[index], self.transform)
        steps = self.starts[torch.as_tensor(index).cpu()][:, None] + self._offsets
        batch = self.series[steps.to(self.series.device)]
        return batch if self.transform is None else self.transform(batch)

    def materialize(self) -> Tensor:
        """Every window at once, ``Tensor[N, L, C]`` (for small series only)."""
        return self[torch.arange(len(self))]

    def sample(self, count: int, generator: torch.Generator | None = None) -> Tensor:
        """At most ``count`` windows drawn without replacement, ``Tensor[n, L, C]`` (all of
        them, in order, when there are no more than ``count``)."""
        if len(self) <= count:
            return self.materialize()
        return self[torch.randperm(len(self), generator=generator)[:count].sort().values]


def batches(rows: Tensor | Windows, size: int) -> Iterator[Tensor]:
    """Consecutive batches of at most ``size`` rows of a tensor or of :class:`Windows`.

    Example:
        >>> [b.shape[0] for b in batches(torch.zeros(5, 2), 2)]
        [2, 2, 1]
    """
    for start in range(0, len(rows), size):
        stop = min(start + size, len(rows))
        yield rows[torch.arange(start, stop)]
