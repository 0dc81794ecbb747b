"""What the four series examples share: a GRU-NF and three baselines on the same windows.

``forecast_vic_elec.py``, ``forecast_epf.py``, ``forecast_pedestrian.py`` and
``forecast_macrodata.py`` each load one dataset of :func:`snfseq.data.load_series`, choose its
slice, horizon, context and model sizes, and call :func:`compare`, which

1. trains a :class:`~snfseq.forecasting.FlowForecaster` (GRU-NF) and a
   :class:`~snfseq.forecasting.GaussianGRUForecaster` (DeepAR-like) once, on the data before
   the first backtest window, with the dataset's covariates and calendar features; the
   seasonal-naive and random-walk baselines have nothing to learn;
2. scores all four on the same rolling windows (``backtest(use_fitted=True)``: every window
   sees only the data before it, the models were trained on none of them);
3. prints the mean scores with a one-line verdict, and writes ``<output>/backtest.csv`` (the
   tidy table of every score) and ``<output>/forecast.png`` (the GRU-NF forecast of the last
   window with its truth).

Not an example itself; it sits beside them so that each script imports it from its own folder.
"""

from __future__ import annotations

__all__ = ["QUICK_FIT", "compare", "parse_args", "score_table", "verdict"]

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from snfseq.files import atomic_write  # noqa: E402
from snfseq.forecasting import (  # noqa: E402
    FlowForecaster,
    Forecaster,
    GaussianGRUForecaster,
    RandomWalkForecaster,
    SeasonalNaiveForecaster,
    summary,
)
from snfseq.forecasting.backtesting import window_cutoffs  # noqa: E402

#: ``--quick`` sizes: a tiny flow and GRU trained for one epoch, 2 windows, few samples.
QUICK_FIT: dict[str, Any] = {
    "flow": {"hidden": 8, "layers": 1, "condition_size": 8, "transforms": 2, "flow_hidden": (16,)},
    "gru": {"hidden": 8, "layers": 1},
    "fit": {"epochs": 1},
    "windows": 2,
    "num_samples": 50,
}

# Printed columns: (label, metric, column of forecasting.summary); lower is better, except
# coverage, which should match its level.
_CRPS_UNITS = ("CRPS", "crps", None)
_SCORES = (
    ("CRPS (scaled)", "crps_scaled", "all series"),
    ("energy (scaled)", "energy_score_scaled", "joint"),
    ("variogram (scaled)", "variogram_score_scaled", "joint"),
)
_COVERAGE = (("cover 50%", "coverage_50", 0.5), ("cover 90%", "coverage_90", 0.9))


def parse_args(doc: str, output: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options every series example takes: ``--quick``, ``--output`` (default ``output``),
    ``--epochs``, ``--windows`` and ``--samples`` (None: the script's own sizes); ``argv``
    defaults to the command line.

    Example:
        >>> args = parse_args("Forecasts something.", "out", ["--quick", "--epochs", "3"])
        >>> args.quick, args.output, args.epochs, args.windows
        (True, PosixPath('out'), 3, None)
    """
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny models, 2 windows (seconds)")
    parser.add_argument("--output", type=Path, default=Path(output), help="folder of the files")
    parser.add_argument("--epochs", type=int, help="training epochs of the two learned models")
    parser.add_argument("--windows", type=int, help="backtest windows")
    parser.add_argument("--samples", type=int, help="sample paths per forecast")
    return parser.parse_args(argv)


def score_table(table: pd.DataFrame) -> pd.DataFrame:
    """Mean scores of a backtest table, one row per model: scaled CRPS, scaled energy and
    variogram scores (more than one series), raw CRPS (one series), and coverage.

    "Scaled" divides each series by its mean absolute one-step change before the window, so
    series of different units count alike (the scale of MASE).

    Example:
        >>> import numpy as np
        >>> data = np.random.default_rng(0).normal(size=(40, 2)).cumsum(0)
        >>> table = RandomWalkForecaster(3).backtest(data, windows=2, num_samples=20)
        >>> list(score_table(table).columns)
        ['CRPS (scaled)', 'energy (scaled)', 'variogram (scaled)', 'cover 50%', 'cover 90%']
    """
    means = summary(table)
    series = [s for s in means.columns if s not in ("joint", "all series")]
    columns = [_SCORES[0]] if len(series) == 1 else list(_SCORES)
    if len(series) == 1:
        columns.insert(0, (_CRPS_UNITS[0], _CRPS_UNITS[1], series[0]))
    rows = {}
    for model in dict.fromkeys(table["model"]):
        scores = means.loc[model]
        row = {label: scores.loc[metric, column] for label, metric, column in columns}
        row |= {label: scores.loc[metric, "all series"] for label, metric, _ in _COVERAGE}
        rows[model] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def verdict(scores: pd.DataFrame) -> str:
    """Which model is best on each score of :func:`score_table` (the lowest; for coverage the
    nearest to its level), one line grouped by model.

    Example:
        >>> scores = pd.DataFrame({"CRPS": [0.8, 0.9], "energy": [1.0, 2.0],
        ...                        "cover 90%": [0.7, 0.95]}, index=["flow", "walk"])
        >>> verdict(scores)
        'verdict: flow best on CRPS and energy; walk on cover 90% (nearest 0.9)'
    """
    levels = {label: level for label, _, level in _COVERAGE}
    wins: dict[Any, list[str]] = {}
    for label in scores.columns:
        if label in levels:
            winner = (scores[label] - levels[label]).abs().idxmin()
            label = f"{label} (nearest {levels[label]:g})"
        else:
            winner = scores[label].idxmin()
        wins.setdefault(winner, []).append(label)
    parts = [
        f"{model}{' best' if k == 0 else ''} on "
        + (f"{', '.join(labels[:-1])} and {labels[-1]}" if len(labels) > 1 else labels[0])
        for k, (model, labels) in enumerate(wins.items())
    ]
    return "verdict: " + "; ".join(parts)


def _forecasters(
    prediction_length: int,
    context_length: int,
    season: int,
    flow_options: dict[str, Any],
    gru_options: dict[str, Any],
    drift: bool,
) -> list[Forecaster]:
    return [
        FlowForecaster(prediction_length, context_length, **flow_options),
        GaussianGRUForecaster(prediction_length, context_length, **gru_options),
        SeasonalNaiveForecaster(prediction_length, season_length=season),
        RandomWalkForecaster(prediction_length, drift=drift),
    ]


def compare(
    args: argparse.Namespace,
    target: pd.DataFrame,
    covariates: pd.DataFrame | None,
    *,
    prediction_length: int,
    context_length: int,
    season: int,
    windows: int,
    flow_options: dict[str, Any],
    gru_options: dict[str, Any],
    fit_options: dict[str, Any],
    num_samples: int = 200,
    drift: bool = False,
    plot_series: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Trains, backtests, prints and writes the files (see the module); ``--quick`` replaces
    the sizes given by :data:`QUICK_FIT`, and ``--epochs``, ``--windows``, ``--samples``
    override them.

    Args:
        args: The options of :func:`parse_args`.
        target: ``DataFrame[T, D]`` on a regular time index, the series modelled jointly.
        covariates: ``DataFrame[T, C]`` known in advance on the same index, or None.
        prediction_length: Steps per forecast ``H``.
        context_length: Steps each learned model conditions on.
        season: Steps per season, for the seasonal naive forecast.
        windows: Backtest windows, ``H`` apart, the last one ending with ``target``.
        flow_options: :class:`~snfseq.forecasting.FlowForecaster` model options.
        gru_options: :class:`~snfseq.forecasting.GaussianGRUForecaster` options.
        fit_options: ``fit`` options of both (``epochs``, ``batch_size``...).
        num_samples: Sample paths per forecast.
        drift: Give the random walk a drift (for trending series).
        plot_series: The series drawn in ``forecast.png`` (default all).

    Returns:
        The tidy backtest table of all four models (also in ``backtest.csv``).
    """
    if args.quick:
        flow_options, gru_options = QUICK_FIT["flow"], QUICK_FIT["gru"]
        fit_options, windows = QUICK_FIT["fit"], QUICK_FIT["windows"]
        num_samples = QUICK_FIT["num_samples"]
    fit_options = fit_options | ({} if args.epochs is None else {"epochs": args.epochs})
    windows = args.windows or windows
    num_samples = args.samples or num_samples
    torch.set_num_threads(1)  # small recurrent models: more threads cost more than they give

    horizon = prediction_length
    first = window_cutoffs(len(target), horizon, windows, horizon)[0]
    train = target.iloc[:first]
    print(
        f"{len(target.columns)} series, {len(target)} steps {target.index[0]} .. "
        f"{target.index[-1]}; covariates: "
        f"{'none' if covariates is None else ', '.join(map(str, covariates.columns))}"
    )
    print(
        f"trained on {len(train)} steps (to {train.index[-1]}); {windows} windows of "
        f"{horizon} steps from context {context_length}, {num_samples} samples each"
    )
    forecasters = _forecasters(horizon, context_length, season, flow_options, gru_options, drift)
    tables = []
    for forecaster in forecasters:
        started = time.perf_counter()
        known = covariates if forecaster.takes_features else None
        if isinstance(forecaster, FlowForecaster | GaussianGRUForecaster):
            forecaster.fit(train, known, progress=not args.quick, seed=0, **fit_options)
        else:
            forecaster.fit(train)
        tables.append(
            forecaster.backtest(
                target, known, windows=windows, use_fitted=True, num_samples=num_samples
            )
        )
        print(f"  {forecaster.variant():28s} {time.perf_counter() - started:6.1f} s")
    table = pd.concat(tables, ignore_index=True)

    scores = score_table(table)
    # The table names each model "<class> (<variant>)"; the variant alone says which it is.
    scores = scores.rename(
        index={f"{type(f).__name__} ({f.variant()})": f.variant() for f in forecasters}
    )
    print(scores.to_string(float_format="{:.3f}".format))
    print(verdict(scores))

    flow = forecasters[0]
    prediction = flow.predict(target.iloc[:-horizon], covariates, num_samples=num_samples, seed=0)
    figure = prediction.plot(truth=target.iloc[-horizon:], series=plot_series)
    args.output.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.output / "forecast.png") as partial:
        figure.savefig(partial, format="png", dpi=100)
    with atomic_write(args.output / "backtest.csv") as partial:
        table.to_csv(partial, index=False)
    print(f"wrote forecast.png and backtest.csv into {args.output}")
    return table
