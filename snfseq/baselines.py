"""Reference forecasters scored on the same footing as :class:`snfseq.SequenceFlow`.

Both report the negative log-likelihood of the horizon frames per feature, in data units, as
:meth:`snfseq.SequenceFlow.nll` does, so the numbers compare directly.

Example:
    >>> import torch
    >>> train, test = torch.randn(50, 10, 3), torch.randn(20, 10, 3)
    >>> GaussianBaseline().fit(train).nll(test, context=4).shape
    torch.Size([20])
"""

from __future__ import annotations

__all__ = ["GaussianBaseline", "RandomWalkBaseline"]


import torch
from torch import Tensor

from snfseq.energy import LOG_2PI


def _gaussian_nll(x: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
    return 0.5 * (((x - loc) / scale) ** 2 + LOG_2PI) + scale.log()


class GaussianBaseline:
    """Independent Gaussian per feature, fitted to all training frames (ignores time).

    Example:
        >>> import torch
        >>> windows = torch.tensor([[[0.0], [1.0], [2.0]]])  # N=1 window, T=3 frames, D=1
        >>> baseline = GaussianBaseline().fit(windows)
        >>> baseline.loc, baseline.scale
        (tensor([1.], dtype=torch.float64), tensor([1.], dtype=torch.float64))
        >>> baseline.nll(windows, context=2)  # frame 2 lies one scale from the mean
        tensor([1.4189])
    """

    def fit(self, windows: Tensor) -> GaussianBaseline:
        """Fits on ``Tensor[N, T, D]``."""
        frames = torch.as_tensor(windows, dtype=torch.float64).reshape(-1, windows.shape[-1])
        self.loc = frames.mean(0)
        self.scale = frames.std(0).clamp_min(1e-12)
        return self

    def nll(self, windows: Tensor, context: int) -> Tensor:
        """Mean NLL per feature of frames ``context..T-1`` of each window: ``Tensor[N]``."""
        horizon = torch.as_tensor(windows, dtype=torch.float64)[:, context:]
        return _gaussian_nll(horizon, self.loc, self.scale).mean((1, 2)).float()


class RandomWalkBaseline:
    """``x_t ~ N(x_{t-1}, sigma^2)`` per feature: the persistence forecast with Gaussian steps.

    Example:
        >>> import torch
        >>> windows = torch.tensor([[[0.0], [0.0], [1.0], [3.0]]])  # steps 0, 1, 2
        >>> baseline = RandomWalkBaseline().fit(windows)
        >>> baseline.scale
        tensor([1.], dtype=torch.float64)
        >>> baseline.nll(windows, context=3)  # frame 3 from frame 2: a step of two scales
        tensor([2.9189])
    """

    def fit(self, windows: Tensor) -> RandomWalkBaseline:
        """Fits the step scale on ``Tensor[N, T, D]``."""
        steps = torch.as_tensor(windows, dtype=torch.float64).diff(dim=1)
        self.scale = steps.reshape(-1, steps.shape[-1]).std(0).clamp_min(1e-12)
        return self

    def nll(self, windows: Tensor, context: int) -> Tensor:
        """Teacher-forced NLL per feature of frames ``context..T-1``: ``Tensor[N]``."""
        x = torch.as_tensor(windows, dtype=torch.float64)
        return (
            _gaussian_nll(x[:, context:], x[:, context - 1 : -1], self.scale).mean((1, 2)).float()
        )
