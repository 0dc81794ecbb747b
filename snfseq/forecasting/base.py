"""What every forecaster of :mod:`snfseq.forecasting` shares: input handling, features,
``fit``/``predict``/``backtest`` (:mod:`~snfseq.forecasting.backtesting`) and checkpoints
(:mod:`~snfseq.forecasting.persistence`).

A forecaster implements three methods on plain arrays: ``_fit`` (one history ``[T, D]`` and its
features ``[T, K]``), ``_sample`` (a batch of histories, each with its features over the history
and the ``H`` future steps, to ``Tensor[S, B, H, D]`` samples) and, when it has parameters,
``_modules``. This class turns user data into those arrays and the samples into a
:class:`~snfseq.forecasting.Prediction`.

Example:
    >>> import numpy as np
    >>> from snfseq.forecasting import RandomWalkForecaster
    >>> forecaster = RandomWalkForecaster(prediction_length=3).fit(np.arange(20.0))
    >>> forecaster.predict(np.arange(20.0), num_samples=5, seed=0).samples.shape
    torch.Size([5, 1, 3, 1])
"""

from __future__ import annotations

__all__ = ["Forecaster"]

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from snfseq import checkpoint
from snfseq.forecasting.backtesting import rolling_backtest
from snfseq.forecasting.covariates import Features
from snfseq.forecasting.frequency import Freq, future_index
from snfseq.forecasting.inputs import History, LongFormat, check_length, prepare, to_wide
from snfseq.forecasting.persistence import fitted_state, restore_fitted
from snfseq.forecasting.result import Prediction
from snfseq.forecasting.scaling import Scaling, check_scaling, history_scale
from snfseq.validation import is_count

if TYPE_CHECKING:
    from typing_extensions import Self


class Forecaster:
    """Base class: ``fit``, ``predict``, ``backtest``, ``save``/``load`` on pandas/xarray data.

    Args:
        prediction_length: Steps to forecast ``H`` (>= 1).
        context_length: Past steps a forecast conditions on (None: all of the history given, for
            forecasters that can use any length).
        freq: Frequency of the timestamps (pandas alias); inferred from the data when None.
        scaling: Per-series scale of each window's context (:mod:`~snfseq.forecasting.scaling`).
        calendar: Use calendar features of the timestamps, where the forecaster takes features.
        max_gap: Longest run of missing values filled by interpolation (see
            :mod:`~snfseq.forecasting.inputs`).
        id_column: The column of the series' names, in long data.
        time_column: The column of the timestamps, in long data.
        value_column: The column of the values, in long data.

    Example:
        >>> Forecaster(prediction_length=0, context_length=4)
        Traceback (most recent call last):
        ...
        ValueError: prediction_length must be an integer >= 1, got 0
    """

    #: Whether the forecaster feeds features (calendar, covariates) to its model.
    takes_features: bool = False

    def __init__(
        self,
        prediction_length: int,
        context_length: int | None,
        freq: Freq = None,
        *,
        scaling: Scaling = "mean_abs",
        calendar: bool = True,
        max_gap: int = 2,
        id_column: str = "id",
        time_column: str = "timestamp",
        value_column: str = "value",
    ) -> None:
        # The settings as given: clone() and checkpoints rebuild the forecaster from them.
        self._params: dict[str, Any] = {k: v for k, v in locals().items() if k != "self"}
        for label, value in (
            ("prediction_length", prediction_length),
            ("context_length", context_length),
        ):
            if value is not None and not is_count(value):
                raise ValueError(f"{label} must be an integer >= 1, got {value!r}")
        self.prediction_length = int(prediction_length)
        self.context_length = None if context_length is None else int(context_length)
        self.freq = freq
        self.scaling = check_scaling(scaling)
        self.calendar = bool(calendar)
        self.max_gap = max_gap
        self.long_format = LongFormat(id_column, time_column, value_column)
        self.columns_: list[Any] | None = None
        self.freq_: Freq = None
        self.series_scale_ = np.ones(0)
        self.features_ = Features()

    # ------------------------------------------------------------------ what subclasses define

    def variant(self, **options: Any) -> str:
        """How this forecaster samples with these ``predict`` options, for titles."""
        return ""

    def min_history(self, fitting: bool) -> tuple[int, str]:
        """Fewest timestamps a fit (or a prediction) needs, and what needs them."""
        if fitting:
            needed = (self.context_length or 1) + self.prediction_length
            return needed, f"training (context_length + prediction_length = {needed})"
        return self.context_length or 1, f"a context of context_length={self.context_length}"

    def _fit(self, history: History, features: np.ndarray | None, **options: Any) -> None:
        """Trains on ``history`` and its features ``Array[T, K]`` (None without features).

        Each forecaster takes its own keyword options (and refuses others), so subclasses
        narrow this signature and ``_sample``'s.
        """
        raise NotImplementedError

    def _sample(
        self,
        histories: list[np.ndarray],
        features: list[np.ndarray] | None,
        num_samples: int,
        seed: int | None,
        **options: Any,
    ) -> tuple[Tensor, Tensor | None]:
        """Samples ``Tensor[S, B, H, D]`` (and path log-weights ``Tensor[S, B]`` or None) of
        the ``B`` histories ``Array[T_b, D]``, each with its features ``Array[T_b + H, K]``."""
        raise NotImplementedError

    def _modules(self) -> dict[str, nn.Module]:
        return {}

    def _extra(self) -> dict[str, Any]:
        return {}

    def _restore(self, state: dict[str, Tensor], extra: dict[str, Any]) -> None:
        """Rebuilds the modules from :meth:`_extra` before their weights are loaded."""

    # ------------------------------------------------------------------ input handling

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`load`) has run."""
        return self.columns_ is not None

    def _check_fitted(self) -> list[Any]:
        if self.columns_ is None:
            raise RuntimeError(f"this {type(self).__name__} is not fitted: call fit() first")
        return self.columns_

    def clone(self) -> Self:
        """A new, unfitted forecaster with the same settings."""
        return type(self)(**self._params)

    def _history(self, data: Any, name: str = "data") -> History:
        frame = to_wide(data, self.long_format, name)
        freq = self.freq
        if self.columns_ is not None:
            timestamped = isinstance(frame.index, pd.DatetimeIndex | pd.PeriodIndex)
            # Input without timestamps (an array) keeps integer steps, and its own freq.
            freq = self.freq_ if timestamped == isinstance(self.freq_, str) else None
        history = prepare(frame, freq, max_gap=self.max_gap, long=self.long_format, name=name)
        if self.columns_ is None:
            return history
        columns, fitted = history.columns, self.columns_
        if set(columns) == set(fitted):
            history.frame = history.frame[fitted]
        elif not isinstance(data, pd.DataFrame | pd.Series) and columns == list(range(len(fitted))):
            history.frame.columns = fitted  # an unlabelled array: the fitted series, in order
        else:
            unknown = [c for c in columns if c not in fitted]
            if unknown:
                raise ValueError(f"column {unknown[0]!r} of {name} was not in the training data")
            missing = [c for c in fitted if c not in columns]
            raise ValueError(f"{name} lacks column {missing[0]!r} that the forecaster was fit on")
        return history

    def _features(self, history: History, covariates: Any, horizon: int) -> np.ndarray | None:
        if covariates is not None and not self.takes_features:
            raise self._no_covariates()
        return self.features_.build(history, covariates, horizon, self.long_format)

    def _no_covariates(self) -> Exception:
        return ValueError(f"{type(self).__name__} takes no covariates")

    # ------------------------------------------------------------------ the API

    def fit(self, data: Any, covariates: Any = None, **options: Any) -> Self:
        """Trains on a history (any format of :mod:`~snfseq.forecasting.inputs`).

        Args:
            data: The series, modelled jointly.
            covariates: Known covariates on (at least) the same timestamps, any format.
            **options: Training options of the forecaster (``epochs``, ``seed``...).

        Returns:
            The forecaster, fitted.

        Example:
            >>> import numpy as np
            >>> from snfseq.forecasting import RandomWalkForecaster
            >>> walk = RandomWalkForecaster(prediction_length=2)
            >>> walk.is_fitted, walk.fit(np.arange(10.0)).is_fitted, walk.columns_
            (False, True, [0])
        """
        for attribute, value in self.clone().__dict__.items():  # forget an earlier fit
            if attribute.endswith("_") and not attribute.startswith("_"):
                setattr(self, attribute, value)
        history = self._history(data)
        check_length(history, *self.min_history(fitting=True))
        for column in history.columns:
            values = history.frame[column].to_numpy()
            if np.all(values == values[0]):
                raise ValueError(
                    f"column {column!r} of data is constant ({values[0]:g}); a constant series "
                    "cannot be scaled or modelled"
                )
        if covariates is not None and not self.takes_features:
            raise self._no_covariates()
        calendar = self.calendar and self.takes_features
        self.features_, features = Features.fit(history, covariates, calendar, self.long_format)
        self.series_scale_ = history_scale(history.values, self.scaling)
        self._fit(history, features, **options)
        self.freq_ = history.freq
        self.columns_ = history.columns
        return self

    def _prediction(
        self, history: History, samples: Tensor, log_weights: Tensor | None, variant: str
    ) -> Prediction:
        index = future_index(history.frame.index, history.freq, self.prediction_length)
        context = history.frame.iloc[-(self.context_length or len(history.frame)) :]
        return Prediction(
            samples,
            index,
            history.columns,
            log_weights,
            model=type(self).__name__,
            variant=variant,
            context=context,
            long_format=self.long_format,
        )

    def predict(
        self,
        data: Any,
        covariates: Any = None,
        num_samples: int = 100,
        *,
        seed: int | None = None,
        **options: Any,
    ) -> Prediction:
        """Forecasts the ``prediction_length`` steps after the end of ``data``.

        Args:
            data: The history, with the fitted series (more timestamps than the context are
                fine: the forecast starts from the last ones).
            covariates: The fitted covariates over the context and the forecast steps.
            num_samples: Sample paths ``S``.
            seed: Makes the samples reproducible.
            **options: Sampling options of the forecaster.

        Returns:
            A :class:`~snfseq.forecasting.Prediction` with ``samples: Tensor[S, 1, H, D]``.

        Example:
            >>> import pandas as pd
            >>> from snfseq.forecasting import SeasonalNaiveForecaster
            >>> data = pd.Series([1.0, 2.0, 1.5, 2.5, 2.0, 3.0], name="y",
            ...                  index=pd.date_range("2001-01-01", periods=6, freq="MS"))
            >>> naive = SeasonalNaiveForecaster(prediction_length=2, season_length=2).fit(data)
            >>> naive.predict(data, num_samples=10, seed=0).median()
                          y
            2001-07-01  2.5
            2001-08-01  3.5
        """
        return self._predict([data], [covariates], ["data"], num_samples, seed, options)[0]

    def predict_batch(
        self,
        histories: Sequence[Any],
        covariates: Sequence[Any] | None = None,
        num_samples: int = 100,
        *,
        seed: int | None = None,
        **options: Any,
    ) -> list[Prediction]:
        """Forecasts after each of several histories of the fitted series in one batched call
        (``B`` histories sample as ``Tensor[S, B, H, D]`` at once, far faster than ``B`` calls
        of :meth:`predict`).

        Args:
            histories: The histories, each any accepted format; their lengths and end times
                may differ.
            covariates: One covariate table per history (forecasters that take them).
            num_samples: Sample paths ``S`` of each.
            seed: Makes the samples reproducible.
            **options: Sampling options of the forecaster (``refinement``...).

        Returns:
            One :class:`~snfseq.forecasting.Prediction` per history, in order.

        Example:
            >>> import numpy as np, pandas as pd
            >>> from snfseq.forecasting import RandomWalkForecaster
            >>> data = pd.Series(np.arange(30.0), name="y",
            ...                  index=pd.date_range("2020-01-01", periods=30, freq="D"))
            >>> walk = RandomWalkForecaster(2).fit(data)
            >>> [str(p.index[0].date()) for p in walk.predict_batch([data[:10], data], seed=0)]
            ['2020-01-11', '2020-01-31']
        """
        if isinstance(histories, str) or not isinstance(histories, Sequence) or not histories:
            raise ValueError("histories must be a non-empty list of histories")
        if covariates is not None and len(covariates) != len(histories):
            raise ValueError(
                f"covariates must give one table per history: {len(covariates)} for "
                f"{len(histories)} histories"
            )
        names = [f"histories[{b}]" for b in range(len(histories))]
        tables = [None] * len(histories) if covariates is None else list(covariates)
        return self._predict(histories, tables, names, num_samples, seed, options)

    def _predict(
        self,
        histories: Sequence[Any],
        covariates: Sequence[Any],
        names: list[str],
        num_samples: int,
        seed: int | None,
        options: dict[str, Any],
    ) -> list[Prediction]:
        """:meth:`predict_batch`, with the names of the histories for errors."""
        self._check_fitted()
        if int(num_samples) != num_samples or num_samples < 1:
            raise ValueError(f"num_samples must be an integer >= 1, got {num_samples}")
        parsed = [self._history(data, name) for data, name in zip(histories, names, strict=True)]
        features = []
        for history, table, name in zip(parsed, covariates, names, strict=True):
            check_length(history, *self.min_history(fitting=False), name=name)
            features.append(self._features(history, table, self.prediction_length))
        samples, log_weights = self._sample(
            [history.values for history in parsed],
            None if features[0] is None else features,  # type: ignore[arg-type]
            int(num_samples),
            seed,
            **options,
        )
        variant = self.variant(**options)
        return [
            self._prediction(
                history,
                samples[:, b : b + 1],
                None if log_weights is None else log_weights[:, b : b + 1],
                variant,
            )
            for b, history in enumerate(parsed)
        ]

    def backtest(
        self,
        data: Any,
        covariates: Any = None,
        *,
        windows: int = 5,
        stride: int | None = None,
        refit: bool = False,
        use_fitted: bool = False,
        num_samples: int = 100,
        seed: int | None = 0,
        fit_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> pd.DataFrame:
        """Scores rolling-origin forecasts (see :mod:`~snfseq.forecasting.backtesting`).

        Args:
            data: The whole history, any accepted format.
            covariates: Covariates over the whole history, for forecasters that take them.
            windows: Number of forecast origins, the last ending at the end of ``data``.
            stride: Steps between origins (default ``prediction_length``: windows that tile).
            refit: Retrain (a copy) before every window instead of once before the first.
            use_fitted: Score this forecaster as trained, without training a copy.
            num_samples: Sample paths per forecast.
            seed: Seeds training and sampling.
            fit_options: Options of :meth:`fit` (``epochs``, ``progress``...).
            **options: Options of :meth:`predict` (``refinement``...).

        Returns:
            The tidy table of :func:`~snfseq.forecasting.backtesting.score_windows`; this
            forecaster is left as it was.

        Example:
            >>> import numpy as np
            >>> from snfseq.forecasting import RandomWalkForecaster
            >>> data = np.random.default_rng(0).normal(size=(30, 2)).cumsum(0)
            >>> table = RandomWalkForecaster(3).backtest(data, windows=4, num_samples=20)
            >>> int(table.groupby("metric").size()["crps"]), table["window"].unique().tolist()
            (24, [0, 1, 2, 3])
        """
        settings: dict[str, Any] = {"windows": windows, "stride": stride, "refit": refit}
        settings |= {"use_fitted": use_fitted, "num_samples": num_samples, "seed": seed}
        settings["fit_options"] = fit_options
        return rolling_backtest(self, data, covariates, options=options, **settings)

    # ------------------------------------------------------------------ checkpoints

    @classmethod
    def _kind(cls) -> str:
        return f"snfseq.forecasting.{cls.__name__}"

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes settings, series and covariate names, frequency, scales and weights to one
        checkpoint file, atomically (:mod:`snfseq.checkpoint`).

        Example:
            >>> import tempfile, numpy as np, pandas as pd
            >>> from pathlib import Path
            >>> from snfseq.forecasting import RandomWalkForecaster
            >>> data = pd.DataFrame({"a": np.arange(8.0) ** 2})
            >>> walk = RandomWalkForecaster(2, drift=True).fit(data)
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     loaded = RandomWalkForecaster.load(walk.save(Path(tmp) / "walk.pt"))
            >>> loaded.columns_, loaded.drift, loaded.predict(data, seed=0).samples.equal(
            ...     walk.predict(data, seed=0).samples)
            (['a'], True, True)
        """
        state, fitted = fitted_state(self)
        return checkpoint.write(path, self._kind(), self._params, state, {"fitted": fitted})

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], map_location: str | torch.device | None = None
    ) -> Self:
        """Reads a checkpoint written by :meth:`save` (``torch.load(weights_only=True)``)."""
        params, state, extra = checkpoint.read_all(path, cls._kind(), map_location)
        if not isinstance(extra.get("fitted"), dict):
            raise ValueError(f"{path} is damaged: it lacks the fitted state of the forecaster")
        forecaster = cls(**params)
        restore_fitted(forecaster, state, extra["fitted"], path, map_location)
        return forecaster
