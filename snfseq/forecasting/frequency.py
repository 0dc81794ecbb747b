"""The time axis of a series: its frequency, inferred or checked, the regular grid it must lie
on, the timestamps after it, and the length of one step.

A frequency (:data:`Freq`) is a pandas offset alias for a ``DatetimeIndex`` (``"h"``,
``"QS-JAN"``), the period alias of a ``PeriodIndex`` (``"Q-DEC"``), or the integer step of an
integer time axis. Timestamps off the grid, and frequencies that cannot be inferred, are
one-line errors naming the timestamp; timestamps missing from the grid become rows of missing
values, for :func:`snfseq.forecasting.inputs.prepare`'s gap policy.

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"a": [1.0, 2.0, 4.0]}, index=pd.to_datetime(
    ...     ["2001-01-01", "2001-02-01", "2001-04-01"]))
    >>> regular, freq = on_grid(frame, "MS")
    >>> freq, regular["a"].tolist()
    ('MS', [1.0, 2.0, nan, 4.0])
"""

from __future__ import annotations

__all__ = ["Freq", "as_offset", "future_index", "label", "nominal_step", "on_grid"]

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

#: A frequency: a pandas offset alias (``"h"``, ``"QS-JAN"``...) for timestamps, an integer
#: step for integer time axes, or None when unknown.
Freq = str | int | None


def label(value: Any) -> str:
    """A timestamp as error messages name it (midnight timestamps as dates).

    Example:
        >>> import pandas as pd
        >>> label(pd.Timestamp("2001-03-01")), label(pd.Period("2001Q1", freq="Q"))
        ('2001-03-01', '2001Q1')
    """
    if isinstance(value, pd.Timestamp) and value == value.normalize() and value.tz is None:
        return str(value.date())
    return str(value)


def _infer_offset(index: pd.DatetimeIndex) -> str | None:
    if len(index) < 3:
        return None
    with warnings.catch_warnings():  # pandas 3 warns that infer_freq will return an offset
        warnings.simplefilter("ignore")
        inferred = pd.infer_freq(index)
    return None if inferred is None else to_offset(inferred).freqstr


def _cannot_infer(index: pd.DatetimeIndex, name: str) -> ValueError:
    if len(index) < 3:
        return ValueError(
            f"cannot infer the frequency of {name} from {len(index)} timestamps; pass freq="
        )
    low, high = 3, len(index)  # the longest regular prefix, by bisection
    if _infer_offset(index[:3]) is None:
        return ValueError(
            f"cannot infer the frequency of {name}: its first timestamps "
            f"{', '.join(label(t) for t in index[:3])} have no common step; pass freq="
        )
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if _infer_offset(index[:middle]) else (low, middle - 1)
    return ValueError(
        f"cannot infer the frequency of {name}: its timestamps are regular "
        f"({_infer_offset(index[:low])!r}) up to {label(index[low - 1])} but not at "
        f"{label(index[low])}; pass freq= to treat missing timestamps as gaps"
    )


def _same_period(freq: Freq, index: pd.PeriodIndex) -> bool:
    try:
        return pd.PeriodDtype(freq) == index.dtype  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def on_grid(frame: pd.DataFrame, freq: Freq, name: str = "data") -> tuple[pd.DataFrame, Freq]:
    """``frame`` (sorted, unique index) reindexed onto the full grid of its frequency, and that
    frequency (given, or inferred from the timestamps when None).

    Raises:
        ValueError: For a timestamp off the grid, a frequency that cannot be inferred or one
            that contradicts the index, naming the timestamp.

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"a": [1.0, 2.0]}, index=pd.RangeIndex(0, 20, 10))
        >>> on_grid(frame, None)[1]  # the step of integer time
        10
        >>> stamps = pd.DatetimeIndex(["2001-01-01 00:00", "2001-01-01 12:00"])
        >>> on_grid(pd.DataFrame({"a": [1.0, 2.0]}, index=stamps), "D")
        Traceback (most recent call last):
        ...
        ValueError: timestamp 2001-01-01 12:00:00 of data is not on the 'D' grid ...
    """
    index = frame.index
    if isinstance(index, pd.PeriodIndex):
        if freq is not None and not _same_period(freq, index):
            raise ValueError(f"{name} has periods of {index.freqstr!r}, not freq={freq!r}")
        grid: pd.Index = pd.period_range(index[0], index[-1], freq=index.freq)
        freq = index.freqstr
    elif isinstance(index, pd.DatetimeIndex):
        if isinstance(freq, int):
            raise ValueError(f"freq={freq} is an integer step but {name} has timestamps")
        freq = to_offset(freq).freqstr if freq is not None else _infer_offset(index)
        if freq is None:
            raise _cannot_infer(index, name)
        grid = pd.date_range(index[0], periods=1, freq=freq)
        if grid[0] != index[0]:
            raise ValueError(
                f"timestamp {label(index[0])} of {name} is not on the {freq!r} grid; pass the "
                "right freq or resample"
            )
        grid = pd.date_range(index[0], index[-1], freq=freq)
    else:
        if freq is not None and not isinstance(freq, int):
            raise ValueError(f"freq={freq!r} names an offset but {name} has integer time steps")
        steps = np.diff(index.to_numpy())
        freq = freq or (int(np.gcd.reduce(steps)) if len(steps) else 1)
        grid = pd.RangeIndex(index[0], index[-1] + 1, freq)
    off_grid = index.difference(grid)
    if len(off_grid):
        raise ValueError(
            f"timestamp {label(off_grid[0])} of {name} is not on the {freq!r} grid that starts "
            f"at {label(index[0])} (irregular timestamps); pass the right freq or resample"
        )
    return frame.reindex(grid), freq


def future_index(index: pd.Index, freq: Freq, horizon: int) -> pd.Index:
    """The ``horizon`` timestamps after the last of ``index``, on the grid of ``freq``.

    Example:
        >>> import pandas as pd
        >>> future_index(pd.period_range("2000Q1", periods=4, freq="Q"), "Q-DEC", 2)
        PeriodIndex(['2001Q1', '2001Q2'], dtype='period[Q-DEC]')
        >>> list(future_index(pd.RangeIndex(10), 1, 3))
        [10, 11, 12]
    """
    last = index[-1]
    if isinstance(index, pd.PeriodIndex):
        return pd.period_range(last + 1, periods=horizon, freq=index.freq)
    if isinstance(index, pd.DatetimeIndex):
        assert isinstance(freq, str)
        return pd.date_range(last, periods=horizon + 1, freq=freq)[1:]
    step = 1 if freq is None else int(freq)
    return pd.RangeIndex(int(last) + step, int(last) + step * (horizon + 1), step)


def as_offset(freq: str) -> pd.DateOffset | None:
    """The pandas offset of a frequency alias, or None for a period alias that is no offset
    alias (``"Q-DEC"`` in pandas 3; pandas 2 takes it with a FutureWarning, silenced here).

    Example:
        >>> as_offset("30min")
        <30 * Minutes>
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            return to_offset(freq)
        except ValueError:
            return None


def nominal_step(freq: Freq) -> float:
    """Length of one step in days (``math.inf`` for integer steps or unknown frequencies).

    Example:
        >>> nominal_step("h"), nominal_step("QS-JAN")
        (0.041666666666666664, 90.0)
    """
    if freq is None or isinstance(freq, int):
        return math.inf
    offset = as_offset(freq)
    if offset is None:  # a period alias ("Q-DEC") that is no offset alias in pandas 3
        starts = pd.period_range("2001-01-01", periods=2, freq=freq).to_timestamp(how="start")
        return float((starts[1] - starts[0]) / pd.Timedelta(days=1))
    start = offset.rollforward(pd.Timestamp("2001-01-01"))
    return float(((start + offset) - start) / pd.Timedelta(days=1))
