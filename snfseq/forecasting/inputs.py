"""Series from the formats users hold, checked and put on a regular time index.

Accepted formats (:func:`to_wide`):

* a wide ``DataFrame``: index ``DatetimeIndex``, ``PeriodIndex`` or integers (time steps);
  one column per series, all modelled jointly;
* a long ``DataFrame`` with an id, a timestamp and a value column (names set by
  :class:`LongFormat`), pivoted to wide (series in order of first appearance);
* an xarray ``DataArray`` with dims ``(time, series)`` (or ``(time,)`` for one series);
* a numpy array ``[T]`` or ``[T, D]`` (or anything ``numpy.asarray`` takes), whose time axis is
  integer steps ``0..T-1`` and whose series are numbered.

:func:`prepare` then checks the values and the time axis, one-line errors naming the column or
timestamp: non-numeric, infinite, all-missing series; duplicated timestamps; timestamps off the
grid of the frequency; a frequency that cannot be inferred. Rows are put in time order and
missing timestamps become missing values.

Missing values: a run of at most ``max_gap`` missing values inside a series is filled by
linear interpolation in time (with a warning that counts them); a longer run, or a missing
first or last value, is an error naming the column and the run's first timestamp.

Example:
    >>> import numpy as np, pandas as pd
    >>> frame = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0], "b": [2.0, 2.5, 3.0, 1.0]},
    ...                      index=pd.period_range("2000Q1", periods=4, freq="Q"))
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     history = prepare(frame, max_gap=1)
    >>> history.freq, history.frame["a"].tolist()
    ('Q-DEC', [1.0, 2.0, 3.0, 4.0])
"""

from __future__ import annotations

__all__ = [
    "History",
    "LongFormat",
    "check_length",
    "prepare",
    "to_wide",
]

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from snfseq.forecasting.frequency import Freq, label, on_grid


@dataclass(frozen=True)
class LongFormat:
    """Column names of long data: one row per series and timestamp.

    Example:
        >>> LongFormat(id="unique_id", time="ds", value="y").time
        'ds'
    """

    id: str = "id"
    time: str = "timestamp"
    value: str = "value"


@dataclass
class History:
    """Checked series on a regular time index.

    Attributes:
        frame: Wide ``float64`` DataFrame, rows in time order with no missing timestamp and
            no missing value (short gaps filled).
        freq: Offset alias of the time axis, the integer step of an integer axis, or None for
            data without timestamps (numpy input).
        filled: How many values were filled by interpolation.

    Example:
        >>> import pandas as pd
        >>> History(pd.DataFrame({"a": [1.0, 2.0]}), None).values.shape
        (2, 1)
    """

    frame: pd.DataFrame
    freq: Freq
    filled: int = 0
    _cache: tuple[pd.DataFrame, np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def values(self) -> np.ndarray:
        """``Array[T, D]`` (float64, C-contiguous: the memory layout of a pivot or a transpose
        must not change the rounding of what is computed from it). Built once per frame (a
        long history of many series is large); do not modify it."""
        if self._cache is None or self._cache[0] is not self.frame:
            values = np.ascontiguousarray(self.frame.to_numpy(dtype=np.float64))
            self._cache = (self.frame, values)
        return self._cache[1]

    @property
    def columns(self) -> list[Any]:
        """The series names, in order."""
        return list(self.frame.columns)

    @property
    def timestamped(self) -> bool:
        """Whether the time axis holds timestamps or periods (not integer steps)."""
        return isinstance(self.frame.index, pd.DatetimeIndex | pd.PeriodIndex)


def _from_long(data: pd.DataFrame, long: LongFormat, name: str) -> pd.DataFrame:
    extra = [c for c in data.columns if c not in (long.id, long.time, long.value)]
    if extra:
        raise ValueError(
            f"long {name} has columns {extra} besides {long.id!r}, {long.time!r} and "
            f"{long.value!r}; select them or pivot to wide first"
        )
    duplicated = data.duplicated([long.id, long.time])
    if duplicated.any():
        row = data[duplicated].iloc[0]
        raise ValueError(
            f"series {row[long.id]!r} has timestamp {label(row[long.time])} more than once "
            f"in {name}"
        )
    times = data[long.time]
    if not (
        pd.api.types.is_datetime64_any_dtype(times)
        or isinstance(times.dtype, pd.PeriodDtype)
        or pd.api.types.is_integer_dtype(times)
    ):
        raise ValueError(
            f"time column {long.time!r} of {name} has dtype {times.dtype}, not timestamps; "
            "convert it with pd.to_datetime"
        )
    order = pd.unique(data[long.id])
    wide = data.pivot(index=long.time, columns=long.id, values=long.value)
    wide = wide.reindex(columns=order)
    wide.columns.name = None
    wide.index.name = None
    return wide


def _from_xarray(data: xr.DataArray, name: str) -> pd.DataFrame:
    if "time" not in data.dims or data.ndim > 2:
        raise ValueError(f"{name} must be a DataArray with dims (time, series), got {data.dims}")
    if data.ndim == 1:
        data = data.expand_dims(series=[data.name if data.name is not None else 0], axis=1)
    series = next(d for d in data.dims if d != "time")
    data = data.transpose("time", series)
    return pd.DataFrame(
        data.values, index=data.get_index("time"), columns=list(data.get_index(series))
    )


def to_wide(data: Any, long: LongFormat | None = None, name: str = "data") -> pd.DataFrame:
    """Any accepted format (see the module) as a wide DataFrame, rows time, columns series.

    Args:
        data: Wide or long DataFrame, Series, DataArray or array.
        long: Column names of long data (default :class:`LongFormat`); a DataFrame holding all
            three is long.
        name: What ``data`` is, for the error messages.

    Example:
        >>> import pandas as pd
        >>> long = pd.DataFrame({"id": ["x", "x", "y", "y"], "timestamp": [0, 1, 0, 1],
        ...                      "value": [1.0, 2.0, 3.0, 4.0]})
        >>> to_wide(long)
             x    y
        0  1.0  3.0
        1  2.0  4.0
    """
    long = long or LongFormat()
    if isinstance(data, pd.DataFrame):
        if {long.id, long.time, long.value} <= set(data.columns):
            return _from_long(data, long, name)
        return data
    if isinstance(data, pd.Series):
        return data.to_frame(data.name if data.name is not None else 0)
    if isinstance(data, xr.DataArray):
        return _from_xarray(data, name)
    array = np.asarray(data)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{name} must be an array [T] or [T, D], got shape {array.shape}")
    return pd.DataFrame(array)


def _check_columns(frame: pd.DataFrame, name: str) -> None:
    if frame.shape[1] == 0:
        raise ValueError(f"{name} has no series (no columns)")
    duplicated = frame.columns[frame.columns.duplicated()]
    if len(duplicated):
        raise ValueError(f"column {duplicated[0]!r} appears more than once in {name}")
    for column in frame.columns:
        dtype = frame[column].dtype
        if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
            raise ValueError(f"column {column!r} of {name} is not numeric (dtype {dtype})")


def _time_index(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    index = frame.index
    if isinstance(index, pd.DatetimeIndex | pd.PeriodIndex):
        pass
    elif pd.api.types.is_integer_dtype(index.dtype):
        frame = frame.set_axis(pd.Index(index.to_numpy(dtype=np.int64)), axis=0)
    else:
        raise ValueError(
            f"{name} has a {type(index).__name__} of dtype {index.dtype}; the index must be a "
            "DatetimeIndex, a PeriodIndex or integer time steps"
        )
    if frame.index.hasnans:
        raise ValueError(f"{name} has a missing timestamp (NaT) in its index")
    duplicated = frame.index[frame.index.duplicated()]
    if len(duplicated):
        raise ValueError(f"timestamp {label(duplicated[0])} appears more than once in {name}")
    return frame.sort_index()


def _runs(missing: np.ndarray) -> list[tuple[int, int]]:
    """``(start, length)`` of each run of True."""
    edges = np.diff(np.concatenate([[0], missing.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), (stops - starts).tolist(), strict=True))


def _fill_gaps(frame: pd.DataFrame, max_gap: int, name: str) -> tuple[pd.DataFrame, int]:
    filled, first = 0, None
    for column in frame.columns:
        values = frame[column].to_numpy(dtype=np.float64, copy=True)
        missing = np.isnan(values)
        if missing.all():
            raise ValueError(f"column {column!r} of {name} has no values (all missing)")
        for start, length in _runs(missing):
            where = label(frame.index[start])
            if start == 0:
                raise ValueError(
                    f"column {column!r} of {name} is missing its first {length} value(s) "
                    f"(from {where}); trim the history to start where every series has values"
                )
            if start + length == len(values):
                raise ValueError(
                    f"column {column!r} of {name} is missing its last {length} value(s) (from "
                    f"{where}); the newest timestamp must be observed in every series"
                )
            if length > max_gap:
                raise ValueError(
                    f"column {column!r} of {name} is missing {length} values in a row from "
                    f"{where}, more than max_gap={max_gap} to interpolate; fill or trim it"
                )
            first = first or f"column {column!r} at {where}"
        if missing.any():
            steps = np.arange(len(values))
            values[missing] = np.interp(steps[missing], steps[~missing], values[~missing])
            frame[column] = values
            filled += int(missing.sum())
    if filled:
        warnings.warn(
            f"filled {filled} missing value(s) of {name} by linear interpolation (first: {first})",
            stacklevel=3,
        )
    return frame, filled


def prepare(
    data: Any,
    freq: Freq = None,
    *,
    max_gap: int = 2,
    long: LongFormat | None = None,
    name: str = "data",
) -> History:
    """Converts, checks and regularises series (see the module for the rules).

    Args:
        data: Any format :func:`to_wide` accepts.
        freq: The frequency; inferred from the timestamps when None.
        max_gap: Longest run of missing values filled by interpolation (0: none).
        long: Column names of long data.
        name: What ``data`` is, for the error messages.

    Returns:
        The :class:`History`.

    Raises:
        ValueError: With one line naming the column or timestamp at fault.

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"a": [1.0, 2.0, 3.0]},
        ...                      index=pd.to_datetime(["2001-01-01", "2001-01-02", "2001-01-02"]))
        >>> prepare(frame)
        Traceback (most recent call last):
        ...
        ValueError: timestamp 2001-01-02 appears more than once in data
    """
    if int(max_gap) != max_gap or max_gap < 0:
        raise ValueError(f"max_gap must be an integer >= 0, got {max_gap}")
    frame = to_wide(data, long, name)
    _check_columns(frame, name)
    frame = _time_index(frame, name).astype(np.float64)
    infinite = np.isinf(frame.to_numpy())
    if infinite.any():
        row, col = (int(i[0]) for i in np.nonzero(infinite))
        raise ValueError(
            f"column {frame.columns[col]!r} of {name} is infinite at {label(frame.index[row])}"
        )
    if len(frame) == 0:
        raise ValueError(f"{name} has no timestamps")
    frame, freq = on_grid(frame, freq, name)
    frame, filled = _fill_gaps(frame, int(max_gap), name)
    return History(frame, freq, filled)


def check_length(history: History, needed: int, purpose: str, name: str = "data") -> None:
    """Raises a one-line error when ``history`` has fewer than ``needed`` timestamps.

    Example:
        >>> import pandas as pd
        >>> check_length(History(pd.DataFrame({"a": [1.0] * 5}), 1), 8, "a context of 8")
        Traceback (most recent call last):
        ...
        ValueError: data has 5 timestamps (from 0 to 4); a context of 8 needs at least 8
    """
    if len(history.frame) < needed:
        index = history.frame.index
        raise ValueError(
            f"{name} has {len(index)} timestamps (from {label(index[0])} to "
            f"{label(index[-1])}); {purpose} needs at least {needed}"
        )
