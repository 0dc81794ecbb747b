"""What a model is conditioned on besides its series: calendar features of the timestamps and
user covariates, aligned with the history and the forecast steps.

User covariates come in any format :mod:`~snfseq.forecasting.inputs` reads (on the data's
frequency, without gaps: they must be known) and must cover every timestamp they are needed
for: the training history in ``fit``; the history and every forecast timestamp in
``predict``. They are standardised with the mean and spread of the training history.

Example:
    >>> import numpy as np, pandas as pd
    >>> from snfseq.forecasting.inputs import prepare
    >>> index = pd.period_range("2000Q1", periods=8, freq="Q")
    >>> history = prepare(pd.DataFrame({"y": np.arange(8.0)}, index=index))
    >>> rate = pd.DataFrame({"rate": np.arange(10.0)},
    ...                     index=pd.period_range("2000Q1", periods=10, freq="Q"))
    >>> features, values = Features.fit(history, rate, calendar=True)
    >>> features.columns, values.shape
    (['month_of_year_sin', 'month_of_year_cos', 'rate'], (8, 3))
    >>> features.build(history, rate, horizon=2).shape  # the history and 2 steps ahead
    (10, 3)
"""

from __future__ import annotations

__all__ = ["Features"]

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from snfseq.forecasting.calendar import calendar_features
from snfseq.forecasting.frequency import future_index, label
from snfseq.forecasting.inputs import History, LongFormat, prepare


@dataclass
class Features:
    """The layout of the features a forecaster was fitted with.

    Attributes:
        calendar_columns: Names of the calendar features (empty without timestamps or when
            the calendar is off).
        covariate_columns: Names of the user covariates, in order.
        mean: ``Array[K]`` training mean of each covariate.
        std: ``Array[K]`` training spread of each covariate (1 where constant).

    Example:
        >>> Features().width, Features(["hour_of_day_sin", "hour_of_day_cos"]).width
        (0, 2)
    """

    calendar_columns: list[str] = field(default_factory=list)
    covariate_columns: list[Any] = field(default_factory=list)
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    std: np.ndarray = field(default_factory=lambda: np.ones(0))

    @property
    def columns(self) -> list[Any]:
        """Calendar features, then covariates."""
        return [*self.calendar_columns, *self.covariate_columns]

    @property
    def width(self) -> int:
        """Features per timestamp ``K``."""
        return len(self.columns)

    @staticmethod
    def _known(covariates: Any, history: History, long: LongFormat | None) -> pd.DataFrame:
        return prepare(covariates, history.freq, max_gap=0, long=long, name="covariates").frame

    @classmethod
    def fit(
        cls, history: History, covariates: Any, calendar: bool, long: LongFormat | None = None
    ) -> tuple[Features, np.ndarray | None]:
        """The layout of ``history``'s features, and those features ``Array[T, K]`` (None when
        there are none)."""
        features = cls()
        if calendar and history.timestamped:
            columns = calendar_features(history.frame.index[:1], history.freq).columns
            features.calendar_columns = list(columns)
        if covariates is not None:
            known = cls._known(covariates, history, long)
            features.covariate_columns = list(known.columns)
            values = features._aligned(known, history.frame.index)
            features.mean = values.mean(0)
            spread = values.std(0)
            features.std = np.where(spread > 0, spread, 1.0)
        return features, features.build(history, covariates, 0, long)

    def _aligned(self, known: pd.DataFrame, index: pd.Index) -> np.ndarray:
        absent = index.difference(known.index)
        if len(absent):
            raise ValueError(
                f"covariates lack timestamp {label(absent[0])} (they must cover "
                f"{label(index[0])} to {label(index[-1])}, the history and every forecast step)"
            )
        return known.reindex(index).to_numpy(dtype=np.float64)

    def build(
        self, history: History, covariates: Any, horizon: int, long: LongFormat | None = None
    ) -> np.ndarray | None:
        """Features over the history and ``horizon`` steps after it: ``Array[T + horizon, K]``,
        or None when the layout has none.

        Raises:
            ValueError: When covariates are missing, have other columns, or lack a timestamp,
                or when calendar features are needed but the data has no timestamps.
        """
        index = history.frame.index
        if horizon:
            index = index.append(future_index(index, history.freq, horizon))
        if covariates is None and self.covariate_columns:
            raise ValueError(
                f"the forecaster was fit with covariates {self.covariate_columns}; pass them"
            )
        parts = []
        if self.calendar_columns:
            if not history.timestamped:
                raise ValueError(
                    "the forecaster uses calendar features, but the data has no timestamps; "
                    "pass a DataFrame or DataArray with its time index"
                )
            parts.append(calendar_features(index, history.freq).to_numpy())
        if covariates is not None:
            known = self._known(covariates, history, long)
            if list(known.columns) != self.covariate_columns:
                raise ValueError(
                    f"covariates have columns {list(known.columns)}, the forecaster was fit on "
                    f"{self.covariate_columns}"
                )
            parts.append((self._aligned(known, index) - self.mean) / self.std)
        return np.concatenate(parts, axis=1) if parts else None
