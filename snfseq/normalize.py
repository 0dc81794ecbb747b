"""Per-series normalisation whose test-time statistics come from the context frames only.

Each series is centred on the mean of its own context frames (so a forecast never sees its
horizon), and scaled per feature by a global scale learnt from the training windows. Min-max
scaling from a handful of context frames (the published recipe) divides by near-zero ranges
for features that barely move; a training-set scale does not.

When the model is residual, the flow sees frame-to-frame deltas divided by a second global
per-feature scale, so that its base noise and the data live on the same scale.

Example:
    >>> import torch
    >>> windows = torch.randn(32, 10, 3).cumsum(1)
    >>> norm = ContextNormalizer(3).fit(windows, context=4)
    >>> loc = norm.location(windows[:, :4])
    >>> back = norm.denormalize(norm.normalize(windows, loc), loc)
    >>> bool(torch.allclose(back, windows, atol=1e-5))
    True
"""

from __future__ import annotations

__all__ = ["ContextNormalizer"]

import torch
from torch import Tensor, nn

_EPS = 1e-6


class ContextNormalizer(nn.Module):
    """Context-mean centring with global per-feature scales.

    Args:
        features: Number of features ``D``.

    Buffers (saved with the model): ``scale: Tensor[D]`` (spread of frames around their
    window's context mean), ``delta_scale: Tensor[D]`` (spread of frame-to-frame deltas, in
    normalised units) and ``fitted``.

    Example:
        >>> import torch
        >>> windows = torch.tensor([[[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]]])  # feature 1 is still
        >>> norm = ContextNormalizer(2).fit(windows, context=2)
        >>> norm.scale  # a feature that never moves gets 1e-3 x the largest scale, not 0
        tensor([2.0000, 0.0020])
        >>> loc = norm.location(windows[:, :2])  # the mean of the 2 context frames
        >>> norm.normalize(windows, loc)[0, :, 0]
        tensor([-0.5000,  0.5000,  1.5000])
    """

    scale: Tensor
    delta_scale: Tensor
    fitted: Tensor

    def __init__(self, features: int) -> None:
        super().__init__()
        self.register_buffer("scale", torch.ones(features))
        self.register_buffer("delta_scale", torch.ones(features))
        self.register_buffer("fitted", torch.tensor(False))

    def fit(self, windows: Tensor, context: int) -> ContextNormalizer:
        """Learns the global scales from training windows ``Tensor[N, T, D]``."""
        loc = self.location(windows[:, :context])
        centred = windows - loc[:, None]
        scale = centred.reshape(-1, centred.shape[-1]).std(0)
        # A feature that never moves would otherwise divide by zero.
        floor = scale.max().clamp_min(_EPS) * 1e-3
        scale = scale.clamp_min(floor)
        self.scale.copy_(scale)  # the buffers may live on a GPU, the windows on the CPU
        deltas = (centred / scale).diff(dim=1).reshape(-1, centred.shape[-1])
        delta_scale = deltas.std(0) if deltas.shape[0] > 1 else torch.ones_like(scale)
        self.delta_scale.copy_(delta_scale.clamp_min(delta_scale.max().clamp_min(_EPS) * 1e-3))
        self.fitted.fill_(True)
        return self

    @staticmethod
    def location(context: Tensor) -> Tensor:
        """Per-series location from context frames: ``Tensor[..., T, D] -> Tensor[..., D]``."""
        return context.mean(-2)

    def normalize(self, x: Tensor, loc: Tensor) -> Tensor:
        """``Tensor[..., T, D]`` in data units -> normalised units, with ``loc: Tensor[..., D]``."""
        return (x - loc.unsqueeze(-2)) / self.scale

    def denormalize(self, x: Tensor, loc: Tensor) -> Tensor:
        """Inverse of :meth:`normalize`; ``x: Tensor[..., T, D]``, ``loc`` broadcast on ``...``."""
        return x * self.scale + loc.unsqueeze(-2)

    def log_scale_sum(self) -> Tensor:
        """``sum(log scale)``: the log-Jacobian from normalised to data units, per frame."""
        return self.scale.log().sum()
