"""The prediction of a forecaster: sample paths on the future time index, with summaries as
DataFrames named like the input.

Example:
    >>> import pandas as pd, torch
    >>> index = pd.period_range("2001Q1", periods=2, freq="Q")
    >>> prediction = Prediction(torch.arange(6.0).reshape(3, 1, 2, 1), index, ["gdp"])
    >>> prediction.median()
            gdp
    2001Q1  2.0
    2001Q2  3.0
    >>> prediction.to_xarray().dims
    ('sample', 'time', 'series')
"""

from __future__ import annotations

__all__ = ["Prediction"]

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
from torch import Tensor

from snfseq.forecasting.inputs import LongFormat
from snfseq.forecasting.plotting import LEVELS, plot_bands
from snfseq.metrics import quantile as weighted_quantile
from snfseq.weights import Weighted

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class Prediction(Weighted):
    """Sample paths of one forecast, on the timestamps it forecasts.

    Summaries use the importance weights of a refinement when it left some (``weighted=False``
    ignores them); quantiles are those of :func:`snfseq.metrics.quantile` (the weighted
    empirical distribution, no interpolation), so intervals are nested and bounded by samples.

    Attributes:
        samples: ``Tensor[S, B, H, D]``: ``S`` sample paths of ``B = 1`` history, ``H`` future
            steps, ``D`` series, in data units.
        index: The ``H`` future timestamps (``DatetimeIndex``, ``PeriodIndex`` or integer steps).
        columns: The ``D`` series names, as in the input.
        log_weights: ``Tensor[S, B]`` path log-weights of a refinement, or None.
        model: The forecaster that made it (``"FlowForecaster"``...).
        variant: How it sampled (``"GRU-NF"``, ``"GRU-SNF (rwm)"``, ``"seasonal naive, m=4"``).
        context: The observed history the forecast started from (what :meth:`plot` shows).
        long_format: Column names of :meth:`to_pandas` ``form="long"``.

    Example:
        >>> import pandas as pd, torch
        >>> p = Prediction(torch.randn(200, 1, 3, 2), pd.RangeIndex(10, 13), ["a", "b"])
        >>> p.num_samples, p.horizon, list(p.mean().index)
        (200, 3, [10, 11, 12])
        >>> bool((p.quantile(0.1) <= p.quantile(0.9)).all().all())
        True
    """

    samples: Tensor
    index: pd.Index
    columns: list[Any]
    log_weights: Tensor | None = None
    model: str = "forecaster"
    variant: str = ""
    context: pd.DataFrame | None = None
    long_format: LongFormat = field(default_factory=LongFormat)

    def __post_init__(self) -> None:
        shape = tuple(self.samples.shape)
        if len(shape) != 4 or shape[1] != 1:
            raise ValueError(f"samples must be Tensor[S, 1, H, D], got shape {shape}")
        if shape[2] != len(self.index) or shape[3] != len(self.columns):
            raise ValueError(
                f"samples {shape} do not match {len(self.index)} timestamps and "
                f"{len(self.columns)} series"
            )
        if self.log_weights is not None and tuple(self.log_weights.shape) != shape[:2]:
            raise ValueError(
                f"log_weights must be Tensor[S, 1], got {tuple(self.log_weights.shape)}"
            )
        self.columns = list(self.columns)

    @property
    def num_samples(self) -> int:
        """Sample paths ``S``."""
        return self.samples.shape[0]

    @property
    def horizon(self) -> int:
        """Forecast steps ``H``."""
        return self.samples.shape[2]

    @property
    def title(self) -> str:
        """The model and its variant, e.g. ``"FlowForecaster (GRU-NF)"``."""
        return f"{self.model} ({self.variant})" if self.variant else self.model

    def _frame(self, values: Tensor | np.ndarray) -> pd.DataFrame:
        array = np.asarray(values.detach().cpu() if isinstance(values, Tensor) else values)
        return pd.DataFrame(array, index=self.index.copy(), columns=list(self.columns))

    def _quantiles(self, levels: Sequence[float], weighted: bool) -> np.ndarray:
        """``Array[Q, H, D]`` of the one history's samples."""
        samples = self.samples[:, 0].detach().cpu().double()
        log_weights = None
        if weighted and self.log_weights is not None:
            log_weights = self.log_weights[:, 0].detach().cpu().double()
        for level in levels:
            if not 0 <= level <= 1:
                raise ValueError(f"quantile levels must lie in [0, 1], got {level}")
        return weighted_quantile(samples, list(levels), log_weights=log_weights).numpy()

    def mean(self, weighted: bool = True) -> pd.DataFrame:
        """The (weighted) sample mean: ``DataFrame[H, D]`` on the future timestamps.

        Example:
            >>> import pandas as pd, torch
            >>> p = Prediction(torch.tensor([1.0, 3.0]).reshape(2, 1, 1, 1), pd.RangeIndex(1),
            ...                ["x"], log_weights=torch.tensor([[0.0], [-100.0]]))
            >>> float(p.mean().iloc[0, 0]), float(p.mean(weighted=False).iloc[0, 0])
            (1.0, 2.0)
        """
        if weighted:
            return self._frame(self.expectation()[0].double())
        return self._frame(self.samples[:, 0].double().mean(0))

    def median(self, weighted: bool = True) -> pd.DataFrame:
        """The (weighted) sample median: ``DataFrame[H, D]``."""
        return self._frame(self._quantiles([0.5], weighted)[0])

    def quantile(self, q: float | Sequence[float], weighted: bool = True) -> pd.DataFrame:
        """Sample quantiles: ``DataFrame[H, D]`` for one level; for several, columns
        ``(quantile, series)``.

        Example:
            >>> import pandas as pd, torch
            >>> p = Prediction(torch.arange(5.0).reshape(5, 1, 1, 1), pd.RangeIndex(1), ["x"])
            >>> p.quantile([0.1, 0.9])
              0.1 0.9
                x   x
            0 0.0 4.0
        """
        if np.ndim(q) == 0:
            return self._frame(self._quantiles([float(q)], weighted)[0])  # type: ignore[arg-type]
        levels = [float(level) for level in q]  # type: ignore[union-attr]
        bands = self._quantiles(levels, weighted)
        return pd.concat([self._frame(band) for band in bands], axis=1, keys=levels)

    def interval(self, level: float = 0.9, weighted: bool = True) -> pd.DataFrame:
        """The central interval holding ``level`` of the probability: columns
        ``(bound, series)`` with bounds ``"lower"`` and ``"upper"``.

        Example:
            >>> import pandas as pd, torch
            >>> p = Prediction(torch.arange(11.0).reshape(11, 1, 1, 1), pd.RangeIndex(1), ["x"])
            >>> p.interval(0.8)["upper"]
                 x
            0  9.0
        """
        if not 0 < level < 1:
            raise ValueError(f"level must lie in (0, 1), got {level}")
        lower, upper = self._quantiles([(1 - level) / 2, (1 + level) / 2], weighted)
        return pd.concat([self._frame(lower), self._frame(upper)], axis=1, keys=["lower", "upper"])

    def to_pandas(self, form: Literal["long", "wide"] = "long") -> pd.DataFrame:
        """Every sample value as a DataFrame.

        Args:
            form: ``"long"``: one row per sample, timestamp and series, with the columns of
                :attr:`long_format` and ``sample`` (and ``weight``, the normalised weight of the
                sample path, after a refinement); ``"wide"``: index ``(sample, time)``, one
                column per series.

        Example:
            >>> import pandas as pd, torch
            >>> p = Prediction(torch.zeros(2, 1, 3, 2), pd.RangeIndex(3), ["a", "b"])
            >>> p.to_pandas().shape, p.to_pandas("wide").shape
            ((12, 4), (6, 2))
        """
        values = self.samples[:, 0].detach().cpu().double().numpy()  # [S, H, D]
        num_samples, horizon, series = values.shape
        if form == "wide":
            rows = pd.MultiIndex.from_product(
                [range(num_samples), self.index], names=["sample", self.long_format.time]
            )
            return pd.DataFrame(values.reshape(-1, series), index=rows, columns=self.columns)
        if form != "long":
            raise ValueError(f"form must be 'long' or 'wide', got {form!r}")
        names = self.long_format
        frame = pd.DataFrame(
            {
                "sample": np.repeat(np.arange(num_samples), horizon * series),
                names.time: self.index[np.tile(np.repeat(np.arange(horizon), series), num_samples)],
                names.id: np.tile(np.asarray(self.columns, dtype=object), num_samples * horizon),
                names.value: values.reshape(-1),
            }
        )
        if self.weights is not None:
            frame["weight"] = np.repeat(
                self.weights[:, 0].detach().cpu().double().numpy(), horizon * series
            )
        return frame

    def to_xarray(self) -> xr.DataArray:
        """Samples as a DataArray with dims ``(sample, time, series)``.

        The ``time`` coordinate holds the future timestamps (periods as the timestamps they
        start at, since netCDF and zarr store no periods); ``weight``, on ``sample``, the
        normalised path weights after a refinement; ``attrs`` the model and variant.
        """
        time = (
            self.index.to_timestamp(how="start")
            if isinstance(self.index, pd.PeriodIndex)
            else self.index
        )
        coords: dict[str, Any] = {
            "sample": np.arange(self.num_samples),
            "time": time,
            "series": self.columns,
        }
        if self.weights is not None:
            coords["weight"] = ("sample", self.weights[:, 0].detach().cpu().numpy())
        return xr.DataArray(
            self.samples[:, 0].detach().cpu().numpy(),
            dims=("sample", "time", "series"),
            coords=coords,
            name="forecast",
            attrs={"model": self.model, "variant": self.variant},
        )

    def plot(
        self,
        history: pd.DataFrame | None = None,
        truth: pd.DataFrame | None = None,
        *,
        series: Sequence[Any] | None = None,
        weighted: bool = True,
    ) -> Figure:
        """One panel per series: history, median, 50% and 90% intervals, and the truth.

        Args:
            history: Wide DataFrame of the observed past with the forecast's columns; default
                the context the forecast started from.
            truth: Wide DataFrame of what happened, on (part of) the future timestamps.
            series: The columns to show (default all).
            weighted: Use the refinement's weights for the bands.

        Returns:
            A matplotlib ``Figure`` titled with :attr:`title`, detached from pyplot.

        Example:
            >>> import pandas as pd, torch
            >>> p = Prediction(torch.randn(50, 1, 4, 2), pd.RangeIndex(10, 14), ["a", "b"],
            ...                model="demo")
            >>> len(p.plot(truth=pd.DataFrame({"a": range(4), "b": range(4)},
            ...                               index=range(10, 14))).axes)
            2
        """
        history = self.context if history is None else history
        weights = " (weighted)" if weighted and self.log_weights is not None else ""
        title = (
            f"{self.title}: median, 50% and 90% intervals of {self.num_samples} samples{weights}"
        )
        bands = self.quantile(list(LEVELS), weighted=weighted)
        return plot_bands(bands, title, history, truth, series=series)
