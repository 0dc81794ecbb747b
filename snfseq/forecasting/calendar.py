"""Calendar features of a time axis, and the season length of a frequency.

A feature is a sine/cosine pair of the phase within a cycle (hour of day, day of week...), so
that the end of a cycle sits next to its start. Only the cycles that a frequency resolves and
that are shorter than a year are used: hourly data gets hour of day and day of week, daily data
day of week and day of year, monthly and quarterly data month of year, yearly data none.

Example:
    >>> import pandas as pd
    >>> index = pd.period_range("2000Q1", periods=4, freq="Q")
    >>> calendar_features(index, "Q-DEC").round(3)
            month_of_year_sin  month_of_year_cos
    2000Q1                0.0                1.0
    2000Q2                1.0                0.0
    2000Q3                0.0               -1.0
    2000Q4               -1.0               -0.0
    >>> season_length("Q-DEC"), season_length("h"), season_length(1)
    (4, 24, 1)
"""

from __future__ import annotations

__all__ = ["calendar_features", "season_length"]

import numpy as np
import pandas as pd

from snfseq.forecasting.frequency import Freq, as_offset, nominal_step


def _timestamps(index: pd.Index) -> pd.DatetimeIndex:
    if isinstance(index, pd.PeriodIndex):
        return index.to_timestamp(how="start")
    assert isinstance(index, pd.DatetimeIndex)
    return index


def calendar_features(index: pd.Index, freq: Freq) -> pd.DataFrame:
    """Sine/cosine calendar features of every timestamp of ``index``.

    Args:
        index: A ``DatetimeIndex`` or ``PeriodIndex`` (any other index has no calendar).
        freq: The index's frequency, which decides the cycles (see the module).

    Returns:
        ``DataFrame[T, 2 * cycles]`` on ``index``, columns ``<cycle>_sin``, ``<cycle>_cos``;
        no columns for integer time steps or yearly data.

    Example:
        >>> import pandas as pd
        >>> list(calendar_features(pd.date_range("2001", periods=3, freq="h"), "h").columns)
        ['hour_of_day_sin', 'hour_of_day_cos', 'day_of_week_sin', 'day_of_week_cos']
    """
    if not isinstance(index, pd.DatetimeIndex | pd.PeriodIndex):
        return pd.DataFrame(index=index)
    step = nominal_step(freq)
    time = _timestamps(index)
    phases: dict[str, np.ndarray] = {}
    if step < 1 / 24:
        phases["minute_of_hour"] = (time.minute + time.second / 60) / 60
    if step < 1:
        phases["hour_of_day"] = (time.hour + time.minute / 60) / 24
    if step < 7:
        phases["day_of_week"] = (time.day_of_week + time.hour / 24) / 7
    if 1 <= step < 28:
        phases["day_of_year"] = (time.day_of_year - 1) / 365.25
    elif 28 <= step < 365:
        phases["month_of_year"] = (time.month - 1) / 12
    columns = {}
    for cycle, phase in phases.items():
        angle = 2 * np.pi * np.asarray(phase, dtype=np.float64)
        columns[f"{cycle}_sin"], columns[f"{cycle}_cos"] = np.sin(angle), np.cos(angle)
    return pd.DataFrame(columns, index=index)


def season_length(freq: Freq) -> int:
    """Steps per season: per day below daily data, per week for daily (5 for business days),
    per year above; 1 for yearly data and integer time steps.

    Example:
        >>> season_length("D"), season_length("B"), season_length("W-SUN"), season_length("MS")
        (7, 5, 52, 12)
    """
    step = nominal_step(freq)
    if not np.isfinite(step):
        return 1
    if step < 1:
        return max(1, round(1 / step))
    if isinstance(as_offset(str(freq)), pd.offsets.BusinessDay):
        return 5
    if step < 7:
        return max(1, round(7 / step))
    return max(1, round(365.25 / step))
