"""Reference forecasters in the :class:`~snfseq.forecasting.FlowForecaster` API: the seasonal
naive forecast with bootstrapped seasonal errors, and the Gaussian random walk.

Neither learns anything in ``fit`` beyond the series, the frequency and the season: their
spread comes from the history each forecast starts from (its last ``context_length`` steps, or
all of it), so a backtest gives them no look at the future either.

Example:
    >>> import numpy as np
    >>> data = np.tile([1.0, 5.0, 3.0, 2.0], 6) + np.arange(24) * 0.1  # every seasonal error 0.4
    >>> naive = SeasonalNaiveForecaster(prediction_length=4, season_length=4).fit(data)
    >>> naive.predict(data, num_samples=50, seed=0).median().round(1)[0].tolist()
    [3.4, 7.5, 5.6, 4.7]
"""

from __future__ import annotations

__all__ = ["RandomWalkForecaster", "SeasonalNaiveForecaster"]

from typing import Any

import numpy as np
import torch
from torch import Tensor

from snfseq.forecasting.base import Forecaster
from snfseq.forecasting.calendar import season_length as default_season
from snfseq.forecasting.frequency import Freq
from snfseq.forecasting.inputs import History


class SeasonalNaiveForecaster(Forecaster):
    """Seasonal random walk with bootstrapped innovations.

    Each sample path repeats the value one season back plus a seasonal error
    ``y_t - y_{t-m}`` drawn from the history: ``y*_{T+h} = y*_{T+h-m} + e``, so that errors add
    up season after season. A draw takes the errors of all series at one past timestamp
    together, which keeps their dependence.

    Args:
        prediction_length: Steps to forecast ``H``.
        season_length: Steps per season ``m``; default from the frequency
            (:func:`~snfseq.forecasting.calendar.season_length`: 4 for quarters, 24 for hours).
        context_length: Past steps whose seasonal errors are drawn (None: the whole history).
        freq: Frequency alias; inferred when None.
        **options: ``max_gap`` and the long-format column names of
            :class:`~snfseq.forecasting.base.Forecaster`.

    Example:
        >>> import numpy as np
        >>> f = SeasonalNaiveForecaster(prediction_length=2, season_length=3).fit(np.arange(9.0))
        >>> f.variant()
        'seasonal naive, m=3'
    """

    def __init__(
        self,
        prediction_length: int,
        season_length: int | None = None,
        context_length: int | None = None,
        freq: Freq = None,
        **options: Any,
    ) -> None:
        super().__init__(
            prediction_length, context_length, freq, scaling=None, calendar=False, **options
        )
        if season_length is not None and (int(season_length) != season_length or season_length < 1):
            raise ValueError(f"season_length must be an integer >= 1, got {season_length}")
        self._params = {k: v for k, v in self._params.items() if k not in ("scaling", "calendar")}
        self._params |= {"season_length": season_length}
        self.season_length = season_length
        self.season_length_: int | None = None

    def _season(self) -> int:
        if self.season_length is not None:
            return int(self.season_length)
        return self.season_length_ or default_season(self.freq_ if self.is_fitted else self.freq)

    def min_history(self, fitting: bool) -> tuple[int, str]:
        """At least two seasonal errors, and the context when one is set."""
        needed = max(self._season() + 2, self.context_length or 0)
        return needed, f"a seasonal naive forecast with m={self._season()} (two seasonal errors)"

    def variant(self, **options: Any) -> str:
        """``"seasonal naive, m=<season>"``."""
        return f"seasonal naive, m={self._season()}"

    def _fit(  # type: ignore[override]
        self,
        history: History,
        features: np.ndarray | None,
        *,
        progress: bool = True,
        seed: int | None = None,
    ) -> None:
        self.season_length_ = int(self.season_length or default_season(history.freq))
        if len(history.frame) < self.season_length_ + 2:
            raise ValueError(
                f"data has {len(history.frame)} timestamps; a season of {self.season_length_} "
                f"needs at least {self.season_length_ + 2}"
            )

    def _sample(  # type: ignore[override]
        self,
        histories: list[np.ndarray],
        features: list[np.ndarray] | None,
        num_samples: int,
        seed: int | None,
    ) -> tuple[Tensor, Tensor | None]:
        season, horizon = self._season(), self.prediction_length
        rng = np.random.default_rng(seed)
        paths = []
        for history in histories:
            used = history[-self.context_length :] if self.context_length else history
            errors = used[season:] - used[:-season]  # [E, D]
            values = np.empty((num_samples, season + horizon, used.shape[1]))
            values[:, :season] = used[-season:]
            for step in range(horizon):
                drawn = errors[rng.integers(len(errors), size=num_samples)]
                values[:, season + step] = values[:, step] + drawn
            paths.append(values[:, season:])
        return torch.from_numpy(np.stack(paths, axis=1)).float(), None

    def _extra(self) -> dict[str, Any]:
        return {"season_length": self.season_length_}

    def _restore(self, state: dict[str, Tensor], extra: dict[str, Any]) -> None:
        self.season_length_ = extra["season_length"]


class RandomWalkForecaster(Forecaster):
    """Gaussian random walk per series: ``y_{T+h} = y_T + sum of h steps ~ N(drift, sigma^2)``.

    ``sigma`` (and ``drift``, when asked for) of each series are the standard deviation (and
    mean) of its one-step changes over the history a forecast starts from; series are
    independent.

    Args:
        prediction_length: Steps to forecast ``H``.
        context_length: Past steps whose changes set ``sigma`` (None: the whole history).
        freq: Frequency alias; inferred when None.
        drift: Add the mean change per step (no drift by default: the plain random walk).
        **options: ``max_gap`` and the long-format column names.

    Example:
        >>> import numpy as np
        >>> data = np.array([0.0, 1.0, 0.0, 1.0, 0.0])
        >>> walk = RandomWalkForecaster(prediction_length=2).fit(data)
        >>> spread = walk.predict(data, num_samples=4000, seed=0).samples.std(0).flatten()
        >>> round(float(spread[1] / spread[0]), 1)  # sqrt(2): two steps of the walk
        1.4
    """

    def __init__(
        self,
        prediction_length: int,
        context_length: int | None = None,
        freq: Freq = None,
        *,
        drift: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(
            prediction_length, context_length, freq, scaling=None, calendar=False, **options
        )
        if context_length is not None and context_length < 3:
            raise ValueError(
                f"context_length must be >= 3 (two changes for a spread), got {context_length}"
            )
        self._params = {k: v for k, v in self._params.items() if k not in ("scaling", "calendar")}
        self._params |= {"drift": drift}
        self.drift = bool(drift)

    def min_history(self, fitting: bool) -> tuple[int, str]:
        """Three steps (two changes) at least, and the context when one is set."""
        return max(3, self.context_length or 0), "a random walk (two one-step changes)"

    def variant(self, **options: Any) -> str:
        """``"Gaussian random walk"`` (``", drift"`` when it has one)."""
        return "Gaussian random walk" + (", drift" if self.drift else "")

    def _fit(  # type: ignore[override]
        self,
        history: History,
        features: np.ndarray | None,
        *,
        progress: bool = True,
        seed: int | None = None,
    ) -> None:
        """Nothing to learn: the spread comes from each forecast's history."""

    def _sample(  # type: ignore[override]
        self,
        histories: list[np.ndarray],
        features: list[np.ndarray] | None,
        num_samples: int,
        seed: int | None,
    ) -> tuple[Tensor, Tensor | None]:
        generator = torch.Generator()
        generator.manual_seed(seed) if seed is not None else generator.seed()
        horizon = self.prediction_length
        last, sigma, drift = [], [], []
        for history in histories:
            used = history[-self.context_length :] if self.context_length else history
            changes = np.diff(used, axis=0)
            last.append(used[-1])
            sigma.append(changes.std(0, ddof=1))
            drift.append(changes.mean(0) if self.drift else np.zeros(used.shape[1]))
        batch, series = len(histories), len(last[0])
        noise = torch.randn(
            num_samples, batch, horizon, series, generator=generator, dtype=torch.float64
        )
        steps = (
            noise * torch.tensor(np.stack(sigma))[:, None] + torch.tensor(np.stack(drift))[:, None]
        )
        return (torch.tensor(np.stack(last))[:, None] + steps.cumsum(2)).float(), None
