"""`FlowForecaster`: :class:`~snfseq.SequenceFlow` (GRU-NF, GRU-SNF with a refinement) on
pandas/xarray series, all series modelled jointly.

Training cuts the history into every window of ``context_length + prediction_length`` steps
(built a batch at a time, :class:`snfseq.windows.Windows`, so that long histories of many
series fit in memory), divides each window by the scale of its own context (``scaling``) and
trains the flow by likelihood; a prediction divides the last ``context_length`` steps by
theirs, samples the flow and multiplies back. Calendar features of the timestamps and user
covariates known over the horizon condition the encoder and the flow (they are not
forecast). One series takes a spline autoregressive flow (:meth:`FlowForecaster.flow_options`).

Example:
    >>> import numpy as np, pandas as pd
    >>> index = pd.date_range("2020-01-01", periods=60, freq="D")
    >>> data = pd.DataFrame(np.random.default_rng(0).normal(size=(60, 2)).cumsum(0) + 20,
    ...                     index=index, columns=["north", "south"])
    >>> forecaster = FlowForecaster(prediction_length=3, context_length=8, hidden=8, layers=1,
    ...                             transforms=2, flow_hidden=(8,))
    >>> _ = forecaster.fit(data, epochs=1, progress=False, seed=0)
    >>> prediction = forecaster.predict(data, num_samples=20, seed=0)
    >>> prediction.samples.shape, str(prediction.index[0].date())
    (torch.Size([20, 1, 3, 2]), '2020-03-01')
"""

from __future__ import annotations

__all__ = ["FLOW_DEFAULTS", "FlowForecaster"]

from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from snfseq.config import SequenceFlowConfig
from snfseq.forecasting.base import Forecaster
from snfseq.forecasting.frequency import Freq
from snfseq.forecasting.inputs import History
from snfseq.forecasting.scaling import ContextScaling, Scaling, context_scale
from snfseq.model import SequenceFlow
from snfseq.runtime import seeded
from snfseq.windows import Windows

if TYPE_CHECKING:
    from typing_extensions import Self

    from snfseq.forecasting.result import Prediction
    from snfseq.snf import Refinement

#: SequenceFlow hyperparameters of a FlowForecaster unless given: TempFlow's sizes (2 GRU
#: layers of 40 units, 3 coupling layers of 100 units), far below SequenceFlow's own defaults,
#: which are sized for hundreds of keypoint features.
FLOW_DEFAULTS: dict[str, Any] = {
    "hidden": 40,
    "layers": 2,
    "dropout": 0.1,
    "condition_size": 40,
    "transforms": 3,
    "flow_hidden": (100, 100),
}


class FlowForecaster(Forecaster):
    """GRU-NF / GRU-SNF forecaster of jointly modelled series (one series takes a spline
    autoregressive flow, see :meth:`flow_options`).

    Args:
        prediction_length: Steps to forecast ``H``.
        context_length: Steps each forecast conditions on (>= the model's ``min_context``, 2).
        freq: Frequency alias; inferred from the timestamps when None.
        scaling: ``"mean_abs"`` (default), ``"std"`` or None: see
            :mod:`snfseq.forecasting.scaling` for why the default divides by a context scale.
        calendar: Condition on calendar features (only where the model takes covariates).
        max_gap: Longest run of missing values filled by interpolation.
        id_column: The column of the series' names, in long data.
        time_column: The column of the timestamps, in long data.
        value_column: The column of the values, in long data.
        **model_options: :class:`~snfseq.config.SequenceFlowConfig` fields (``hidden``,
            ``layers``, ``flow``, ``transforms``, ``flow_hidden``, ``residual``...), over
            :data:`FLOW_DEFAULTS`; ``features`` comes from the data.

    Example:
        >>> FlowForecaster(prediction_length=4, context_length=16, hiden=8)
        Traceback (most recent call last):
        ...
        TypeError: unknown SequenceFlow options ['hiden']; see SequenceFlowConfig
    """

    def __init__(
        self,
        prediction_length: int,
        context_length: int,
        freq: Freq = None,
        *,
        scaling: Scaling = "mean_abs",
        calendar: bool = True,
        max_gap: int = 2,
        id_column: str = "id",
        time_column: str = "timestamp",
        value_column: str = "value",
        **model_options: Any,
    ) -> None:
        if context_length is None:
            raise ValueError("context_length must be an integer >= 2, got None")
        super().__init__(
            prediction_length,
            context_length,
            freq,
            scaling=scaling,
            calendar=calendar,
            max_gap=max_gap,
            id_column=id_column,
            time_column=time_column,
            value_column=value_column,
        )
        known = {f.name for f in fields(SequenceFlowConfig)} - {"features", "covariates"}
        unknown = sorted(set(model_options) - known)
        if unknown:
            raise TypeError(f"unknown SequenceFlow options {unknown}; see SequenceFlowConfig")
        self.model_options = FLOW_DEFAULTS | model_options
        minimum = self.model_options.get("min_context", 2)
        if context_length < minimum:
            raise ValueError(
                f"context_length must be >= min_context={minimum}, got {context_length}"
            )
        self._params |= model_options
        self.model_: SequenceFlow | None = None

    #: Calendar features and covariates condition the encoder and the flow.
    takes_features = True

    def flow_options(self, series: int) -> dict[str, Any]:
        """The SequenceFlow options for ``series`` jointly modelled series: the given ones over
        :data:`FLOW_DEFAULTS`; one series takes the spline autoregressive flow (``"nsf"``)
        unless a flow was chosen, since coupling flows split the features in two.

        Example:
            >>> f = FlowForecaster(prediction_length=2, context_length=4)
            >>> f.flow_options(1)["flow"], f.flow_options(3).get("flow", "realnvp")
            ('nsf', 'realnvp')
        """
        if series == 1 and "flow" not in self._params:
            return self.model_options | {"flow": "nsf"}
        return self.model_options

    def variant(self, **options: Any) -> str:
        """``"GRU-NF"``, or ``"GRU-SNF (<kernel>)"`` with a refinement.

        Example:
            >>> from snfseq import Refinement
            >>> f = FlowForecaster(prediction_length=2, context_length=4)
            >>> f.variant(), f.variant(refinement=Refinement.paper())
            ('GRU-NF', 'GRU-SNF (rwm)')
        """
        refinement = options.get("refinement")
        name = "GRU-NF" if refinement is None else f"GRU-SNF ({refinement.kernel})"
        return name + (", mean feedback" if options.get("feedback") == "mean" else "")

    def fit(
        self,
        data: Any,
        covariates: Any = None,
        *,
        epochs: int = 50,
        progress: bool = True,
        seed: int | None = None,
        **options: Any,
    ) -> Self:
        """Trains the flow on every window of ``context_length + prediction_length`` steps.

        Args:
            data: The series (at least 2), any format of :mod:`~snfseq.forecasting.inputs`.
            covariates: Known covariates on the same timestamps (only with a SequenceFlow that
                takes them; see the module).
            epochs: Most training epochs (early stopping on the last 10% of the windows).
            progress: Show a progress bar.
            seed: Seeds the initial weights and the training.
            **options: :meth:`snfseq.SequenceFlow.fit` options (``batch_size``, ``lr``,
                ``val_fraction``, ``patience``, ``device``...).

        Returns:
            The forecaster, fitted (its model in ``model_``, its training record in
            ``fit_history_``).
        """
        return super().fit(data, covariates, epochs=epochs, progress=progress, seed=seed, **options)

    def predict(  # type: ignore[override]
        self,
        data: Any,
        covariates: Any = None,
        num_samples: int = 100,
        refinement: Refinement | None = None,
        *,
        seed: int | None = None,
        feedback: str = "sample",
    ) -> Prediction:
        """Samples ``num_samples`` paths of the ``prediction_length`` steps after ``data``.

        Args:
            data: The history; its last ``context_length`` steps condition the forecast.
            covariates: The fitted covariates over those steps and the forecast steps.
            num_samples: Sample paths ``S``.
            refinement: A :class:`snfseq.Refinement` (GRU-SNF); None samples the flow (GRU-NF).
            seed: Makes the samples reproducible.
            feedback: ``"sample"`` or ``"mean"``, as in :meth:`snfseq.SequenceFlow.forecast`.

        Returns:
            A :class:`~snfseq.forecasting.Prediction` (with weights after a refinement that
            leaves them).
        """
        return super().predict(
            data, covariates, num_samples, seed=seed, refinement=refinement, feedback=feedback
        )

    def _fit(
        self,
        history: History,
        features: np.ndarray | None,
        *,
        epochs: int = 50,
        progress: bool = True,
        seed: int | None = None,
        **options: Any,
    ) -> None:
        """Trains on every window; ``options`` go to :meth:`snfseq.SequenceFlow.fit`
        (``batch_size``, ``lr``, ``val_fraction``, ``patience``, ``device``...)."""
        values = history.values
        assert self.context_length is not None
        context, length = self.context_length, self.context_length + self.prediction_length
        # The windows are built a batch at a time (snfseq.windows): a long history of many
        # series is kept once, not once per window.
        series, width = values.shape[1], 0 if features is None else features.shape[1]
        channels = torch.empty(values.shape[0], series + width)
        channels.numpy()[:, :series] = values
        if features is not None:
            channels.numpy()[:, series:] = features
        scaler = ContextScaling(context, series, self.scaling, self.series_scale_)
        windows = Windows(channels, length, None, scaler)
        config = {} if features is None else {"covariates": features.shape[1]}
        with seeded(seed):
            model = SequenceFlow(features=series, **(self.flow_options(series) | config))
            self.fit_history_ = model.fit(
                windows, context=context, epochs=epochs, progress=progress, seed=seed, **options
            )
        self.model_ = model

    def _sample(  # type: ignore[override]
        self,
        histories: list[np.ndarray],
        features: list[np.ndarray] | None,
        num_samples: int,
        seed: int | None,
        refinement: Refinement | None = None,
        feedback: str = "sample",
    ) -> tuple[Tensor, Tensor | None]:
        """Samples ``Tensor[S, B, H, D]`` from the last ``context_length`` steps of each history;
        ``refinement`` and ``feedback`` as in :meth:`snfseq.SequenceFlow.forecast`."""
        assert self.model_ is not None and self.context_length is not None
        context, horizon = self.context_length, self.prediction_length
        contexts = np.stack([history[-context:] for history in histories])
        scale = context_scale(contexts, self.scaling, self.series_scale_)
        extra: dict[str, Any] = {}
        if features is not None:
            window = np.stack([f[-(context + horizon) :] for f in features])
            extra["covariates"] = torch.as_tensor(window, dtype=torch.float32)
        forecast = self.model_.forecast(
            torch.as_tensor(contexts / scale[:, None], dtype=torch.float32),
            horizon,
            num_samples,
            refinement,
            feedback=feedback,  # type: ignore[arg-type]
            seed=seed,
            **extra,
        )
        samples = forecast.samples.detach().cpu().double() * torch.from_numpy(scale)[:, None]
        log_weights = forecast.log_weights
        return samples.float(), None if log_weights is None else log_weights.detach().cpu()

    def _modules(self) -> dict[str, nn.Module]:
        return {} if self.model_ is None else {"model": self.model_}

    def _extra(self) -> dict[str, Any]:
        assert self.model_ is not None
        config = asdict(self.model_.config)
        return {
            "model_config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}
        }

    def _restore(self, state: dict[str, Tensor], extra: dict[str, Any]) -> None:
        self.model_ = SequenceFlow(**extra["model_config"])
