"""What a :class:`~snfseq.SequenceFlow` reads: its encoder's inputs, its condition's inputs,
the flow's space, and known-in-advance covariates.

Frames ``x_t: Tensor[D]`` are modelled; covariates ``z_t: Tensor[K]`` (calendar features,
temperature or load forecasts...) are known for every frame, the forecast ones included, and
are read but never modelled. For frame ``t``:

- the encoder's input at step ``t`` is ``[x_t, dx_t, z_t]`` (``dx_t`` with
  ``encoder_input="frames+deltas"``): the recurrent state ``h_t`` sees the covariates of the
  frames it has observed;
- the condition of the flow is ``c_t = tanh(Linear([h_{t-1}, z_t]))`` and the point head reads
  the same ``[h_{t-1}, z_t]``: both see the covariates of the frame they model, so a forecast
  follows the covariates of its horizon.

With ``covariates=0`` (the default) nothing is concatenated and the model is exactly the one
without covariates: same parameter names and shapes, same numbers.

Covariates are standardised by a :class:`CovariateScaler` fitted on the training windows (its
buffers are saved with the model), not by statistics of each context window: a covariate means
the same in every window (the hour of day, a temperature), and a context can hold a column
constant (a holiday flag that is 0 in the context and 1 in the horizon) whose context spread
is zero. A column constant in the training data keeps scale 1.

Example:
    >>> import torch
    >>> from snfseq import SequenceFlow
    >>> z = torch.randn(64, 12, 1)  # known in advance, [N, T, K]
    >>> windows = 2 * z + 0.1 * torch.randn(64, 12, 2)  # driven by it, [N, T, D]
    >>> model = SequenceFlow(features=2, covariates=1, hidden=8, layers=1, transforms=2,
    ...                      flow_hidden=(8,))
    >>> _ = model.fit(windows, context=6, covariates=z, epochs=1, progress=False)
    >>> future = torch.randn(3, 6 + 4, 1)  # [B, T + H, K]: the context's and the horizon's
    >>> fc = model.forecast(windows[:3, :6], horizon=4, num_samples=5, covariates=future)
    >>> fc.samples.shape
    torch.Size([5, 3, 4, 2])
"""

from __future__ import annotations

__all__ = ["CovariateScaler", "Encoding", "as_covariates"]

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from snfseq.config import SequenceFlowConfig
    from snfseq.flows import ConditionalFlow
    from snfseq.normalize import ContextNormalizer

_EPS = 1e-6


class CovariateScaler(nn.Module):
    """Per-channel standardisation of covariates with training-set statistics.

    Args:
        channels: Covariate channels ``K``.

    Buffers (saved with the model): ``mean: Tensor[K]`` and ``scale: Tensor[K]``, the mean and
    standard deviation of each channel over every frame of the training windows; a channel
    that does not vary there gets scale 1, so that an unseen value stays finite.

    Example:
        >>> import torch
        >>> train = torch.tensor([[[0.0, 0.0], [2.0, 0.0]]])  # [N, T, K]; a flag never set
        >>> scaler = CovariateScaler(2).fit(train)
        >>> scaler.mean, scaler.scale
        (tensor([1., 0.]), tensor([1.4142, 1.0000]))
        >>> scaler.standardize(torch.tensor([[[1.0, 1.0]]]))  # the flag set: 1, not 1 / 0
        tensor([[[0., 1.]]])
    """

    mean: Tensor
    scale: Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("scale", torch.ones(channels))

    def fit(self, covariates: Tensor) -> CovariateScaler:
        """Learns mean and scale from training covariates ``Tensor[N, T, K]``."""
        flat = covariates.reshape(-1, covariates.shape[-1])
        mean = flat.mean(0)
        spread = flat.std(0) if flat.shape[0] > 1 else torch.zeros_like(mean)
        constant = spread <= _EPS * (1 + mean.abs())
        self.mean.copy_(mean)
        self.scale.copy_(torch.where(constant, torch.ones_like(spread), spread))
        return self

    def standardize(self, covariates: Tensor) -> Tensor:
        """``Tensor[..., K]`` in their own units -> standardised."""
        return (covariates - self.mean) / self.scale


def as_covariates(
    covariates: Tensor | np.ndarray | None,
    channels: int,
    series: int,
    frames: int,
    needs: str,
    *,
    name: str = "covariates",
    exact: bool = False,
) -> Tensor | None:
    """Checks covariates against the model and the frames they go with.

    Args:
        covariates: ``Tensor[B, T, K]`` (or ``[T, K]`` for one series), or None.
        channels: The model's ``K`` (0: it reads no covariates and None is the only answer).
        series: The ``B`` of the frames.
        frames: Frames the covariates must cover, from the first frame of the frames.
        needs: What needs them, for the error message (``"context 16 + horizon 8"``).
        name: The argument's name, for the error messages.
        exact: Refuse more than ``frames`` frames (aligned windows); otherwise later frames
            are dropped.

    Returns:
        ``Tensor[B, frames, K]`` (float32), or None for a model without covariates.

    Raises:
        ValueError: With one line naming the problem.

    Example:
        >>> import torch
        >>> as_covariates(torch.zeros(2, 30, 1), 1, 2, 24, "context 16 + horizon 8").shape
        torch.Size([2, 24, 1])
        >>> as_covariates(torch.zeros(2, 20, 1), 1, 2, 24, "context 16 + horizon 8")
        Traceback (most recent call last):
        ...
        ValueError: covariates cover 20 frames; context 16 + horizon 8 need 24
    """
    if channels == 0:
        if covariates is not None:
            raise ValueError(f"{name} given, but the model was built without covariates")
        return None
    if covariates is None:
        raise ValueError(
            f"the model was built with covariates={channels}: pass {name}, "
            f"Tensor[B, {frames}, {channels}] for {needs}"
        )
    tensor = torch.as_tensor(covariates, dtype=torch.float32)
    if tensor.dim() == 2:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 3:
        raise ValueError(f"{name} must be Tensor[B, T, K] (or [T, K]), got {tuple(tensor.shape)}")
    if tensor.shape[-1] != channels:
        raise ValueError(
            f"{name} have {tensor.shape[-1]} channels but the model was built for "
            f"covariates={channels}"
        )
    if tensor.shape[0] != series:
        raise ValueError(f"{name} have {tensor.shape[0]} series, the frames {series}")
    if tensor.shape[1] < frames or (exact and tensor.shape[1] != frames):
        raise ValueError(f"{name} cover {tensor.shape[1]} frames; {needs} need {frames}")
    tensor = tensor[:, :frames]
    bad = ~torch.isfinite(tensor)
    if bool(bad.any()):
        row, frame, channel = (int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"{name} contain NaN or inf (first at series {row}, frame {frame}, channel {channel})"
        )
    return tensor


class Encoding(nn.Module):
    """The recurrent half of :class:`~snfseq.SequenceFlow`, which subclasses it: from frames
    and covariates to the encoder state, the condition, the point prediction and the flow's
    target. The parts are built by the model (their names are the checkpoint's); this class
    holds what is computed with them.

    Normalised frames ``x: Tensor[N, T, D]``; standardised covariates ``z: Tensor[N, T, K]``,
    or None for a model without them.

    Example:
        >>> import torch
        >>> from snfseq import SequenceFlow
        >>> model = SequenceFlow(features=2, covariates=1, hidden=8, layers=1, transforms=1)
        >>> out, _ = model._encode(torch.zeros(3, 5, 2), None, covariates=torch.ones(3, 5, 1))
        >>> model._head_input(out, torch.ones(3, 5, 1)).shape  # [h_{t-1}, z_t]
        torch.Size([3, 5, 9])
    """

    config: SequenceFlowConfig
    encoder: nn.RNNBase
    condition: nn.Module
    flow: ConditionalFlow
    point_head: nn.Module
    normalizer: ContextNormalizer
    covariate_scaler: CovariateScaler

    def _covariates(
        self,
        covariates: Tensor | np.ndarray | None,
        series: int,
        frames: int,
        needs: str,
        *,
        name: str = "covariates",
        exact: bool = False,
    ) -> Tensor | None:
        """Checked (:func:`as_covariates`) and standardised covariates on the model's device."""
        checked = as_covariates(
            covariates, self.config.covariates, series, frames, needs, name=name, exact=exact
        )
        if checked is None:
            return None
        return self.covariate_scaler.standardize(checked.to(self.normalizer.scale.device))

    def _joined(self, windows: Tensor, covariates: Tensor | np.ndarray | None, name: str) -> Tensor:
        """Windows ``Tensor[N, T, D]`` and their covariates as one ``Tensor[N, T, D + K]``
        (the windows alone without covariates), checked, in their own units."""
        count, length = windows.shape[:2]
        needs = f"windows of {length} frames"
        checked = as_covariates(
            covariates, self.config.covariates, count, length, needs, name=name, exact=True
        )
        return windows if checked is None else torch.cat([windows, checked.to(windows)], -1)

    def _split(self, rows: Tensor) -> tuple[Tensor, Tensor | None]:
        """:meth:`_joined` undone: frames ``Tensor[N, T, D]`` and standardised covariates."""
        if not self.config.covariates:
            return rows, None
        features = self.config.features
        return rows[..., :features], self.covariate_scaler.standardize(rows[..., features:])

    def _encode(
        self,
        x: Tensor,
        previous: Tensor | None,
        state: Any = None,
        covariates: Tensor | None = None,
    ) -> tuple[Tensor, Any]:
        """Runs the encoder over normalised frames ``x: Tensor[N, T, D]``.

        ``previous: Tensor[N, D]`` is the frame before ``x[:, 0]`` (None: no change assumed);
        ``covariates: Tensor[N, T, K]`` are the standardised covariates of the frames ``x``.
        """
        if self.config.encoder_input == "frames+deltas":
            before = x[:, :1] if previous is None else previous.unsqueeze(1)
            deltas = torch.diff(x, dim=1, prepend=before) / self.normalizer.delta_scale
            x = torch.cat([x, deltas], -1)
        if covariates is not None:
            x = torch.cat([x, covariates], -1)
        return self.encoder(x, state)

    @staticmethod
    def _head_input(h: Tensor, covariates: Tensor | None) -> Tensor:
        """What the condition and the point head read: ``[h_{t-1}, z_t]`` (``Tensor[..., H + K]``),
        or ``h_{t-1}`` alone without covariates."""
        return h if covariates is None else torch.cat([h, covariates], -1)

    def _to_flow_space(self, x: Tensor, previous: Tensor) -> Tensor:
        if self.config.residual:
            return (x - previous) / self.normalizer.delta_scale
        return x

    def _from_flow_space(self, y: Tensor, previous: Tensor) -> Tensor:
        if self.config.residual:
            return previous + y * self.normalizer.delta_scale
        return y

    def _flow_log_jacobian(self) -> Tensor:
        """``log|dx/dy|`` per frame from flow space to data units."""
        ladj = self.normalizer.log_scale_sum()
        if self.config.residual:
            ladj = ladj + self.normalizer.delta_scale.log().sum()
        return ladj

    def _teacher_forced(
        self, windows: Tensor, context: int, covariates: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Flow log-density and point-head error of frames ``1..T-1``: ``Tensor[N, T-1]`` each.

        ``windows: Tensor[N, T, D]`` in data units; ``covariates: Tensor[N, T, K]`` standardised.
        """
        loc = self.normalizer.location(windows[:, :context])
        x = self.normalizer.normalize(windows, loc)
        seen = None if covariates is None else covariates[:, :-1]
        out, _ = self._encode(x[:, :-1], None, covariates=seen)
        head = self._head_input(out, None if covariates is None else covariates[:, 1:])
        c = self.condition(head)
        target = self._to_flow_space(x[:, 1:], x[:, :-1])
        log_prob = self.flow.log_prob(target, c)
        point_error = (self.point_head(head) - target).square().mean(-1)
        return log_prob, point_error

    def _encode_context(
        self, observed: Tensor, covariates: Tensor | None = None
    ) -> tuple[Tensor, Any, Tensor, Tensor]:
        """The context frames ``[B, T, D]`` (and their standardised covariates ``[B, T, K]``)
        encoded once: ``(loc: [B, D], state, top: [B, H], last: [B, D])``, the last two the
        encoder's top output and the last frame, normalised."""
        loc = self.normalizer.location(observed)
        x = self.normalizer.normalize(observed, loc)
        out, state = self._encode(x, None, covariates=covariates)
        return loc, state, out[:, -1], x[:, -1]
