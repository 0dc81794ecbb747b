"""`SequenceFlow`: a recurrent encoder conditioning a normalizing flow on the history (GRU-NF).

For frame ``t`` the encoder state ``h_{t-1}`` (frames ``< t`` only) gives a condition vector
``c_t = Linear(h_{t-1})``; the flow models ``p(x_t | c_t)`` and a point head predicts ``yhat_t``
(trained jointly, so that refinements have a trained prediction to aim at). Known-in-advance
covariates ``z_t`` (``covariates=K``) join the encoder's input and the condition's,
``c_t = Linear([h_{t-1}, z_t])`` (:mod:`snfseq.encoding`). Training maximises the
teacher-forced likelihood (:mod:`snfseq.training` runs the loop); forecasting samples step by
step, every sample keeping its own recurrent state (one batched recurrent call per step over
``S x B`` rows) unless ``feedback="mean"`` feeds all samples of a series their mean, as the
published code does. Checkpoint files are :mod:`snfseq.checkpoint`'s.

Example:
    >>> import torch
    >>> windows = torch.randn(64, 12, 4).cumsum(1)
    >>> model = SequenceFlow(features=4, hidden=16, layers=1, transforms=2, flow_hidden=(16,))
    >>> history = model.fit(windows, context=6, epochs=2, progress=False)
    >>> fc = model.forecast(windows[:3, :6], horizon=5, num_samples=10, seed=0)
    >>> fc.samples.shape
    torch.Size([10, 3, 5, 4])
"""

from __future__ import annotations

__all__ = ["FitHistory", "SequenceFlow", "SequenceFlowConfig"]

import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from snfseq import checkpoint
from snfseq.config import SequenceFlowConfig
from snfseq.encoding import CovariateScaler, Encoding
from snfseq.fitting import Fitting
from snfseq.flows import ConditionalFlow, build_flow
from snfseq.forecast import Forecast
from snfseq.graphs import GraphedRollout
from snfseq.landmarks.laid_out import LaidOut, layout_state, restore_layout
from snfseq.normalize import ContextNormalizer
from snfseq.rollout import OnlineForecaster, Rollout
from snfseq.runtime import evaluating, seeded
from snfseq.snf import ForecastStep, Refinement
from snfseq.training import FitHistory
from snfseq.validation import is_count

CHECKPOINT_KIND = "snfseq.SequenceFlow"
Feedback = Literal["sample", "mean"]


class SequenceFlow(Fitting, Encoding, LaidOut):
    """Recurrent encoder + conditional flow + point head (GRU-NF).

    Args:
        features: Features per frame ``D``, or a whole :class:`SequenceFlowConfig`.
        **options: Any other field of :class:`SequenceFlowConfig` (``hidden``, ``layers``,
            ``flow``, ``transforms``, ``flow_hidden``, ``covariates``...), which documents
            them all.

    Example:
        >>> model = SequenceFlow(features=4, hidden=8, layers=1, transforms=2, flow_hidden=(8,))
        >>> model.config.hidden, model.flow.num_layers
        (8, 2)
    """

    def __init__(self, features: int | SequenceFlowConfig, **options: Any) -> None:
        super().__init__()
        if "context_size" in options:  # its name before "context" came to mean observed frames
            warnings.warn("context_size is now condition_size", DeprecationWarning, 2)
            options["condition_size"] = options.pop("context_size")
        if isinstance(features, SequenceFlowConfig):
            config = SequenceFlowConfig(**(asdict(features) | options))
        else:
            known = {f.name for f in fields(SequenceFlowConfig)}
            unknown = sorted(set(options) - known)
            if unknown:
                raise TypeError(f"unknown SequenceFlow options {unknown}; see SequenceFlowConfig")
            config = SequenceFlowConfig(features=features, **options)
        self.config = config
        rnn = nn.GRU if config.cell == "gru" else nn.LSTM
        inputs = 2 * config.features if config.encoder_input == "frames+deltas" else config.features
        inputs, heads = inputs + config.covariates, config.hidden + config.covariates
        dropout = config.dropout if config.layers > 1 else 0.0
        self.encoder = rnn(inputs, config.hidden, config.layers, batch_first=True, dropout=dropout)
        self.condition = nn.Sequential(nn.Linear(heads, config.condition_size), nn.Tanh())
        self.flow: ConditionalFlow = build_flow(
            config.flow,
            config.features,
            config.condition_size,
            transforms=config.transforms,
            hidden=config.flow_hidden,
        )
        self.point_head = nn.Linear(heads, config.features)
        self.normalizer = ContextNormalizer(config.features)
        if config.covariates:  # without covariates the parameters are those of the plain model
            self.covariate_scaler = CovariateScaler(config.covariates)

    # ------------------------------------------------------------------ likelihood

    def nll(
        self,
        windows: Tensor | np.ndarray,
        context: int,
        covariates: Tensor | np.ndarray | None = None,
    ) -> Tensor:
        """Negative log-likelihood of the horizon frames, per feature, in data units.

        Args:
            windows: ``Tensor[N, T, D]`` in data units.
            context: Frames that condition the rest (they also set the normalisation).
            covariates: ``Tensor[N, T, K]``, the covariates of every frame of the windows
                (a model built with ``covariates=K`` only).

        Returns:
            ``Tensor[N]``: mean NLL per feature and horizon frame of each window.
        """
        if not is_count(context):
            raise ValueError(f"context must be an integer >= 1, got {context!r}")
        windows = self._as_windows(windows, "windows", int(context) + 1)
        count, length = windows.shape[:2]
        z = self._covariates(covariates, count, length, f"windows of {length} frames", exact=True)
        with evaluating(self), torch.no_grad():
            log_prob, _ = self._teacher_forced(windows, context, z)
        return self._horizon_nll(log_prob, context)

    def forecast(
        self,
        context: Tensor | np.ndarray,
        horizon: int,
        num_samples: int = 100,
        refinement: Refinement | None = None,
        *,
        feedback: Feedback = "sample",
        seed: int | None = None,
        record_trace: bool = False,
        feature_names: Sequence[str] | None = None,
        covariates: Tensor | np.ndarray | None = None,
        cuda_graph: bool = False,
    ) -> Forecast:
        """Samples ``num_samples`` future trajectories of each series.

        Args:
            context: Observed frames ``Tensor[B, T, D]`` (or ``[T, D]``) in data units.
            horizon: Frames to forecast ``H``.
            num_samples: Sample paths ``S`` per series.
            refinement: A :class:`snfseq.Refinement` to run MCMC between flow layers (GRU-SNF);
                None samples the flow alone (GRU-NF).
            feedback: What the recurrent state is fed after each step: ``"sample"`` (each
                sample its own frame: every sample a coherent trajectory) or ``"mean"`` (the
                sample mean of each series, as the published code; samples then share a state).
            seed: Makes the forecast reproducible (the global RNG is left as it was).
            record_trace: Keep the refinement's states, energies and accept flags.
            feature_names: Names for the feature axis of :meth:`Forecast.to_xarray`.
            covariates: ``Tensor[B, T + H, K]``, the covariates of the context frames and of
                the ``H`` forecast frames (later frames are ignored), for a model built with
                ``covariates=K``.
            cuda_graph: Capture one step as a CUDA graph and replay it for every frame
                (:class:`snfseq.graphs.GraphedRollout`: a GPU model, no resampling,
                covariates or traces).

        Returns:
            A :class:`Forecast` with ``samples: Tensor[S, B, H, D]`` in data units.
        """
        for name, count in (("horizon", horizon), ("num_samples", num_samples)):
            if not is_count(count):
                raise ValueError(f"{name} must be an integer >= 1, got {count!r}")
        horizon, num_samples = int(horizon), int(num_samples)
        if feedback not in ("sample", "mean"):
            raise ValueError(f"feedback must be 'sample' or 'mean', got {feedback!r}")
        if not bool(self.normalizer.fitted):
            raise RuntimeError("the model is not trained: call fit() or load a checkpoint")
        observed = self._as_windows(context, "context", self.config.min_context)
        series, length = observed.shape[:2]
        needs = f"context {length} + horizon {horizon}"
        z = self._covariates(covariates, series, length + horizon, needs)
        with seeded(seed, [observed.device]), evaluating(self), torch.no_grad():
            rollout = self._rollout(observed, num_samples, refinement, feedback, record_trace, z)
            stepper = GraphedRollout(rollout) if cuda_graph else rollout
            for h in range(horizon):
                stepper.step(feed_back=h + 1 < horizon)  # nothing reads the state after the last
            forecast = stepper.forecast(feature_names)
        message = forecast.weight_warning()
        if message is not None and (refinement is None or refinement.resample is None):
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        return forecast

    def _rollout(
        self,
        observed: Tensor,
        num_samples: int,
        refinement: Refinement | None = None,
        feedback: Feedback = "sample",
        record: bool = False,
        covariates: Tensor | None = None,
    ) -> Rollout:
        """Encodes the context frames and starts ``num_samples`` paths from them; standardised
        ``covariates: Tensor[B, T + H, K]`` cover the context's ``T`` and the ``H`` ahead."""
        length = observed.shape[1]
        seen = None if covariates is None else covariates[:, :length]
        return Rollout(
            self,
            *self._encode_context(observed, seen),
            num_samples,
            refinement=refinement,
            feedback=feedback,
            record=record,
            covariates=None if covariates is None else covariates[:, length:],
        )

    def online(
        self,
        context: Tensor | np.ndarray,
        num_samples: int = 100,
        horizon: int = 1,
        refinement: Refinement | None = None,
        feedback: Feedback = "sample",
        window: int | None = None,
        covariates: Tensor | np.ndarray | None = None,
    ) -> OnlineForecaster:
        """A stateful forecaster for live streams: ``online.push(frame)`` returns the forecast
        of the next ``horizon`` frames (see :class:`~snfseq.rollout.OnlineForecaster`).

        Args:
            context: The frames observed so far, ``Tensor[B, T, D]`` (or ``[T, D]``).
            num_samples: Sample paths ``S`` per forecast.
            horizon: Frames each forecast reaches ahead.
            refinement: MCMC between flow layers, or None.
            feedback: ``"sample"`` or ``"mean"``.
            window: Re-encode the newest ``window`` frames per push (long streams need it).
            covariates: ``Tensor[B, T + horizon, K]`` for a model with covariates: those of
                the context and of the first forecast's frames; each push then brings the
                covariates of one more frame (``push(frame, covariates_next=...)``).

        Example:
            >>> import torch
            >>> model = SequenceFlow(features=3, hidden=8, layers=1, transforms=2,
            ...                      flow_hidden=(8,))
            >>> _ = model.fit(torch.randn(40, 10, 3).cumsum(1), context=4, epochs=1,
            ...               progress=False)
            >>> model.online(torch.zeros(4, 3), num_samples=8).push(torch.ones(3)).samples.shape
            torch.Size([8, 1, 1, 3])
        """
        return OnlineForecaster(
            self, context, num_samples, horizon, refinement, feedback, window, covariates
        )

    @torch.no_grad()
    def first_step(
        self,
        context: Tensor | np.ndarray,
        num_samples: int = 1,
        covariates: Tensor | np.ndarray | None = None,
    ) -> tuple[Tensor, ForecastStep]:
        """The condition and the target's :class:`~snfseq.snf.ForecastStep` of the first
        forecast step, exactly as :meth:`forecast` builds them (rows ``s * B + b``).

        Args:
            context: Observed frames ``Tensor[B, T, D]`` (or ``[T, D]``) in data units.
            num_samples: Rows per series ``S``.
            covariates: ``Tensor[B, T + 1, K]``: the context's and the first forecast frame's.

        Returns:
            ``(c: Tensor[S * B, C], step)``; ``step.yhat`` is the point prediction in the
            flow's standardised space, what a refinement of the first frame aims at.
        """
        observed = self._as_windows(context, "context", self.config.min_context)
        series, length = observed.shape[:2]
        z = self._covariates(covariates, series, length + 1, f"context {length} + horizon 1")
        with evaluating(self):
            rollout = self._rollout(observed, num_samples, covariates=z)
            return rollout.condition(), rollout.target_step()

    def condition_on(
        self, context: Tensor | np.ndarray, covariates: Tensor | np.ndarray | None = None
    ) -> tuple[Tensor, Tensor]:
        """Condition vector ``Tensor[B, C]`` and point prediction ``Tensor[B, D]`` (flow
        space) of the first forecast step: :meth:`first_step` with one row per series.

        Args:
            context: Observed frames ``Tensor[B, T, D]`` (or ``[T, D]``) in data units.
            covariates: ``Tensor[B, T + 1, K]``, as for :meth:`first_step`.
        """
        c, step = self.first_step(context, 1, covariates)
        return c, step.yhat

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes config, weights, normalisation, layout and package version, atomically."""
        layout = layout_state(self)
        extra = {} if layout is None else {"layout": layout}
        config = asdict(self.config)
        return checkpoint.write(path, CHECKPOINT_KIND, config, self.state_dict(), extra)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], map_location: str | torch.device | None = None
    ) -> SequenceFlow:
        """Loads a checkpoint written by :meth:`save` (``torch.load(weights_only=True)``)."""
        config, state, extra = checkpoint.read_all(path, CHECKPOINT_KIND, map_location)
        if "context_size" in config:  # written before the rename
            config["condition_size"] = config.pop("context_size")
        try:
            model = cls(**config)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path} holds an invalid model configuration: {error}") from error
        checkpoint.load_state(model, state, path)
        restore_layout(model, extra.get("layout"))
        if map_location is not None:
            model.to(map_location)
        return model.eval()
