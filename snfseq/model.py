"""`SequenceFlow`: a recurrent encoder conditioning a normalizing flow on the history (GRU-NF).

For frame ``t`` the encoder state ``h_{t-1}`` (frames ``< t`` only) gives a condition vector
``c_t = Linear(h_{t-1})``; the flow models ``p(x_t | c_t)`` and a point head predicts ``yhat_t``
(trained jointly, so that refinements have a trained prediction to aim at). Training maximises
the teacher-forced likelihood (:mod:`snfseq.training` runs the loop); forecasting samples step
by step, every sample keeping its own recurrent state (one batched recurrent call per step over
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
from snfseq.flows import ConditionalFlow, build_flow
from snfseq.forecast import Forecast
from snfseq.landmarks import Layout, layout_from_state
from snfseq.normalize import ContextNormalizer
from snfseq.rollout import OnlineForecaster, Rollout
from snfseq.runtime import evaluating, seeded
from snfseq.snf import ForecastStep, Refinement
from snfseq.training import FitHistory, fit_loop
from snfseq.validation import as_windows

CHECKPOINT_KIND = "snfseq.SequenceFlow"
Feedback = Literal["sample", "mean"]


class SequenceFlow(nn.Module):
    """Recurrent encoder + conditional flow + point head (GRU-NF).

    Args:
        features: Features per frame ``D``, or a whole :class:`SequenceFlowConfig`.
        **options: Any other field of :class:`SequenceFlowConfig` (``hidden``, ``layers``,
            ``flow``, ``transforms``, ``flow_hidden``...), which documents them all.

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
        dropout = config.dropout if config.layers > 1 else 0.0
        self.encoder = rnn(inputs, config.hidden, config.layers, batch_first=True, dropout=dropout)
        self.condition = nn.Sequential(nn.Linear(config.hidden, config.condition_size), nn.Tanh())
        self.flow: ConditionalFlow = build_flow(
            config.flow,
            config.features,
            config.condition_size,
            transforms=config.transforms,
            hidden=config.flow_hidden,
        )
        self.point_head = nn.Linear(config.hidden, config.features)
        self.normalizer = ContextNormalizer(config.features)
        self._layout: Layout | None = None

    @property
    def layout(self) -> Layout | None:
        """The fitted keypoint layout the features are in (saved with the model), or None.

        Set it to the layout of the training data: :meth:`to_mesh` (and ``snfseq render``)
        then map frames back to the face mesh.

        Example:
            >>> import numpy as np
            >>> from snfseq.landmarks import get_layout
            >>> mesh = np.random.default_rng(0).normal(size=(30, 468, 2))
            >>> model = SequenceFlow(features=20, hidden=8, layers=1, transforms=2)
            >>> model.layout = get_layout("mesh10").fit(mesh)
            >>> model.to_mesh(np.zeros((5, 20))).shape
            (5, 468, 2)
        """
        return self._layout

    @layout.setter
    def layout(self, layout: Layout | None) -> None:
        if layout is not None:
            if not layout.is_fitted:
                raise ValueError(f"layout {layout.name!r} is not fitted; fit it on mesh frames")
            if self.features % layout.num_keypoints:
                raise ValueError(f"{layout!r} does not fit the model's {self.features} features")
        self._layout = layout

    def to_mesh(self, frames: Tensor | np.ndarray) -> np.ndarray:
        """Maps frames ``[..., D]`` in the model's layout to face-mesh points ``[..., N, C]``."""
        if self._layout is None:
            raise ValueError("this model has no layout; set model.layout to the one it was fit in")
        array = np.asarray(torch.as_tensor(frames).detach().cpu())
        if array.shape[-1] != self.features:
            raise ValueError(f"frames have {array.shape[-1]} features, the model {self.features}")
        keypoints = array.reshape(*array.shape[:-1], self._layout.num_keypoints, -1)
        return self._layout.expand(keypoints)

    @property
    def features(self) -> int:
        """Features per frame ``D``."""
        return self.config.features

    @property
    def device(self) -> torch.device:
        """The device of the parameters."""
        return next(self.parameters()).device

    def _as_windows(self, x: Tensor | np.ndarray, name: str, min_frames: int) -> Tensor:
        return as_windows(x, name, self.features, min_frames).to(self.device)

    # ------------------------------------------------------------------ encoder

    def _encode(self, x: Tensor, previous: Tensor | None, state: Any = None) -> tuple[Tensor, Any]:
        """Runs the encoder over normalised frames ``x: Tensor[N, T, D]``.

        ``previous: Tensor[N, D]`` is the frame before ``x[:, 0]`` (None: no change assumed).
        """
        if self.config.encoder_input == "frames+deltas":
            before = x[:, :1] if previous is None else previous.unsqueeze(1)
            deltas = torch.diff(x, dim=1, prepend=before) / self.normalizer.delta_scale
            x = torch.cat([x, deltas], -1)
        return self.encoder(x, state)

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

    # ------------------------------------------------------------------ likelihood

    def _teacher_forced(self, windows: Tensor, context: int) -> tuple[Tensor, Tensor]:
        """Flow log-density and point-head error of frames ``1..T-1``: ``Tensor[N, T-1]`` each."""
        loc = self.normalizer.location(windows[:, :context])
        x = self.normalizer.normalize(windows, loc)
        out, _ = self._encode(x[:, :-1], None)
        c = self.condition(out)
        target = self._to_flow_space(x[:, 1:], x[:, :-1])
        log_prob = self.flow.log_prob(target, c)
        point_error = (self.point_head(out) - target).square().mean(-1)
        return log_prob, point_error

    def nll(self, windows: Tensor | np.ndarray, context: int) -> Tensor:
        """Negative log-likelihood of the horizon frames, per feature, in data units.

        Args:
            windows: ``Tensor[N, T, D]`` in data units.
            context: Frames that condition the rest (they also set the normalisation).

        Returns:
            ``Tensor[N]``: mean NLL per feature and horizon frame of each window.
        """
        windows = self._as_windows(windows, "windows", context + 1)
        with evaluating(self), torch.no_grad():
            log_prob, _ = self._teacher_forced(windows, context)
        horizon_log_prob = log_prob[:, context - 1 :] - self._flow_log_jacobian()
        return -horizon_log_prob.mean(1) / self.features

    # ------------------------------------------------------------------ training

    def fit(
        self,
        windows: Tensor | np.ndarray,
        *,
        context: int | None = None,
        val_windows: Tensor | np.ndarray | None = None,
        val_fraction: float = 0.1,
        seed: int | None = 0,
        device: str | torch.device | None = None,
        **options: Any,
    ) -> FitHistory:
        """Trains by teacher-forced likelihood (loop: :func:`snfseq.training.fit_loop`).

        Args:
            windows: Training windows ``Tensor[N, T, D]`` in data units.
            context: Frames of each window that set its normalisation (as at forecast time);
                default ``T // 3``.
            val_windows: Validation windows; when None, the last ``val_fraction`` of
                ``windows`` (a contiguous block, so overlapping windows leak only at its edge).
                Split by sequence beforehand (:func:`snfseq.data.split_sequences`) for an
                honest validation set.
            val_fraction: See ``val_windows``; 0 disables validation and early stopping.
            seed: Seeds the randomness of training (initial shuffles, dropout).
            device: ``"cpu"``, ``"cuda"``...; default CUDA when available.
            **options: ``epochs`` (100), ``batch_size`` (64), ``lr`` (1e-3), ``weight_decay``
                (1e-6), ``clip_norm`` (5), ``patience`` (10), ``progress`` (True): see
                :func:`~snfseq.training.fit_loop`.

        Returns:
            The :class:`~snfseq.training.FitHistory`.
        """
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.to(device)
        train = self._as_windows(windows, "windows", 2)
        length = train.shape[1]
        context = length // 3 if context is None else context
        if not 1 <= context < length:
            raise ValueError(f"context must be in [1, {length - 1}] for windows of {length} frames")
        val: Tensor | None = None
        if val_windows is not None:
            val = self._as_windows(val_windows, "val_windows", context + 1)
        elif val_fraction > 0 and train.shape[0] >= 10:
            cut = train.shape[0] - max(1, int(round(val_fraction * train.shape[0])))
            train, val = train[:cut], train[cut:]
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        if seed is not None:
            torch.manual_seed(seed)
        self.normalizer.fit(train.cpu(), context)
        self.normalizer.to(device)

        def loss(batch: Tensor) -> Tensor:
            log_prob, point_error = self._teacher_forced(batch, context)
            return -log_prob.mean() / self.features + self.config.point_weight * point_error.mean()

        def validate() -> tuple[float, float]:
            assert val is not None
            return float(loss(val)), float(self.nll(val, context).mean())

        return fit_loop(
            self,
            train,
            loss,
            validate=None if val is None else validate,
            generator=generator,
            **options,
        )

    # ------------------------------------------------------------------ forecasting

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

        Returns:
            A :class:`Forecast` with ``samples: Tensor[S, B, H, D]`` in data units.
        """
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if feedback not in ("sample", "mean"):
            raise ValueError(f"feedback must be 'sample' or 'mean', got {feedback!r}")
        if not bool(self.normalizer.fitted):
            raise RuntimeError("the model is not trained: call fit() or load a checkpoint")
        observed = self._as_windows(context, "context", self.config.min_context)
        with seeded(seed, [observed.device]), evaluating(self), torch.no_grad():
            return self._forecast(
                observed, horizon, num_samples, refinement, feedback, record_trace, feature_names
            )

    def _forecast(
        self,
        observed: Tensor,
        horizon: int,
        num_samples: int,
        refinement: Refinement | None,
        feedback: Feedback,
        record_trace: bool,
        feature_names: Sequence[str] | None,
    ) -> Forecast:
        rollout = self._rollout(observed, num_samples, refinement, feedback, record_trace)
        for h in range(horizon):
            rollout.step(feed_back=h + 1 < horizon)  # nothing reads the state after the last
        return rollout.forecast(feature_names)

    def _encode_context(self, observed: Tensor) -> tuple[Tensor, Any, Tensor, Tensor]:
        """The context frames ``[B, T, D]`` encoded once: ``(loc: [B, D], state, top: [B, H],
        last: [B, D])``, the last two the encoder's top output and the last frame, normalised."""
        loc = self.normalizer.location(observed)
        x = self.normalizer.normalize(observed, loc)
        out, state = self._encode(x, None)
        return loc, state, out[:, -1], x[:, -1]

    def _rollout(
        self,
        observed: Tensor,
        num_samples: int,
        refinement: Refinement | None = None,
        feedback: Feedback = "sample",
        record: bool = False,
    ) -> Rollout:
        """Encodes the context frames and starts ``num_samples`` paths from them."""
        return Rollout(
            self,
            *self._encode_context(observed),
            num_samples,
            refinement=refinement,
            feedback=feedback,
            record=record,
        )

    def online(
        self,
        context: Tensor | np.ndarray,
        num_samples: int = 100,
        horizon: int = 1,
        refinement: Refinement | None = None,
        feedback: Feedback = "sample",
        window: int | None = None,
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

        Example:
            >>> import torch
            >>> model = SequenceFlow(features=3, hidden=8, layers=1, transforms=2,
            ...                      flow_hidden=(8,))
            >>> _ = model.fit(torch.randn(40, 10, 3).cumsum(1), context=4, epochs=1,
            ...               progress=False)
            >>> model.online(torch.zeros(4, 3), num_samples=8).push(torch.ones(3)).samples.shape
            torch.Size([8, 1, 1, 3])
        """
        return OnlineForecaster(self, context, num_samples, horizon, refinement, feedback, window)

    @torch.no_grad()
    def first_step(
        self, context: Tensor | np.ndarray, num_samples: int = 1
    ) -> tuple[Tensor, ForecastStep]:
        """The condition and the target's :class:`~snfseq.snf.ForecastStep` of the first
        forecast step, exactly as :meth:`forecast` builds them (rows ``s * B + b``).

        Args:
            context: Observed frames ``Tensor[B, T, D]`` (or ``[T, D]``) in data units.
            num_samples: Rows per series ``S``.

        Returns:
            ``(c: Tensor[S * B, C], step)``; ``step.yhat`` is the point prediction in the
            flow's standardised space, what a refinement of the first frame aims at.
        """
        observed = self._as_windows(context, "context", self.config.min_context)
        with evaluating(self):
            rollout = self._rollout(observed, num_samples)
            return self.condition(rollout.h_top), rollout.target_step()

    def condition_on(self, context: Tensor | np.ndarray) -> tuple[Tensor, Tensor]:
        """Condition vector ``Tensor[B, C]`` and point prediction ``Tensor[B, D]`` (flow
        space) of the first forecast step: :meth:`first_step` with one row per series.

        Args:
            context: Observed frames ``Tensor[B, T, D]`` (or ``[T, D]``) in data units.
        """
        c, step = self.first_step(context, 1)
        return c, step.yhat

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes config, weights, normalisation, layout and package version, atomically."""
        extra = {}
        if self._layout is not None:
            state = {k: torch.from_numpy(v) for k, v in self._layout.state_dict().items()}
            extra["layout"] = {"name": self._layout.name, "state": state}
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
        model = cls(**config)
        checkpoint.load_state(model, state, path)
        if "layout" in extra:
            saved = {k: v.cpu().numpy() for k, v in extra["layout"]["state"].items()}
            model.layout = layout_from_state(extra["layout"]["name"], saved)
        if map_location is not None:
            model.to(map_location)
        return model.eval()
