"""The result of a sample forecast: samples, summaries, importance weights, xarray export.

Example:
    >>> import torch
    >>> fc = Forecast(samples=torch.randn(100, 2, 5, 3))
    >>> fc.mean.shape, fc.quantile(0.9).shape
    (torch.Size([2, 5, 3]), torch.Size([2, 5, 3]))
    >>> fc.to_xarray().dims
    ('sample', 'series', 'time', 'feature')
"""

from __future__ import annotations

__all__ = ["Forecast", "kish_ess"]  # kish_ess: former home, see snfseq.weights

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from snfseq.metrics import quantile as weighted_quantile
from snfseq.snf import Trace
from snfseq.weights import Weighted, kish_ess


@dataclass
class Forecast(Weighted):
    """Sample paths of a forecast.

    Attributes:
        samples: ``Tensor[S, B, H, D]``: S sample paths for B series, H steps, D features, in
            data units. Every sample is its own trajectory.
        log_weights: ``Tensor[S, B]`` path log-weights of a stochastic refinement (unnormalised;
            None without refinement). Self-normalised over S they turn sample averages into
            estimates under the refinement's target.
        step_log_weights: ``Tensor[S, B, H]``: the per-step increments that sum to
            ``log_weights``.
        trace: The refinement trace (:class:`snfseq.snf.Trace`), when recording was asked for.
        ancestors: ``Tensor[S, B, H]`` (long): at each step, the sample (of the same series)
            that each path was copied from when a refinement resampled the paths; None when
            no step resampled (every path its own ancestor).
        feature_names: Optional names of the D features, used by :meth:`to_xarray`.

    Example:
        >>> import torch
        >>> samples = torch.tensor([0.0, 2.0]).reshape(2, 1, 1, 1)  # S=2, B=H=D=1
        >>> fc = Forecast(samples, log_weights=torch.tensor([[3.0], [1.0]]).log())
        >>> fc.num_samples, fc.horizon, fc.mean.flatten(), fc.weighted_mean().flatten()
        (2, 1, tensor([1.]), tensor([0.5000]))
        >>> fc.ess  # Kish ESS of the weights 3/4 and 1/4, per series
        tensor([1.6000])
    """

    samples: Tensor
    log_weights: Tensor | None = None
    step_log_weights: Tensor | None = None
    trace: Trace | None = None
    ancestors: Tensor | None = None
    feature_names: Sequence[str] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.samples.dim() != 4:
            raise ValueError(
                f"samples must be Tensor[S, B, H, D], got shape {tuple(self.samples.shape)}"
            )

    def __repr__(self) -> str:
        """Shapes and, with weights, their Kish ESS (not the tensors).

        Example:
            >>> import torch
            >>> Forecast(torch.zeros(100, 2, 8, 3), log_weights=torch.zeros(100, 2))
            Forecast(S=100, B=2, H=8, D=3; path weights: Kish ESS 100.0-100.0 of 100)
        """
        s, b, h, d = self.samples.shape
        text = f"S={s}, B={b}, H={h}, D={d}"
        ess = self.ess
        if ess is not None:
            text += f"; path weights: Kish ESS {float(ess.min()):.1f}-{float(ess.max()):.1f} of {s}"
        if self.ancestors is not None:
            text += "; resampled"
        return f"Forecast({text})"

    def weight_warning(self, fraction: float = 0.05) -> str | None:
        """A one-line warning when the path weights of some series have collapsed (Kish ESS
        below ``fraction`` of the samples), else None.

        Example:
            >>> import torch
            >>> w = torch.full((100, 1), -50.0); w[0] = 0.0  # one path carries all the weight
            >>> Forecast(torch.zeros(100, 1, 2, 1), log_weights=w).weight_warning()[:47]
            'path weights collapsed: Kish ESS 1.0 of 100 sam'
        """
        ess = self.ess
        low = 0 if ess is None else int((ess < fraction * self.num_samples).sum())
        if ess is None or not low:
            return None
        return (
            f"path weights collapsed: Kish ESS {float(ess.min()):.1f} of {self.num_samples} "
            f"samples (below {fraction:.0%} in {low} of {len(ess)} series); weighted estimates "
            "rest on a few paths: resample (Refinement(resample=0.5)), or score unweighted"
        )

    @property
    def num_samples(self) -> int:
        """Sample paths ``S``."""
        return self.samples.shape[0]

    @property
    def horizon(self) -> int:
        """Forecast steps ``H``."""
        return self.samples.shape[2]

    @property
    def step_ess(self) -> Tensor | None:
        """Kish ESS of each forecast step's own weights ``Tensor[B, H]`` (None without them).

        Path weights multiply over the horizon, so the ESS of :attr:`log_weights` shrinks with
        H; the per-step ESS says how far each single refinement moved the samples.
        """
        return None if self.step_log_weights is None else kish_ess(self.step_log_weights)

    @property
    def mean(self) -> Tensor:
        """Unweighted sample mean ``Tensor[B, H, D]``."""
        return self.samples.mean(0)

    def weighted_mean(self) -> Tensor:
        """Importance-weighted mean ``Tensor[B, H, D]`` (the plain mean without weights)."""
        return self.expectation()

    def quantile(self, q: float | Sequence[float] | Tensor, weighted: bool = False) -> Tensor:
        """Sample quantiles over S: ``Tensor[B, H, D]``, or ``Tensor[Q, B, H, D]`` for several.

        Args:
            q: Level(s) in [0, 1].
            weighted: Use the importance weights (:func:`snfseq.metrics.quantile`, the
                weighted empirical distribution); plain linear interpolation otherwise.
        """
        qs = torch.as_tensor(q, dtype=self.samples.dtype, device=self.samples.device)
        if bool(((qs < 0) | (qs > 1)).any()):
            raise ValueError(f"quantile levels must lie in [0, 1], got {q}")
        if weighted and self.log_weights is not None:
            return weighted_quantile(self.samples, qs, log_weights=self.log_weights)
        return torch.quantile(self.samples, qs, dim=0)

    def to_xarray(self, time: Sequence[Any] | np.ndarray | None = None) -> xr.DataArray:
        """Samples as a DataArray with dims ``(sample, series, time, feature)``.

        Log-weights, when present, ride along as a ``log_weight`` coordinate on
        ``(sample, series)``.
        """
        num_samples, series, horizon, features = self.samples.shape
        coords: dict[str, Any] = {
            "sample": np.arange(num_samples),
            "series": np.arange(series),
            "time": np.arange(horizon) if time is None else np.asarray(time),
            "feature": (
                np.arange(features) if self.feature_names is None else list(self.feature_names)
            ),
        }
        if self.log_weights is not None:
            coords["log_weight"] = (("sample", "series"), self.log_weights.detach().cpu().numpy())
        return xr.DataArray(
            self.samples.detach().cpu().numpy(),
            dims=("sample", "series", "time", "feature"),
            coords=coords,
            name="forecast",
        )
