"""The report of ``snfseq backtest``: one table of scores per model, in markdown with the best
marked, the figures, and the folder they are written to.

:func:`headline` reduces :func:`snfseq.forecasting.summary` to one row per model and one column
per metric: the mean over series of the scale-free scores (``crps_scaled``, coverage), the
joint scaled energy and variogram scores, and, for a single series, CRPS, MAE and MSE in its
units. Lower is better except coverage, best when closest to its nominal level.

Example:
    >>> import numpy as np
    >>> from snfseq.forecasting import RandomWalkForecaster, summary
    >>> data = np.random.default_rng(0).normal(size=(40, 2)).cumsum(0)
    >>> table = RandomWalkForecaster(3).backtest(data, windows=2, num_samples=20)
    >>> list(headline(summary(table), series=2).columns)
    ['crps_scaled', 'coverage_50', 'coverage_90', 'energy_score_scaled', 'variogram_score_scaled']
"""

from __future__ import annotations

__all__ = [
    "FILES",
    "MAX_PANELS",
    "headline",
    "last_window_frames",
    "plot_scores",
    "to_markdown",
    "write_report",
    "written",
]

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from snfseq.files import atomic_write, json_ready
from snfseq.forecasting import Prediction, summary

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The files of a report folder.
FILES = (
    "backtest.csv",
    "summary.csv",
    "summary_by_series.csv",
    "summary.md",
    "report.json",
    "forecast.png",
    "scores.png",
)
# Scores in their own units: comparable across models only for one series.
_IN_UNITS = ("crps", "mae", "mse")
_HEADLINE = (
    "crps",
    "crps_scaled",
    "mae",
    "mse",
    "coverage_50",
    "coverage_90",
    "energy_score_scaled",
    "variogram_score_scaled",
)
_NOMINAL = {"coverage_50": 0.5, "coverage_90": 0.9}
#: The most series :func:`write_report` draws in ``forecast.png``.
MAX_PANELS = 8


def headline(by_series: pd.DataFrame, series: int) -> pd.DataFrame:
    """One row per model, one column per metric (see the module) of a backtest summary.

    Args:
        by_series: :func:`snfseq.forecasting.summary`, index ``(model, metric)``.
        series: Number of series ``D`` (scores in units are kept only for ``D = 1``).

    Example:
        >>> import pandas as pd
        >>> by_series = pd.DataFrame({"a": [2.0, 0.4], "all series": [float("nan"), 0.4]},
        ...     index=pd.MultiIndex.from_product([["m"], ["crps", "coverage_50"]],
        ...                                      names=["model", "metric"]))
        >>> headline(by_series, series=1)
           crps  coverage_50
        m   2.0          0.4
    """
    values = by_series["all series"].copy()
    if "joint" in by_series:
        values = values.fillna(by_series["joint"])
    if series == 1:
        own = [c for c in by_series.columns if c not in ("joint", "all series")]
        values = values.fillna(by_series[own[0]])
    table = values.unstack("metric")
    metrics = [m for m in _HEADLINE if m in table and not (series > 1 and m in _IN_UNITS)]
    table = table[metrics].dropna(axis=1, how="all")
    table.index.name, table.columns.name = None, None
    return table.reindex(list(dict.fromkeys(by_series.index.get_level_values("model"))))


def _best(column: pd.Series) -> pd.Series:
    """Whether each entry is the best of its column (ties all best)."""
    distance = (column - _NOMINAL[str(column.name)]).abs() if column.name in _NOMINAL else column
    return distance == distance.min()


def to_markdown(table: pd.DataFrame) -> str:
    """A markdown table of :func:`headline`, models as rows, the best per metric in bold.

    Example:
        >>> import pandas as pd
        >>> print(to_markdown(pd.DataFrame({"crps": [1.0, 2.0]}, index=["a", "b"])))
        | model | crps |
        |---|---:|
        | a | **1** |
        | b | 2 |
        <BLANKLINE>
        Lower is better; coverage is best closest to its level (0.5, 0.9). Best in bold.
    """
    best = table.apply(_best)
    lines = [
        "| model | " + " | ".join(map(str, table.columns)) + " |",
        "|---|" + "---:|" * len(table.columns),
    ]
    for model, row in table.iterrows():
        cells = []
        for metric, value in row.items():
            text = "" if pd.isna(value) else f"{value:.4g}"
            cells.append(f"**{text}**" if text and best.loc[model, metric] else text)
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    note = "Lower is better; coverage is best closest to its level (0.5, 0.9). Best in bold."
    return "\n".join([*lines, "", note])


def plot_scores(table: pd.DataFrame) -> Figure:
    """Scaled CRPS by forecast step, one line per model (mean over windows and series).

    Example:
        >>> import pandas as pd
        >>> table = pd.DataFrame({"model": "m", "window": 0, "cutoff": 9, "series": "a",
        ...                       "step": [1, 2], "metric": "crps_scaled", "value": [1.0, 2.0]})
        >>> plot_scores(table).axes[0].get_xlabel()
        'forecast step'
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    crps = table[table["metric"] == "crps_scaled"]
    means = crps.groupby(["model", "step"], sort=False)["value"].apply(lambda v: np.nanmean(v))
    figure = Figure(figsize=(7, 4), layout="constrained")
    axis = figure.subplots()
    for model in dict.fromkeys(crps["model"]):
        steps = means.loc[model]
        axis.plot(steps.index.astype(int), steps.to_numpy(), marker="o", label=model)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel("forecast step")
    axis.set_ylabel("CRPS / mean |one-step change|")
    axis.set_title("Scaled CRPS by forecast step (mean over windows and series)")
    axis.legend(fontsize="small")
    return figure


def write_report(
    folder: str | os.PathLike[str],
    table: pd.DataFrame,
    prediction: Prediction,
    history: pd.DataFrame,
    truth: pd.DataFrame,
    attrs: dict[str, Any],
) -> str:
    """Writes :data:`FILES` into ``folder`` at once: a new folder replaces it when complete, so
    a failure leaves the old folder (or none) and no partial report.

    Args:
        folder: The report folder.
        table: The tidy backtest table of every model, the main model first.
        prediction: The main model's forecast of the last window.
        history: What the plot shows before that window (``DataFrame[T, D]``).
        truth: The last window's observations (``DataFrame[H, D]``).
        attrs: Settings and facts of the run for ``report.json`` (the summary is added).

    Returns:
        The markdown summary.
    """
    by_series = summary(table)
    series = table.loc[table["series"] != "joint", "series"].nunique()
    scores = headline(by_series, series)
    markdown = to_markdown(scores)
    shown = prediction.columns[:MAX_PANELS]
    report = attrs | {"summary": scores.to_dict(orient="index"), "files": list(FILES)}
    with atomic_write(folder) as staging:
        staging.mkdir()
        table.to_csv(staging / "backtest.csv", index=False)
        scores.rename_axis("model").to_csv(staging / "summary.csv")
        by_series.to_csv(staging / "summary_by_series.csv")
        (staging / "summary.md").write_text(markdown + "\n")
        (staging / "report.json").write_text(
            json.dumps(json_ready(report), indent=2, allow_nan=False) + "\n"
        )
        figure = prediction.plot(history=history, truth=truth, series=shown)
        figure.savefig(staging / "forecast.png", dpi=100)
        plot_scores(table).savefig(staging / "scores.png", dpi=100)
        missing = [name for name in FILES if not (staging / name).exists()]
        if missing:
            raise ValueError(f"report file {missing[0]} was not written")
    return markdown


def last_window_frames(
    frame: pd.DataFrame, cutoff: int, horizon: int, shown: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``shown`` steps before ``cutoff`` and the ``horizon`` steps from it.

    Example:
        >>> import pandas as pd
        >>> past, truth = last_window_frames(pd.DataFrame({"a": range(10)}), 8, 2, 3)
        >>> past["a"].tolist(), truth["a"].tolist()
        ([5, 6, 7], [8, 9])
    """
    return frame.iloc[max(cutoff - shown, 0) : cutoff], frame.iloc[cutoff : cutoff + horizon]


def written(folder: str | os.PathLike[str]) -> str:
    """The line that says what was written where.

    Example:
        >>> written("report")
        'wrote backtest.csv, summary.csv, summary_by_series.csv, summary.md, report.json, forecast.png and scores.png into report'
    """  # noqa: E501
    return f"wrote {', '.join(FILES[:-1])} and {FILES[-1]} into {Path(folder)}"
