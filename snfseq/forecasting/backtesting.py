"""Rolling-origin backtests scored into one tidy table, and its summary.

:meth:`Forecaster.backtest <snfseq.forecasting.Forecaster.backtest>` makes ``windows`` forecasts
from origins ``stride`` steps apart, the last one ending at the last timestamp of the data;
each sees only the data before its origin (its "cutoff" is the last timestamp it sees). With
``refit=False`` a fresh copy of the forecaster is trained once, on the data before the first
window; with ``refit=True`` before every window, on all data before it; ``use_fitted=True``
scores the forecaster as it is (then it should not have been trained on the windows). The
forecaster it is called on is never changed. Missing values are filled once over the whole
data before the windows are cut, so a value filled just before a cutoff has seen the next
observed value.

Scores (lower is better, except coverage), in the table's ``metric`` column:

* per series and forecast step: ``crps``; ``crps_scaled`` (CRPS divided by the series' mean
  absolute one-step change before the cutoff, the scale of MASE, comparable across series);
  ``mae`` (of the median); ``mse`` (of the mean); ``coverage_50`` and ``coverage_90`` (1 when
  the truth lies in the central 50% / 90% interval, else 0: their mean is the coverage);
* jointly over all series and steps (``series`` ``"joint"``, ``step`` missing):
  ``energy_score`` and ``variogram_score`` (order 0.5), in data units and ``_scaled`` (each
  series divided by its one-step scale first, so that no series dominates by magnitude).

Example:
    >>> import numpy as np
    >>> from snfseq.forecasting import RandomWalkForecaster
    >>> data = np.random.default_rng(0).normal(size=(40, 2)).cumsum(0)
    >>> table = RandomWalkForecaster(prediction_length=3).backtest(data, windows=2,
    ...                                                            num_samples=50)
    >>> list(table.columns)
    ['model', 'window', 'cutoff', 'series', 'step', 'metric', 'value']
    >>> summary(table).loc["RandomWalkForecaster (Gaussian random walk)"].shape
    (10, 4)
"""

from __future__ import annotations

__all__ = [
    "JOINT_METRICS",
    "SERIES_METRICS",
    "rolling_backtest",
    "score_windows",
    "summary",
    "window_cutoffs",
]

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from snfseq import metrics
from snfseq.forecasting.inputs import History

#: Scores per series and forecast step.
SERIES_METRICS = ("crps", "crps_scaled", "mae", "mse", "coverage_50", "coverage_90")
#: Scores of all series and steps as one event.
JOINT_METRICS = ("energy_score", "energy_score_scaled", "variogram_score", "variogram_score_scaled")
_SCALE_FREE = ("crps_scaled", "coverage_50", "coverage_90")


def window_cutoffs(
    length: int, horizon: int, windows: int, stride: int, needed: int = 1, purpose: str = "it"
) -> list[int]:
    """Positions of the forecast origins: window ``k`` sees rows ``[:cutoff_k]`` and forecasts
    rows ``[cutoff_k : cutoff_k + horizon]``; the last window ends with the data.

    Args:
        length: Timestamps of the data.
        horizon: Steps per window.
        windows: Number of windows (>= 1).
        stride: Steps between origins (>= 1).
        needed: Fewest timestamps the first window must see, for ``purpose``.
        purpose: What needs them, for the error message.

    Example:
        >>> window_cutoffs(20, horizon=3, windows=3, stride=2)
        [13, 15, 17]
        >>> window_cutoffs(20, 3, 3, 2, needed=14, purpose="training")
        Traceback (most recent call last):
        ...
        ValueError: 3 windows of 3 steps, 2 apart, leave 13 timestamps before the first; ...
    """
    for name, value in (("windows", windows), ("stride", stride)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value}")
    cutoffs = [length - horizon - (windows - 1 - k) * stride for k in range(windows)]
    if cutoffs[0] < needed:
        raise ValueError(
            f"{windows} windows of {horizon} steps, {stride} apart, leave {max(cutoffs[0], 0)} "
            f"timestamps before the first; {purpose} needs at least {needed}"
        )
    return cutoffs


def _scores(
    samples: Tensor, obs: Tensor, scale: Tensor, log_weights: Tensor | None
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Per-entry ``[B, H, D]`` and joint ``[B]`` scores of ``samples: [S, B, H, D]``."""
    crps = metrics.crps(samples, obs, log_weights=log_weights)
    covered = metrics.coverage(samples, obs, [0.5, 0.9], reduce=None, log_weights=log_weights)
    per_entry = {
        "crps": crps,
        "crps_scaled": crps / scale[:, None],
        "mae": metrics.mae(samples, obs, point="median", reduce=None, log_weights=log_weights),
        "mse": metrics.mse(samples, obs, point="mean", reduce=None, log_weights=log_weights),
        "coverage_50": covered[0],
        "coverage_90": covered[1],
    }
    scaled_samples, scaled_obs = samples / scale[:, None], obs / scale[:, None]
    joint = {
        "energy_score": metrics.energy_score(samples, obs, log_weights=log_weights),
        "energy_score_scaled": metrics.energy_score(
            scaled_samples, scaled_obs, log_weights=log_weights
        ),
        "variogram_score": metrics.variogram_score(samples, obs, log_weights=log_weights),
        "variogram_score_scaled": metrics.variogram_score(
            scaled_samples, scaled_obs, log_weights=log_weights
        ),
    }
    return per_entry, joint


def _table(
    model: str,
    cutoffs: list[Any],
    columns: list[Any],
    per_entry: dict[str, Tensor],
    joint: dict[str, Tensor],
) -> pd.DataFrame:
    batch, horizon, series = next(iter(per_entry.values())).shape
    entries = batch * horizon * series
    parts = []
    for name, values in per_entry.items():
        parts.append(
            pd.DataFrame(
                {
                    "window": np.repeat(np.arange(batch), horizon * series),
                    "cutoff": np.repeat(np.asarray(cutoffs, dtype=object), horizon * series),
                    "series": np.tile(np.asarray(columns, dtype=object), batch * horizon),
                    "step": np.tile(np.repeat(np.arange(1, horizon + 1), series), batch),
                    "metric": name,
                    "value": values.reshape(entries).numpy(),
                }
            )
        )
    for name, values in joint.items():
        parts.append(
            pd.DataFrame(
                {
                    "window": np.arange(batch),
                    "cutoff": np.asarray(cutoffs, dtype=object),
                    "series": "joint",
                    "step": pd.NA,
                    "metric": name,
                    "value": values.numpy(),
                }
            )
        )
    table = pd.concat(parts, ignore_index=True)
    table.insert(0, "model", model)
    return table.astype({"step": "Int64", "value": "float64"})


def score_windows(
    model: str,
    frame: pd.DataFrame,
    cutoffs: list[int],
    samples: Tensor,
    log_weights: Tensor | None = None,
) -> pd.DataFrame:
    """Scores the forecast of every window against ``frame``, into the tidy table.

    Args:
        model: The forecaster's name and variant.
        frame: The whole (checked) wide history, ``T`` rows and ``D`` series.
        cutoffs: Window origins (:func:`window_cutoffs`).
        samples: ``Tensor[S, B, H, D]``, the forecast of window ``b`` at index ``b``.
        log_weights: ``Tensor[S, B]`` path log-weights, or None.

    Returns:
        ``DataFrame`` with columns ``model``, ``window`` (0, 1, ...), ``cutoff`` (last timestamp
        seen), ``series`` (name, or ``"joint"``), ``step`` (1..H; missing for joint scores of
        the whole horizon), ``metric`` (see the module) and ``value``.

    Example:
        >>> import pandas as pd, torch
        >>> frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
        >>> table = score_windows("m", frame, [3], torch.full((5, 1, 1, 1), 2.0))
        >>> table.query("metric == 'mae'")[["cutoff", "step", "value"]].to_numpy().tolist()
        [[2, 1, 1.0]]
    """
    horizon = samples.shape[2]
    values = torch.tensor(np.ascontiguousarray(frame.to_numpy(dtype=np.float64)))
    obs = torch.stack([values[c : c + horizon] for c in cutoffs])
    scale = torch.stack([values[:c].diff(dim=0).abs().mean(0) for c in cutoffs])
    scale = torch.where(scale > 0, scale, torch.nan)
    weights = None if log_weights is None else log_weights.double()
    per_entry, joint = _scores(samples.double(), obs, scale, weights)
    labels = [frame.index[c - 1] for c in cutoffs]
    return _table(model, labels, list(frame.columns), per_entry, joint)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Means of a backtest table over windows and steps, one row per model and metric.

    Columns: each series, ``"joint"``, and ``"all series"``, the mean over series of the
    scale-free scores (``crps_scaled`` and coverage; missing for the others, whose mean
    over series of different units would mean nothing). Missing scores propagate (a series
    constant before a cutoff has no one-step scale, so no scaled CRPS).

    Example:
        >>> import pandas as pd
        >>> table = pd.DataFrame({"model": "m", "window": [0, 1], "cutoff": [9, 10],
        ...                       "series": "a", "step": 1, "metric": "crps",
        ...                       "value": [1.0, 3.0]})
        >>> summary(table)
                      a  all series
        model metric
        m     crps  2.0         NaN
    """
    series = list(dict.fromkeys(table["series"]))
    means = table.groupby(["model", "metric", "series"], sort=False)["value"].apply(
        lambda v: v.to_numpy().mean()
    )
    result = means.unstack("series").reindex(columns=series)
    own = [s for s in series if s != "joint"]
    scale_free = result.index.get_level_values("metric").isin(_SCALE_FREE)
    result["all series"] = np.where(scale_free, result[own].to_numpy().mean(1), np.nan)
    result.columns.name = None
    return result


def rolling_backtest(
    forecaster: Any,
    data: Any,
    covariates: Any,
    *,
    windows: int,
    stride: int | None,
    refit: bool,
    use_fitted: bool,
    num_samples: int,
    seed: int | None,
    fit_options: dict[str, Any] | None,
    options: dict[str, Any],
) -> pd.DataFrame:
    """:meth:`Forecaster.backtest <snfseq.forecasting.Forecaster.backtest>` (see there and the
    module): trains (a copy of) ``forecaster``, forecasts every window (all at once without
    ``refit``) and scores them with :func:`score_windows`.

    Example:
        >>> import numpy as np
        >>> from snfseq.forecasting import RandomWalkForecaster
        >>> data = np.random.default_rng(0).normal(size=(30, 1)).cumsum(0)
        >>> table = rolling_backtest(RandomWalkForecaster(2), data, None, windows=2, stride=None,
        ...     refit=True, use_fitted=False, num_samples=10, seed=0, fit_options=None, options={})
        >>> sorted(table["cutoff"].unique())
        [25, 27]
    """
    if use_fitted and refit:
        raise ValueError("use_fitted=True scores the forecaster as trained; refit=True retrains")
    trained = forecaster if use_fitted else forecaster.clone()
    if use_fitted:
        forecaster._check_fitted()
    history = trained._history(data)
    frame, horizon = history.frame, forecaster.prediction_length
    stride = horizon if stride is None else stride
    needed = forecaster.min_history(fitting=not use_fitted)
    cutoffs = window_cutoffs(len(frame), horizon, windows, stride, *needed)
    fit_options = {"seed": seed} | (fit_options or {})
    if not use_fitted and not refit:
        trained.fit(frame.iloc[: cutoffs[0]], covariates, **fit_options)
    # One model forecasts every window at once; a refit forecasts its own window.
    groups = [[c] for c in cutoffs] if refit else [cutoffs]
    samples, log_weights = [], []
    for k, group in enumerate(groups):
        if refit:
            trained = forecaster.clone().fit(frame.iloc[: group[0]], covariates, **fit_options)
        pasts = [History(frame.iloc[:cutoff], history.freq) for cutoff in group]
        features = [trained._features(past, covariates, horizon) for past in pasts]
        drawn, log_w = trained._sample(
            [past.values for past in pasts],
            None if features[0] is None else features,  # type: ignore[arg-type]
            num_samples,
            None if seed is None else seed + k,
            **options,
        )
        samples.append(drawn)
        log_weights.append(log_w)
    present = [w for w in log_weights if w is not None]
    weights = torch.cat(present, 1) if present else None
    model = f"{type(forecaster).__name__} ({trained.variant(**options)})"
    return score_windows(model, frame, cutoffs, torch.cat(samples, 1), weights)
