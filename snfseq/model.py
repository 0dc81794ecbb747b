"""`SequenceFlow`: a recurrent encoder conditioning a normalizing flow on the history (GRU-NF).

For frame ``t`` the encoder state ``h_{t-1}`` (frames ``< t`` only) gives a context vector
``c_t = Linear(h_{t-1})``; the flow models ``p(x_t | c_t)`` and a point head predicts ``yhat_t``
(trained jointly, so that refinements have a trained prediction to aim at). Training maximises
the teacher-forced likelihood; forecasting samples step by step, every sample keeping its own
recurrent state (one batched recurrent call per step over ``S x B`` rows).

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

import copy
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from snfseq.version import __version__
from snfseq.flows import FLOW_KINDS, ConditionalFlow, build_flow
from snfseq.forecast import Forecast
from snfseq.normalize import ContextNormalizer

if TYPE_CHECKING:
    from snfseq.snf import Refinement

CHECKPOINT_FORMAT = "snfseq.SequenceFlow"
CHECKPOINT_VERSION = 1
_LOG_2PI = math.log(2 * math.pi)


@dataclass
class SequenceFlowConfig:
    """Everything needed to rebuild a :class:`SequenceFlow` (saved in checkpoints)."""

    features: int
    hidden: int = 512
    layers: int = 3
    dropout: float = 0.2
    cell: str = "gru"
    context_size: int = 64
    flow: str = "realnvp"
    transforms: int = 5
    flow_hidden: tuple[int, ...] = (512, 512, 512)
    residual: bool = True
    point_weight: float = 1.0
    min_context: int = 2
    encoder_input: str = "frames+deltas"


@dataclass
class FitHistory:
    """Per-epoch training record returned by :meth:`SequenceFlow.fit`.

    ``val_nll`` is the validation negative log-likelihood per feature and frame, in data units.
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_nll: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False

    def to_pandas(self) -> Any:
        """The history as a ``pandas.DataFrame`` indexed by epoch."""
        import pandas as pd

        columns = {"train_loss": self.train_loss, "lr": self.lr}
        if self.val_loss:
            columns |= {"val_loss": self.val_loss, "val_nll": self.val_nll}
        return pd.DataFrame(columns).rename_axis("epoch")


class SequenceFlow(nn.Module):
    """Recurrent encoder + conditional flow + point head (GRU-NF).

    Arguments:
        features: Features per frame ``D`` (e.g. keypoints x coordinates).
        hidden: Recurrent hidden size.
        layers: Recurrent layers.
        dropout: Dropout between recurrent layers (training only).
        cell: ``"gru"`` or ``"lstm"``.
        context_size: Size of the context vector ``c_t`` fed to every flow layer.
        flow: Flow kind, one of :data:`snfseq.flows.FLOW_KINDS` (``"realnvp"`` default).
        transforms: Number of flow layers.
        flow_hidden: Hidden widths of each flow layer's conditioner.
        residual: Model frame-to-frame changes (``x_t - x_{t-1}``) rather than frames.
        point_weight: Weight of the point head's squared error in the training loss.
        min_context: Fewest context frames a forecast accepts.
        encoder_input: ``"frames+deltas"`` feeds the encoder each normalised frame and its
            standardised change from the previous frame; ``"frames"`` feeds frames only (as
            published). Deltas are close to stationary where positions are not, which keeps
            the encoder in its trained range during large movements.
    """

    def __init__(
        self,
        features: int,
        hidden: int = 512,
        layers: int = 3,
        dropout: float = 0.2,
        cell: Literal["gru", "lstm"] = "gru",
        context_size: int = 64,
        flow: str = "realnvp",
        transforms: int = 5,
        flow_hidden: Sequence[int] = (512, 512, 512),
        residual: bool = True,
        point_weight: float = 1.0,
        min_context: int = 2,
        encoder_input: Literal["frames", "frames+deltas"] = "frames+deltas",
    ) -> None:
        super().__init__()
        if features < 2:
            raise ValueError(f"features must be >= 2, got {features}")
        if cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', got {cell!r}")
        if flow not in FLOW_KINDS:
            raise ValueError(f"unknown flow {flow!r}; expected one of {FLOW_KINDS}")
        if min_context < 1:
            raise ValueError(f"min_context must be >= 1, got {min_context}")
        if encoder_input not in ("frames", "frames+deltas"):
            raise ValueError(
                f"encoder_input must be 'frames' or 'frames+deltas', got {encoder_input!r}"
            )
        self.config = SequenceFlowConfig(
            features=features,
            hidden=hidden,
            layers=layers,
            dropout=dropout,
            cell=cell,
            context_size=context_size,
            flow=flow,
            transforms=transforms,
            flow_hidden=tuple(int(h) for h in flow_hidden),
            residual=residual,
            point_weight=point_weight,
            min_context=min_context,
            encoder_input=encoder_input,
        )
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        inputs = 2 * features if encoder_input == "frames+deltas" else features
        self.encoder = rnn(
            inputs, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        self.condition = nn.Sequential(nn.Linear(hidden, context_size), nn.Tanh())
        self.flow: ConditionalFlow = build_flow(
            flow, features, context_size, transforms=transforms, hidden=self.config.flow_hidden
        )
        self.point_head = nn.Linear(hidden, features)
        self.normalizer = ContextNormalizer(features)

    @property
    def features(self) -> int:
        return self.config.features

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ------------------------------------------------------------------ validation

    def _as_windows(self, x: Tensor | np.ndarray, name: str, min_frames: int) -> Tensor:
        tensor = torch.as_tensor(x, dtype=torch.float32)
        if tensor.dim() == 2:
            tensor = tensor.unsqueeze(0)
        if tensor.dim() != 3:
            raise ValueError(
                f"{name} must be Tensor[B, T, D] (or [T, D]), got shape {tuple(tensor.shape)}"
            )
        if tensor.shape[-1] != self.features:
            raise ValueError(
                f"{name} has {tensor.shape[-1]} features but the model was built for "
                f"{self.features}"
            )
        if tensor.shape[0] == 0:
            raise ValueError(f"{name} is empty (no series)")
        if tensor.shape[1] < min_frames:
            raise ValueError(
                f"{name} has {tensor.shape[1]} frames; at least {min_frames} are needed"
            )
        bad = ~torch.isfinite(tensor)
        if bool(bad.any()):
            series, frame, feature = (int(i) for i in bad.nonzero()[0])
            raise ValueError(
                f"{name} contains NaN or inf (first at series {series}, frame {frame}, "
                f"feature {feature}); fill or drop missing frames first"
            )
        return tensor.to(self.device)

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

    # ------------------------------------------------------------------ flow space

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

        Arguments:
            windows: ``Tensor[N, T, D]`` in data units.
            context: Frames that condition the rest (they also set the normalisation).

        Returns:
            ``Tensor[N]``: mean NLL per feature and horizon frame of each window.
        """
        windows = self._as_windows(windows, "windows", context + 1)
        was_training = self.training
        self.eval()
        with torch.no_grad():
            log_prob, _ = self._teacher_forced(windows, context)
        self.train(was_training)
        horizon_log_prob = log_prob[:, context - 1 :] - self._flow_log_jacobian()
        return -horizon_log_prob.mean(1) / self.features

    # ------------------------------------------------------------------ training

    def fit(
        self,
        windows: Tensor | np.ndarray,
        *,
        context: int | None = None,
        epochs: int = 100,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 1e-6,
        clip_norm: float = 5.0,
        val_windows: Tensor | np.ndarray | None = None,
        val_fraction: float = 0.1,
        patience: int = 10,
        seed: int | None = 0,
        device: str | torch.device | None = None,
        progress: bool = True,
    ) -> FitHistory:
        """Trains by teacher-forced likelihood with Adam, a one-cycle schedule and early stopping.

        Arguments:
            windows: Training windows ``Tensor[N, T, D]`` in data units.
            context: Frames of each window that set its normalisation (as at forecast time);
                default ``T // 3``.
            epochs: Most epochs to run.
            batch_size: Windows per step.
            lr: Peak learning rate of the one-cycle schedule.
            weight_decay: Adam weight decay.
            clip_norm: Gradient-norm clip.
            val_windows: Validation windows; when None, the last ``val_fraction`` of
                ``windows`` (a contiguous block, so overlapping windows leak only at its edge).
                Split by sequence beforehand (:func:`snfseq.data.split_sequences`) for an
                honest validation set.
            val_fraction: See ``val_windows``; 0 disables validation and early stopping.
            patience: Epochs without validation improvement before stopping; the best
                weights are restored.
            seed: Seeds parameter-free randomness of training (shuffling, dropout).
            device: ``"cpu"``, ``"cuda"``...; default CUDA when available.
            progress: Show a tqdm bar.
        """
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.to(device)
        train = self._as_windows(windows, "windows", 2)
        length = train.shape[1]
        context = length // 3 if context is None else context
        if not 1 <= context < length:
            raise ValueError(f"context must be in [1, {length - 1}] for windows of {length} frames")
        if val_windows is not None:
            val = self._as_windows(val_windows, "val_windows", context + 1)
        elif val_fraction > 0 and train.shape[0] >= 10:
            cut = train.shape[0] - max(1, int(round(val_fraction * train.shape[0])))
            train, val = train[:cut], train[cut:]
        else:
            val = None
        if epochs < 1 or batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")

        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        if seed is not None:
            torch.manual_seed(seed)
        self.normalizer.fit(train.cpu(), context)
        self.normalizer.to(device)

        optimizer = torch.optim.Adam(self.parameters(), lr=lr, weight_decay=weight_decay)
        steps_per_epoch = math.ceil(train.shape[0] / batch_size)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch
        )
        history = FitHistory()
        best_state: dict[str, Tensor] | None = None
        best = math.inf
        stale = 0
        bar = tqdm(range(epochs), desc="fit", disable=not progress, unit="epoch")
        for epoch in bar:
            self.train()
            order = torch.randperm(train.shape[0], generator=generator).to(train.device)
            total = 0.0
            for start in range(0, train.shape[0], batch_size):
                batch = train[order[start : start + batch_size]]
                log_prob, point_error = self._teacher_forced(batch, context)
                loss = -log_prob.mean() / self.features
                loss = loss + self.config.point_weight * point_error.mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.parameters(), clip_norm)
                optimizer.step()
                scheduler.step()
                total += float(loss.detach()) * batch.shape[0]
            history.train_loss.append(total / train.shape[0])
            history.lr.append(float(scheduler.get_last_lr()[0]))
            postfix = {"loss": f"{history.train_loss[-1]:.3f}"}
            if val is not None:
                self.eval()
                with torch.no_grad():
                    log_prob, point_error = self._teacher_forced(val, context)
                    val_loss = float(
                        -log_prob.mean() / self.features
                        + self.config.point_weight * point_error.mean()
                    )
                val_nll = float(self.nll(val, context).mean())
                history.val_loss.append(val_loss)
                history.val_nll.append(val_nll)
                postfix["val_nll"] = f"{val_nll:.3f}"
                if val_loss < best - 1e-4:
                    best, stale, history.best_epoch = val_loss, 0, epoch
                    best_state = copy.deepcopy(self.state_dict())
                else:
                    stale += 1
                    if stale >= patience:
                        history.stopped_early = True
                        bar.set_postfix(postfix)
                        break
            bar.set_postfix(postfix)
        bar.close()
        if best_state is not None:
            self.load_state_dict(best_state)
        self.eval()
        return history

    # ------------------------------------------------------------------ forecasting

    def _expand_state(self, state: Any, num_samples: int) -> Any:
        """Repeats recurrent state ``[L, B, H]`` to ``[L, S * B, H]`` (row ``s * B + b``)."""
        if isinstance(state, tuple):
            return tuple(self._expand_state(s, num_samples) for s in state)
        layers, batch, hidden = state.shape
        return (
            state.unsqueeze(1)
            .expand(layers, num_samples, batch, hidden)
            .reshape(layers, num_samples * batch, hidden)
        )

    def forecast(
        self,
        context: Tensor | np.ndarray,
        horizon: int,
        num_samples: int = 100,
        refinement: Refinement | None = None,
        *,
        seed: int | None = None,
        record_trace: bool = False,
        feature_names: Sequence[str] | None = None,
    ) -> Forecast:
        """Samples ``num_samples`` future trajectories of each series.

        Arguments:
            context: Observed frames ``Tensor[B, T, D]`` (or ``[T, D]``) in data units.
            horizon: Frames to forecast ``H``.
            num_samples: Sample paths ``S`` per series.
            refinement: A :class:`snfseq.Refinement` to run MCMC between flow layers (GRU-SNF);
                None samples the flow alone (GRU-NF).
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
        if not bool(self.normalizer.fitted):
            raise RuntimeError("the model is not trained: call fit() or load a checkpoint")
        observed = self._as_windows(context, "context", self.config.min_context)
        devices = [observed.device] if observed.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            return self._forecast(
                observed, horizon, num_samples, refinement, record_trace, feature_names
            )

    @torch.no_grad()
    def _forecast(
        self,
        observed: Tensor,
        horizon: int,
        num_samples: int,
        refinement: Refinement | None,
        record_trace: bool,
        feature_names: Sequence[str] | None,
    ) -> Forecast:
        was_training = self.training
        self.eval()
        batch = observed.shape[0]
        loc = self.normalizer.location(observed)
        x = self.normalizer.normalize(observed, loc)
        out, state = self._encode(x, None)
        # feed_mean is the published procedure: one state per series, fed its sample mean.
        feed_mean = refinement is not None and refinement.feedback == "mean"
        if not feed_mean:
            state = self._expand_state(state, num_samples)
        h_top = out[:, -1].repeat(num_samples, 1)
        previous = x[:, -1].repeat(num_samples, 1)
        frames: list[Tensor] = []
        step_log_weights: list[Tensor] = []
        traces: list[Any] = []
        for _ in range(horizon):
            c = self.condition(h_top)
            z = torch.randn(num_samples * batch, self.features, device=observed.device)
            if refinement is None:
                y, _ = self.flow.sample_from(z, c)
            else:
                yhat = self.point_head(h_top)
                result = refinement.run(
                    self.flow,
                    z,
                    c,
                    yhat=yhat,
                    batch_shape=(num_samples, batch),
                    record=record_trace,
                )
                y = result.y
                step_log_weights.append(result.log_weight.reshape(num_samples, batch))
                if record_trace:
                    traces.append(result.trace)
            frame = self._from_flow_space(y, previous)
            frames.append(frame)
            if feed_mean:
                fed = frame.reshape(num_samples, batch, -1).mean(0)
                out, state = self._encode(fed.unsqueeze(1), previous[:batch], state)
                h_top = out[:, 0].repeat(num_samples, 1)
                previous = fed.repeat(num_samples, 1)
            else:
                out, state = self._encode(frame.unsqueeze(1), previous, state)
                h_top = out[:, 0]
                previous = frame
        self.train(was_training)
        paths = torch.stack(frames, 1).reshape(num_samples, batch, horizon, self.features)
        samples = self.normalizer.denormalize(paths, loc)
        log_weights = steps = None
        if step_log_weights and refinement is not None and refinement.reports_weights:
            steps = torch.stack(step_log_weights, -1)
            log_weights = steps.sum(-1)
        trace = None
        if traces:
            from snfseq.snf import Trace

            trace = Trace.stack(traces)
        return Forecast(
            samples=samples,
            log_weights=log_weights,
            step_log_weights=steps,
            trace=trace,
            feature_names=feature_names,
        )

    @torch.no_grad()
    def condition_on(self, context: Tensor | np.ndarray) -> tuple[Tensor, Tensor]:
        """Context vector and point prediction of the first forecast step.

        Arguments:
            context: Observed frames ``Tensor[B, T, D]`` (or ``[T, D]``) in data units.

        Returns:
            ``(c: Tensor[B, C], yhat: Tensor[B, D])``, both in the flow's standardised space:
            what a refinement of the first forecast frame conditions on and aims at.
        """
        observed = self._as_windows(context, "context", self.config.min_context)
        was_training = self.training
        self.eval()
        x = self.normalizer.normalize(observed, self.normalizer.location(observed))
        out, _ = self._encode(x, None)
        self.train(was_training)
        return self.condition(out[:, -1]), self.point_head(out[:, -1])

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes config, weights, normalisation and package version, atomically.

        The file is written beside ``path`` and renamed over it, so an interrupted save never
        leaves a half-written checkpoint (or destroys the previous one).
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_VERSION,
            "snfseq_version": __version__,
            "config": {
                k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.config).items()
            },
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
        }
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as file:
                torch.save(payload, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], map_location: str | torch.device | None = None
    ) -> SequenceFlow:
        """Loads a checkpoint written by :meth:`save` (``torch.load(weights_only=True)``)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint at {path}")
        try:
            payload = torch.load(path, map_location=map_location or "cpu", weights_only=True)
        except Exception as error:
            raise ValueError(
                f"{path} is not a readable snfseq checkpoint (corrupt, truncated or foreign "
                f"file): {type(error).__name__}: {str(error).splitlines()[0][:200]}"
            ) from error
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not an snfseq SequenceFlow checkpoint")
        if payload.get("format_version", 0) > CHECKPOINT_VERSION:
            raise ValueError(
                f"{path} was written by a newer snfseq ({payload.get('snfseq_version')}); "
                f"upgrade snfseq to read it"
            )
        config = dict(payload["config"])
        model = cls(**config)
        state = payload["state_dict"]
        mine = model.state_dict()
        mismatched = [
            f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
            for k, v in mine.items()
            if k in state and state[k].shape != v.shape
        ]
        missing = sorted(set(mine) - set(state))
        unexpected = sorted(set(state) - set(mine))
        if mismatched or missing or unexpected:
            details = "; ".join(
                mismatched[:3]
                + ([f"missing {missing[:3]}"] if missing else [])
                + ([f"unexpected {unexpected[:3]}"] if unexpected else [])
            )
            raise ValueError(f"{path} does not match its own config ({details})")
        model.load_state_dict(state)
        if map_location is not None:
            model.to(map_location)
        model.eval()
        return model
