"""The data file of ``snfseq backtest``: a CSV or parquet table read into checked series.

Two layouts (:func:`read_series`):

* wide: a time column and one column per series; ``columns`` picks the series (default: every
  other column but the covariates), ``covariates`` names columns of known covariates;
* long: one row per series and timestamp, with an id, a time and a value column; the file is
  long when it has the id column, or when asked to be.

The time column is ``time_column`` when given (dates, or integer time steps); otherwise
``"timestamp"``, or else the first column when it parses as dates; a wide file with neither
is indexed by its row numbers. ``"1959Q1"``-style labels become quarters. Mixed UTC offsets
(a local clock across daylight saving) are read as UTC instants. Then
:func:`snfseq.forecasting.prepare` puts the series on a regular grid, with its gap policy.

Example:
    >>> import tempfile, numpy as np, pandas as pd
    >>> frame = pd.DataFrame({"date": pd.date_range("2001-01-01", periods=6, freq="MS"),
    ...                       "a": np.arange(6.0), "b": np.arange(6.0) ** 2})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     frame.to_csv(f"{tmp}/data.csv", index=False)
    ...     series = read_series(f"{tmp}/data.csv")
    >>> series.history.freq, series.history.columns, series.time_note
    ('MS', ['a', 'b'], "column 'date' (the first column, parsed as dates; no 'timestamp' column)")
"""

from __future__ import annotations

__all__ = ["SUFFIXES", "SeriesFile", "read_series"]

import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from snfseq.forecasting import LongFormat, prepare
from snfseq.forecasting.frequency import Freq
from snfseq.forecasting.inputs import History, to_wide

#: The suffixes of the files :func:`read_series` reads.
SUFFIXES = (".csv", ".parquet", ".pq")
_DEFAULT_TIME = "timestamp"
_QUARTER = re.compile(r"^\d{4}-?Q[1-4]$")


@dataclass
class SeriesFile:
    """A data file read into series.

    Attributes:
        path: The file.
        history: The series (``frame``: ``DataFrame[T, D]`` on a regular grid) and ``freq``.
        covariates: ``DataFrame[T', K]`` of known covariates on the file's time axis, or None.
        long: Whether the file was long (one row per series and timestamp).
        time_column: The column the time axis came from (None: the row numbers).
        time_note: How the time axis was chosen, for the output.
        notes: Warnings met on the way (filled gaps, ignored columns), one line each.

    Example:
        >>> SeriesFile(Path("x.csv"), History(pd.DataFrame({"a": [1.0]}), 1)).time_note
        'row numbers'
    """

    path: Path
    history: History
    covariates: pd.DataFrame | None = None
    long: bool = False
    time_column: str | None = None
    time_note: str = "row numbers"
    notes: list[str] = field(default_factory=list)


def _shown(columns: Sequence[Any]) -> str:
    names = ", ".join(repr(c) for c in list(columns)[:12])
    return names + (", ..." if len(columns) > 12 else "")


def _read(path: Path) -> pd.DataFrame:
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError(f"{path} must end in {' or '.join(SUFFIXES)}")
    if not path.exists():
        raise FileNotFoundError(f"not found: {path}")
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path)
    else:
        frame = pd.read_parquet(path)
        if not isinstance(frame.index, pd.RangeIndex):  # a time index pandas wrote: a column
            frame = frame.reset_index()
    if frame.empty:
        raise ValueError(f"{path.name} has no rows")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _as_time(values: pd.Series, explicit: bool) -> pd.Index | None:
    """The values as a time axis (timestamps, quarters or integer steps), None if they are not.

    Integers are time steps only for a column named on purpose (a value column of integers is
    no calendar).
    """
    if isinstance(values.dtype, pd.PeriodDtype) or pd.api.types.is_datetime64_any_dtype(values):
        return pd.Index(values)
    if pd.api.types.is_integer_dtype(values):
        return pd.Index(values) if explicit else None
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return None
    text = values.astype(str)
    if text.map(lambda v: bool(_QUARTER.match(v))).all():
        return pd.PeriodIndex(text.str.replace("-", ""), freq="Q")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # format inference and mixed-offset notices
        try:
            parsed = pd.to_datetime(text)
            if not pd.api.types.is_datetime64_any_dtype(parsed):  # mixed UTC offsets
                parsed = pd.to_datetime(text, utc=True)
        except (ValueError, TypeError, OverflowError):
            return None
    return pd.Index(parsed)


def _time_axis(
    frame: pd.DataFrame, time_column: str | None, reserved: Sequence[str], name: str
) -> tuple[pd.Index | None, str | None, str]:
    """The time axis, its column, and how it was chosen."""
    if time_column is not None:
        if time_column not in frame.columns:
            raise ValueError(
                f"--time-column {time_column!r} is not a column of {name} "
                f"(columns: {_shown(frame.columns)})"
            )
        index = _as_time(frame[time_column], explicit=True)
        if index is None:
            first = frame[time_column].iloc[0]
            raise ValueError(
                f"--time-column {time_column!r} of {name} holds neither dates nor integer time "
                f"steps (first value {first!r})"
            )
        return index, time_column, f"column {time_column!r}"
    if _DEFAULT_TIME in frame.columns:
        index = _as_time(frame[_DEFAULT_TIME], explicit=True)
        if index is None:
            raise ValueError(
                f"column {_DEFAULT_TIME!r} of {name} holds neither dates nor integer time steps"
            )
        return index, _DEFAULT_TIME, f"column {_DEFAULT_TIME!r}"
    first = frame.columns[0]
    index = None if first in reserved else _as_time(frame[first], explicit=False)
    if index is not None:
        why = f"the first column, parsed as dates; no {_DEFAULT_TIME!r} column"
        return index, first, f"column {first!r} ({why})"
    return None, None, "row numbers"


def _pick(available: Sequence[Any], wanted: Sequence[str], option: str, name: str) -> None:
    missing = [c for c in wanted if c not in set(available)]
    if missing:
        raise ValueError(f"{option}: {name} has no {missing[0]!r} (has: {_shown(available)})")


def _long(
    frame: pd.DataFrame,
    long: LongFormat,
    index: pd.Index,
    columns: Sequence[str] | None,
    name: str,
    notes: list[str],
) -> pd.DataFrame:
    _pick(frame.columns, [long.value], "--value-column", name)
    ids = frame[long.id].astype(str)
    if columns:
        _pick(list(dict.fromkeys(ids)), columns, "--columns", name)
    rows = pd.DataFrame({long.id: ids, long.time: index, long.value: frame[long.value]})
    rows = rows[rows[long.id].isin(columns)] if columns else rows
    others = [c for c in frame.columns if c not in (long.id, long.time, long.value)]
    if others:
        notes.append(f"ignored columns {_shown(others)} of long {name}")
    wide = to_wide(rows, long, name)
    return wide[list(columns)] if columns else wide


def read_series(
    path: str | os.PathLike[str],
    *,
    time_column: str | None = None,
    id_column: str = "id",
    value_column: str = "value",
    long: bool = False,
    columns: Sequence[str] | None = None,
    covariates: Sequence[str] | None = None,
    freq: Freq = None,
    max_gap: int = 2,
) -> SeriesFile:
    """Reads and checks the series of a CSV or parquet file (see the module for the rules).

    Args:
        path: A ``.csv``, ``.parquet`` or ``.pq`` file.
        time_column: The column of the time axis (None: ``"timestamp"`` or the first column).
        id_column, value_column: The columns of long data.
        long: Read the file as long even without the id column (which is then an error).
        columns: The series to keep (wide: columns; long: ids); None keeps them all.
        covariates: Columns of known covariates (wide files only).
        freq: The frequency; inferred when None.
        max_gap: Longest run of missing values filled by interpolation.

    Returns:
        The :class:`SeriesFile`.

    Raises:
        ValueError: One line naming the option, column or value at fault.
        FileNotFoundError: For a missing file.

    Example:
        >>> import tempfile, pandas as pd
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     pd.DataFrame({"a": [1.0, 2.0, 4.0]}).to_csv(f"{tmp}/d.csv", index=False)
        ...     read_series(f"{tmp}/d.csv", columns=["a", "b"])
        Traceback (most recent call last):
        ...
        ValueError: --columns: d.csv has no 'b' (has: 'a')
    """
    file = Path(path)
    frame = _read(file)
    name, notes = file.name, list[str]()
    is_long = long or id_column in frame.columns
    if is_long and id_column not in frame.columns:
        raise ValueError(
            f"--id-column {id_column!r} is not a column of long {name} "
            f"(columns: {_shown(frame.columns)})"
        )
    if is_long and covariates:
        raise ValueError(f"--covariates needs a wide file (one column per series); {name} is long")
    reserved = [id_column, value_column] if is_long else []
    index, used, note = _time_axis(frame, time_column, reserved, name)
    if is_long:
        if index is None:
            raise ValueError(
                f"long {name} has no {_DEFAULT_TIME!r} column and its first column is not dates; "
                "name the time column with --time-column"
            )
        layout = LongFormat(id_column, str(used), value_column)
        wide = _long(frame, layout, index, columns, name, notes)
    else:
        others = [c for c in frame.columns if c != used]
        _pick(others, covariates or [], "--covariates", name)
        _pick(others, columns or [], "--columns", name)
        chosen = list(columns or [c for c in others if c not in set(covariates or [])])
        both = set(chosen) & set(covariates or [])
        if both:
            raise ValueError(f"column {sorted(both)[0]!r} is both a series and a covariate")
        wide = frame[chosen].set_axis(index, axis=0) if index is not None else frame[chosen]
    if isinstance(freq, str) and freq.isdigit() and not isinstance(wide.index, pd.DatetimeIndex):
        freq = int(freq)  # the step of integer time
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = prepare(wide, freq, max_gap=max_gap, name=name)
    notes += [str(warning.message) for warning in caught]
    known = None
    if covariates:
        known = frame[list(covariates)]
        known = known.set_axis(index, axis=0) if index is not None else known
        prepare(known, history.freq, max_gap=0, name="covariates")  # known means no gaps
    return SeriesFile(file, history, known, is_long, used, note, notes)
