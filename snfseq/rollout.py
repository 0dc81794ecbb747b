"""The forecasting loop: sample paths rolled forward one frame at a time, and its online form.

A :class:`Rollout` holds ``S x B`` rows (row ``s * B + b`` is sample ``s`` of series ``b``):
each :meth:`Rollout.step` draws one frame per row from the flow (refined when a
:class:`~snfseq.snf.Refinement` is given), moves resampled histories along with their rows, and
feeds the frame back into the recurrent state (each sample its own, or the sample mean).
:meth:`snfseq.SequenceFlow.forecast` runs one for ``H`` steps; an :class:`OnlineForecaster`
(``model.online(...)``) keeps the encoder state of the observed frames between calls, so that
pushing a newly observed frame costs one recurrent step plus the forecast, with no
re-encoding of the history; or, with ``window=W``, re-encodes the newest ``W`` frames at each
push (normalised afresh, as the training windows were), which long streams need.

With covariates (``covariates=K``), step ``h`` reads the covariates of forecast frame ``h``
twice: in the condition and point prediction of that frame, and in the encoder's input when
the frame is fed back (:mod:`snfseq.encoding`).

The model is used through its parts (``condition``, ``flow``, ``point_head``, ``normalizer``,
``_encode``, ``_encode_context``, ``_head_input``, ``_covariates``, ``_from_flow_space``,
``config``): this module sits below ``model.py`` and imports nothing from it (``model`` is
typed ``Any`` here for that reason).

Example:
    >>> import torch
    >>> from snfseq import SequenceFlow
    >>> model = SequenceFlow(features=3, hidden=8, layers=1, transforms=2, flow_hidden=(8,))
    >>> _ = model.fit(torch.randn(40, 10, 3).cumsum(1), context=4, epochs=1, progress=False)
    >>> online = model.online(torch.zeros(2, 4, 3), num_samples=5, horizon=2)
    >>> online.push(torch.ones(2, 3)).samples.shape  # [S, B, H, D]
    torch.Size([5, 2, 2, 3])
"""

from __future__ import annotations

__all__ = ["OnlineForecaster", "Rollout"]

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from snfseq.forecast import Forecast
from snfseq.runtime import evaluating, seeded
from snfseq.snf import AffineMap, ForecastStep, Refinement, Trace
from snfseq.validation import as_windows
from snfseq.weights import resample_degenerate

Feedback = Literal["sample", "mean"]


class Rollout:
    """``S`` sample paths of ``B`` series, rolled forward one frame per :meth:`step`.

    Args:
        model: The trained :class:`~snfseq.SequenceFlow` (in eval mode, without gradients).
        loc: ``Tensor[B, D]``, each series' normalisation location.
        state: The encoder state after the observed frames, ``[L, B, H]`` (LSTM: a pair).
        top: ``Tensor[B, H]``, the encoder's last top-layer output.
        last: ``Tensor[B, D]``, the last observed frame, normalised.
        num_samples: Sample paths ``S`` per series.
        refinement: MCMC between flow layers, or None (GRU-NF).
        feedback: ``"sample"`` (every sample its own state) or ``"mean"`` (one state per
            series, fed the sample mean, as published).
        record: Keep the refinement's trace.
        covariates: ``Tensor[B, H, K]``, the standardised covariates of the frames ahead (one
            per step), for a model with covariates.

    Example:
        >>> import torch
        >>> from snfseq import SequenceFlow
        >>> model = SequenceFlow(features=3, hidden=8, layers=1, transforms=2, flow_hidden=(8,))
        >>> _ = model.normalizer.fitted.fill_(True)
        >>> rollout = Rollout(model, torch.zeros(2, 3), torch.zeros(1, 2, 8), torch.zeros(2, 8),
        ...                   torch.zeros(2, 3), num_samples=4)
        >>> with torch.no_grad():
        ...     rollout.step(); rollout.step()
        >>> rollout.forecast().samples.shape
        torch.Size([4, 2, 2, 3])
    """

    def __init__(
        self,
        model: Any,
        loc: Tensor,
        state: Any,
        top: Tensor,
        last: Tensor,
        num_samples: int,
        *,
        refinement: Refinement | None = None,
        feedback: Feedback = "sample",
        record: bool = False,
        covariates: Tensor | None = None,
    ) -> None:
        self.covariates = covariates
        self.model, self.refinement, self.feedback, self.record = (
            model,
            refinement,
            feedback,
            record,
        )
        self.num_samples, self.batch = num_samples, loc.shape[0]
        self.rows = num_samples * self.batch
        device = loc.device
        self.loc = loc
        self.state = _repeat(state, num_samples) if feedback == "sample" else state
        self.h_top, self.previous = top.repeat(num_samples, 1), last.repeat(num_samples, 1)
        self.loc_rows = loc.repeat(num_samples, 1)
        self.series = torch.arange(self.batch, device=device).repeat(num_samples)
        self.identity = torch.arange(num_samples, device=device).repeat_interleave(self.batch)
        self.frames: list[Tensor] = []
        self.step_weights: list[Tensor] = []
        self.ancestry: list[Tensor] = []  # per refined step, the sample each row was copied from
        self.traces: list[Trace] = []
        self.resampled = False
        # Log-weight each path dropped at its series' resamplings: log_weights = sum - offset.
        self.offset = torch.zeros(num_samples, self.batch, device=device)

    def _step_covariates(self) -> Tensor | None:
        """The covariates of the next frame, ``Tensor[B, K]`` (None without covariates)."""
        if self.covariates is None:
            return None
        step = len(self.frames)
        if step >= self.covariates.shape[1]:
            raise ValueError(f"covariates cover {step} steps ahead; step {step + 1} needs more")
        return self.covariates[:, step]

    def _head_input(self) -> Tensor:
        """``[h_{t-1}, z_t]`` of every row, what the condition and the point head read."""
        covariates = self._step_covariates()
        rows = None if covariates is None else covariates[self.series]
        return self.model._head_input(self.h_top, rows)

    def condition(self) -> Tensor:
        """The flow's condition at the next step, ``Tensor[S * B, C]``."""
        return self.model.condition(self._head_input())

    def target_step(self) -> ForecastStep:
        """What the refinement's target is built from at the next step (rows ``S x B``)."""
        normalizer = self.model.normalizer
        previous_data = self.loc_rows + normalizer.scale * self.previous
        if self.model.config.residual:
            to_data = AffineMap(previous_data, normalizer.scale * normalizer.delta_scale)
        else:
            to_data = AffineMap(self.loc_rows, normalizer.scale)
        return ForecastStep(
            len(self.frames),
            self.model.point_head(self._head_input()),
            previous_data,
            self.series,
            to_data,
            (self.num_samples, self.batch),
        )

    def step(self, *, feed_back: bool = True) -> None:
        """Samples the next frame of every path and feeds it back into the recurrent state.

        Args:
            feed_back: Run the recurrent step on the new frame (not needed after the last).
        """
        model = self.model
        parents = self.identity
        resampled = self._resampling()
        if resampled is not None:
            index, restart = resampled
            parents = self._follow(index)
            self.offset = self.offset + restart
        c = self.condition()
        z = torch.randn(self.rows, model.features, device=c.device)
        if self.refinement is None:
            y, _ = model.flow.sample_from(z, c)
        else:
            target = self.target_step()
            result = self.refinement.run(
                model.flow,
                z,
                c,
                step=target,
                batch_shape=target.batch_shape,
                record=self.record,
                # Inside a step only where every block targets a tempered posterior: moving
                # copies towards the published-style interpolated energies, which are not
                # forecasts, only multiplies copies of the same past (path degeneracy).
                resample_blocks=self.refinement.prior == "flow",
            )
            y = result.y
            if result.ancestors is not None:  # rows resampled inside the refinement
                parents = self._follow(result.ancestors)
            if result.log_weight is not None:
                self.step_weights.append(result.log_weight.reshape(self.num_samples, self.batch))
            if result.trace is not None:
                self.traces.append(result.trace)
            self.ancestry.append(parents)
        frame = model._from_flow_space(y, self.previous)
        covariates = self._step_covariates()  # the frame's own, fed with it
        self.frames.append(frame)
        if not feed_back:
            return
        if self.feedback == "mean":
            fed = frame.reshape(self.num_samples, self.batch, -1).mean(0)
            own = None if covariates is None else covariates.unsqueeze(1)
            out, self.state = model._encode(
                fed.unsqueeze(1), self.previous[: self.batch], self.state, own
            )
            self.h_top = out[:, 0].repeat(self.num_samples, 1)
            self.previous = fed.repeat(self.num_samples, 1)
        else:
            own = None if covariates is None else covariates[self.series].unsqueeze(1)
            out, self.state = model._encode(frame.unsqueeze(1), self.previous, self.state, own)
            self.h_top, self.previous = out[:, 0], frame

    def _follow(self, index: Tensor) -> Tensor:
        """Moves every row's history to the rows ``index`` (``Tensor[S * B]``, within each
        series) copied; returns the sample each row was copied from."""
        self.resampled = True
        self.frames, self.step_weights, self.ancestry = (
            [_rows(t, index) for t in history]
            for history in (self.frames, self.step_weights, self.ancestry)
        )
        self.offset = _rows(self.offset, index)
        self.previous, self.h_top = self.previous[index], self.h_top[index]
        if self.feedback == "sample":
            self.state = _take(self.state, index)
        return index // self.batch

    def _resampling(self) -> tuple[Tensor, Tensor] | None:
        """When some series' path weights have degenerated (below the refinement's
        ``resample`` threshold): the rows to copy, ``Tensor[S * B]``, and what to add to the
        copies' offsets, ``Tensor[S, B]``, so that their weights restart equal; else None."""
        refinement = self.refinement
        if refinement is None or refinement.resample is None or not self.step_weights:
            return None
        total = torch.stack(self.step_weights, -1).sum(-1) - self.offset  # [S, B]
        moved = resample_degenerate(total, refinement.resample, refinement.resampling)
        if moved is None:
            return None
        # The copies carry their ancestors' weights; the offset makes them restart equal.
        index, restarted = moved
        return index, _rows(total, index) - restarted

    def forecast(self, feature_names: Sequence[str] | None = None) -> Forecast:
        """The paths so far as a :class:`~snfseq.Forecast` in data units."""
        horizon = len(self.frames)
        paths = torch.stack(self.frames, 1).reshape(
            self.num_samples, self.batch, horizon, self.model.features
        )
        steps = torch.stack(self.step_weights, -1) if self.step_weights else None
        ancestors = None
        if self.resampled:
            ancestors = torch.stack(self.ancestry, -1).reshape(self.num_samples, self.batch, -1)
        return Forecast(
            samples=self.model.normalizer.denormalize(paths, self.loc),
            log_weights=None if steps is None else steps.sum(-1) - self.offset,
            step_log_weights=steps,
            trace=Trace.stack(self.traces) if self.traces else None,
            ancestors=ancestors,
            feature_names=feature_names,
        )


class OnlineForecaster:
    """A forecaster for live streams: push each newly observed frame, get the next frames.

    By default the encoder state of the observed frames is kept between pushes (one recurrent
    step per push, no re-encoding of the history) and normalisation keeps the location of the
    initial context. That suits streams about as long as the training windows; over longer
    ones the state and the location drift away from anything seen in training (on the
    held-out face videos, 12.0 px of mesh error vs 9.7 px with a window of 9,
    ``benchmarks/results/stream.md``). With ``window=W`` each push re-encodes the newest ``W``
    frames from scratch, with their own normalisation, exactly as a training window: ``W``
    recurrent steps on ``B`` rows per push, small beside the ``S x B``-row forecast. Each
    forecast rolls ``num_samples`` paths forward from the state. Made by
    :meth:`snfseq.SequenceFlow.online`.

    A model with covariates needs those of the next ``horizon`` frames at every forecast: the
    forecaster is given the context's and the first forecast's, and each push brings the
    covariates of the frame ``horizon`` frames after the pushed one (``covariates_next``), so
    that they stay known ``horizon`` frames ahead. Covariates once given are kept: a revised
    covariate forecast (a new weather forecast) needs a new forecaster.

    Args:
        model: A trained :class:`~snfseq.SequenceFlow`.
        context: The frames observed so far, ``Tensor[B, T, D]`` (or ``[T, D]``), data units.
        num_samples: Sample paths ``S`` per forecast.
        horizon: Frames each forecast reaches ahead ``H``.
        refinement: MCMC between flow layers, or None.
        feedback: ``"sample"`` or ``"mean"`` (see :meth:`snfseq.SequenceFlow.forecast`).
        window: Re-encode the newest ``window`` frames at every push (at least the model's
            ``min_context``), or None to keep one state for the whole stream.
        covariates: ``Tensor[B, T + horizon, K]``: the covariates of the context frames and
            of the first forecast's (a model with covariates only).

    Example:
        >>> import torch
        >>> from snfseq import SequenceFlow
        >>> model = SequenceFlow(features=3, hidden=8, layers=1, transforms=2, flow_hidden=(8,))
        >>> _ = model.fit(torch.randn(40, 10, 3).cumsum(1), context=4, epochs=1, progress=False)
        >>> online = OnlineForecaster(model, torch.zeros(4, 3), num_samples=6, horizon=3)
        >>> fc = online.push(torch.zeros(3), seed=0)
        >>> fc.samples.shape, online.frames_seen
        (torch.Size([6, 1, 3, 3]), 5)
    """

    def __init__(
        self,
        model: Any,
        context: Tensor | np.ndarray,
        num_samples: int = 100,
        horizon: int = 1,
        refinement: Refinement | None = None,
        feedback: Feedback = "sample",
        window: int | None = None,
        covariates: Tensor | np.ndarray | None = None,
    ) -> None:
        if window is not None and window < model.config.min_context:
            raise ValueError(f"window must be >= min_context={model.config.min_context}")
        if horizon < 1 or num_samples < 1:
            raise ValueError(f"horizon and num_samples must be >= 1, got {horizon}, {num_samples}")
        if feedback not in ("sample", "mean"):
            raise ValueError(f"feedback must be 'sample' or 'mean', got {feedback!r}")
        if not bool(model.normalizer.fitted):
            raise RuntimeError("the model is not trained: call fit() or load a checkpoint")
        self.model, self.num_samples, self.horizon = model, num_samples, horizon
        self.refinement, self.feedback = refinement, feedback
        observed = model._as_windows(context, "context", model.config.min_context)
        length, self.window = observed.shape[1], window
        needs = f"context {length} + horizon {horizon}"
        known = model._covariates(covariates, observed.shape[0], length + horizon, needs)
        # Standardised covariates of the recent frames and of the next `horizon` frames.
        self.seen = None if known is None else known[:, :length]
        self.ahead = None if known is None else known[:, length:]
        self.recent = observed
        if window is not None:
            self.recent = observed[:, -window:]
            self.seen = None if self.seen is None else self.seen[:, -window:]
        with evaluating(model), torch.no_grad():
            self.loc, self.state, self.top, self.last = model._encode_context(
                self.recent, self.seen
            )
        self.frames_seen = length

    def push(
        self,
        frame: Tensor | np.ndarray,
        *,
        covariates_next: Tensor | np.ndarray | None = None,
        seed: int | None = None,
    ) -> Forecast:
        """Takes the newest observed frame ``Tensor[B, D]`` (or ``[D]``) and forecasts.

        Args:
            frame: The frame, in data units, one per series.
            covariates_next: ``Tensor[B, K]`` (or ``[K]``), the covariates of the frame
                ``horizon`` frames after this one, for a model with covariates.
            seed: Makes this forecast reproducible.

        Returns:
            The :class:`~snfseq.Forecast` of the next ``horizon`` frames.
        """
        model = self.model
        tensor = torch.as_tensor(frame, dtype=torch.float32)
        if tensor.dim() not in (1, 2) or tensor.shape[-1] != model.features:
            shape = tuple(tensor.shape)
            raise ValueError(
                f"frame has {shape[-1] if shape else 0} features in shape {shape}; the model "
                f"takes Tensor[B, {model.features}] (or [{model.features}])"
            )
        tensor = tensor.reshape(-1, model.features)
        new = as_windows(tensor.unsqueeze(1), "frame", model.features, 1).to(self.loc.device)
        if new.shape[0] != self.loc.shape[0]:
            raise ValueError(f"frame has {new.shape[0]} series, the stream {self.loc.shape[0]}")
        added = self._next_covariates(covariates_next, new.shape[0])
        own = None  # the pushed frame's covariates, known since they were `horizon` ahead
        if self.ahead is not None and added is not None:
            own, self.ahead = self.ahead[:, :1], torch.cat([self.ahead[:, 1:], added], 1)
        with evaluating(model), torch.no_grad():
            if self.window is not None:
                self.recent = torch.cat([self.recent, new], 1)[:, -self.window :]
                if self.seen is not None and own is not None:
                    self.seen = torch.cat([self.seen, own], 1)[:, -self.window :]
                self.loc, self.state, self.top, self.last = model._encode_context(
                    self.recent, self.seen
                )
            else:
                x = model.normalizer.normalize(new, self.loc)
                out, self.state = model._encode(x, self.last, self.state, own)
                self.top, self.last = out[:, 0], x[:, 0]
        self.frames_seen += 1
        return self.forecast(seed=seed)

    def _next_covariates(
        self, covariates: Tensor | np.ndarray | None, series: int
    ) -> Tensor | None:
        """``covariates_next`` checked and standardised, ``Tensor[B, 1, K]`` (or None)."""
        channels = self.model.config.covariates
        if covariates is None and channels:
            raise ValueError(
                f"the model was built with covariates={channels}: push(frame, covariates_next="
                f"Tensor[B, {channels}]), the covariates of the frame {self.horizon} after it"
            )
        if covariates is not None:
            covariates = torch.as_tensor(covariates, dtype=torch.float32)
            if covariates.dim() not in (1, 2):
                shape = tuple(covariates.shape)
                raise ValueError(f"covariates_next must be Tensor[B, K] (or [K]), got {shape}")
            covariates = covariates.reshape(-1, 1, covariates.shape[-1])
        needs = f"the frame {self.horizon} after the pushed one"
        return self.model._covariates(covariates, series, 1, needs, name="covariates_next")

    def forecast(self, *, seed: int | None = None) -> Forecast:
        """The forecast from the frames seen so far (without pushing one)."""
        with seeded(seed, [self.loc.device]), evaluating(self.model), torch.no_grad():
            rollout = Rollout(
                self.model,
                self.loc,
                self.state,
                self.top,
                self.last,
                self.num_samples,
                refinement=self.refinement,
                feedback=self.feedback,
                covariates=self.ahead,
            )
            for h in range(self.horizon):
                rollout.step(feed_back=h + 1 < self.horizon)
            return rollout.forecast()


def _repeat(state: Any, num_samples: int) -> Any:
    """Repeats recurrent state ``[L, B, H]`` to ``[L, S * B, H]`` (row ``s * B + b``)."""
    if isinstance(state, tuple):
        return tuple(_repeat(s, num_samples) for s in state)
    return state.repeat(1, num_samples, 1)


def _rows(values: Tensor, index: Tensor) -> Tensor:
    """Rows ``index`` of per-row values ``Tensor[N, ...]`` (or ``Tensor[S, B]``, N = S x B)."""
    return values.reshape(index.shape[0], -1)[index].reshape(values.shape)


def _take(state: Any, index: Tensor) -> Any:
    """Rows ``index`` of a recurrent state ``[L, N, H]`` (or an LSTM's pair of them)."""
    if isinstance(state, tuple):
        return tuple(_take(s, index) for s in state)
    return state[:, index]
