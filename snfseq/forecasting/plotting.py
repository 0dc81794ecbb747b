"""The figure of a forecast on real time: one panel per series with its history, median, 50%
and 90% intervals, and the truth (what :meth:`snfseq.forecasting.Prediction.plot` draws).

matplotlib is imported on first use; figures come back detached from pyplot, so that a
notebook shows them once and nothing stays open.

Example:
    >>> import numpy as np, pandas as pd
    >>> index = pd.date_range("2001-01-01", periods=3, freq="D")
    >>> levels = [0.05, 0.25, 0.5, 0.75, 0.95]
    >>> bands = pd.concat([pd.DataFrame({"load": np.full(3, q)}, index=index) for q in levels],
    ...                   axis=1, keys=levels)
    >>> figure = plot_bands(bands, "demo model")
    >>> figure.axes[0].get_title(), figure._suptitle.get_text()
    ('load', 'demo model')
"""

from __future__ import annotations

__all__ = ["LEVELS", "plot_bands"]

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The quantile levels the bands are drawn from: 90% and 50% intervals and the median.
LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)


def _x(index: pd.Index) -> Any:
    """Plottable positions: periods as their start timestamps."""
    return index.to_timestamp(how="start") if isinstance(index, pd.PeriodIndex) else index


def _columns(frame: pd.DataFrame | None, name: str, needed: Sequence[Any]) -> None:
    if frame is None:
        return
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a wide DataFrame, got {type(frame).__name__}")
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} has no column {missing[0]!r}")


def plot_bands(
    bands: pd.DataFrame,
    title: str,
    history: pd.DataFrame | None = None,
    truth: pd.DataFrame | None = None,
    *,
    series: Sequence[Any] | None = None,
) -> Figure:
    """History, median, 50% and 90% intervals and truth of each series.

    Args:
        bands: Quantiles on the forecast timestamps, columns ``(level, series)`` for every
            level of :data:`LEVELS`.
        title: The figure's title (the model, its variant, what is shown).
        history: Wide DataFrame of the observed past.
        truth: Wide DataFrame of what happened, on (part of) the forecast timestamps.
        series: The series to show (default all).

    Returns:
        A matplotlib ``Figure``, one panel per series titled with its name.

    Raises:
        ValueError: For a series that the bands, history or truth lack.

    Example:
        >>> import pandas as pd
        >>> bands = pd.concat([pd.DataFrame({"x": [q, q]}) for q in LEVELS], axis=1, keys=LEVELS)
        >>> plot_bands(bands, "m", truth=pd.DataFrame({"y": [0.0, 1.0]}))
        Traceback (most recent call last):
        ...
        ValueError: truth has no column 'x'
    """
    import matplotlib.pyplot as plt

    names = list(bands[LEVELS[0]].columns)
    chosen = list(names if series is None else series)
    unknown = [c for c in chosen if c not in names]
    if unknown or not chosen:
        raise ValueError(f"series {unknown[:1] or chosen!r} not among {names}")
    _columns(history, "history", chosen)
    _columns(truth, "truth", chosen)
    x = _x(bands.index)

    figure = plt.figure(figsize=(9, 2.2 * len(chosen)), layout="constrained")
    plt.close(figure)
    axes = np.atleast_1d(figure.subplots(len(chosen), 1, sharex=True, squeeze=False)[:, 0])
    for axis, column in zip(axes, chosen, strict=True):
        if history is not None:
            axis.plot(_x(history.index), history[column].to_numpy(), color="0.35", label="history")
        for (low, high), alpha, name in (((0.05, 0.95), 0.2, "90%"), ((0.25, 0.75), 0.45, "50%")):
            axis.fill_between(
                x,
                bands[low][column],
                bands[high][column],
                color="C0",
                alpha=alpha,
                linewidth=0,
                label=f"{name} interval",
            )
        axis.plot(x, bands[0.5][column], color="C0", label="median")
        if truth is not None:
            axis.plot(
                _x(truth.index), truth[column].to_numpy(), color="k", linestyle="--", label="truth"
            )
        axis.set_title(str(column), fontsize="medium")
    axes[0].legend(loc="upper left", fontsize="small", ncol=5)
    figure.suptitle(title)
    axes[-1].set_xlabel("time")
    return figure
