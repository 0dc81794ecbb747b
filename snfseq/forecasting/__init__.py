"""Probabilistic forecasting on pandas and xarray series: forecasters, the prediction object,
baselines and backtests.

* :mod:`~snfseq.forecasting.inputs`: the accepted formats (wide, long, xarray, numpy), the
  checks with one-line errors and the missing-value policy; :mod:`~snfseq.forecasting.frequency`
  the time axis (frequency inference, the regular grid, future timestamps);
  :mod:`~snfseq.forecasting.calendar` calendar features and season lengths;
  :mod:`~snfseq.forecasting.covariates` the features a model is conditioned on;
  :mod:`~snfseq.forecasting.scaling` per-series context scales and training windows.
* :mod:`~snfseq.forecasting.base`: what every forecaster shares (``fit``, ``predict``,
  ``backtest``, ``save``/``load``); :mod:`~snfseq.forecasting.forecaster` the
  :class:`FlowForecaster` (GRU-NF / GRU-SNF); :mod:`~snfseq.forecasting.baselines` the
  seasonal naive and random-walk forecasters; :mod:`~snfseq.forecasting.gaussian_gru` a
  DeepAR-like GRU.
* :mod:`~snfseq.forecasting.result`: :class:`Prediction`, samples ``Tensor[S, 1, H, D]`` with
  summaries as DataFrames on the future timestamps (:mod:`~snfseq.forecasting.plotting` draws
  them); :mod:`~snfseq.forecasting.backtesting` rolling-origin scores and their summary.

Example:
    >>> import numpy as np, pandas as pd
    >>> from snfseq import forecasting
    >>> index = pd.period_range("2000Q1", periods=40, freq="Q")
    >>> data = pd.DataFrame(np.random.default_rng(1).normal(size=(40, 2)).cumsum(0) + 50,
    ...                     index=index, columns=["gdp", "rate"])
    >>> walk = forecasting.RandomWalkForecaster(prediction_length=4).fit(data)
    >>> walk.predict(data, num_samples=100, seed=0).interval(0.9).index[0]
    Period('2010Q1', 'Q-DEC')
"""

from __future__ import annotations

__all__ = [
    "FlowForecaster",
    "Forecaster",
    "GaussianGRUForecaster",
    "LongFormat",
    "Prediction",
    "RandomWalkForecaster",
    "SeasonalNaiveForecaster",
    "calendar_features",
    "prepare",
    "season_length",
    "summary",
]

from snfseq.forecasting.backtesting import summary
from snfseq.forecasting.base import Forecaster
from snfseq.forecasting.baselines import RandomWalkForecaster, SeasonalNaiveForecaster
from snfseq.forecasting.calendar import calendar_features, season_length
from snfseq.forecasting.forecaster import FlowForecaster
from snfseq.forecasting.gaussian_gru import GaussianGRUForecaster
from snfseq.forecasting.inputs import LongFormat, prepare
from snfseq.forecasting.result import Prediction
