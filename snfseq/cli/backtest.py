"""``snfseq backtest DATA -H H -o REPORT_DIR``: rolling-origin backtest of a forecaster on a
CSV or parquet file, against the seasonal naive and random-walk baselines on the same windows.

Everything is checked before any training (the file, its columns, the numbers, whether the
history is long enough for the windows of every model); then each model is trained and
scored (:meth:`snfseq.forecasting.Forecaster.backtest`), and the report folder is written at
once (:func:`snfseq.cli.report.write_report`).

Context length, when not given: ``max(2 * season, 2 * H)`` steps for the trained models
(``flow``, ``gaussian-gru``), the season coming from the frequency (24 for hourly data, 7 for
daily, 4 for quarterly) or ``--season-length``; the baselines use all the history before each
window. Without ``--refit`` each model is trained once, on the data before the first window.

Example:
    >>> from snfseq.cli import build_parser
    >>> args = build_parser().parse_args(["backtest", "data.csv", "-H", "4", "-o", "report"])
    >>> args.model, args.windows, args.samples, args.seed, args.context_length
    ('flow', 5, 100, 0, None)
"""

from __future__ import annotations

__all__ = ["MODELS", "add_parser", "default_context", "run"]

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from snfseq.cli.checks import check_report_folder
from snfseq.cli.common import reading
from snfseq.cli.datafile import SeriesFile, read_series
from snfseq.cli.report import last_window_frames, write_report, written
from snfseq.forecasting import (
    FlowForecaster,
    Forecaster,
    GaussianGRUForecaster,
    Prediction,
    RandomWalkForecaster,
    SeasonalNaiveForecaster,
    season_length,
)
from snfseq.forecasting.backtesting import window_cutoffs
from snfseq.transfer import VARIANTS, get_refinement
from snfseq.version import __version__

#: The ``--model`` choices and the forecaster of each.
MODELS: dict[str, type[Forecaster]] = {
    "flow": FlowForecaster,
    "gaussian-gru": GaussianGRUForecaster,
    "seasonal-naive": SeasonalNaiveForecaster,
    "random-walk": RandomWalkForecaster,
}
_TRAINED = ("flow", "gaussian-gru")


def add_parser(commands: Any) -> None:
    """Adds ``backtest`` to ``commands``, the subparsers of the ``snfseq`` parser.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser()
        >>> add_parser(parser.add_subparsers(dest="command"))
        >>> parser.parse_args(["backtest", "d.parquet", "-H", "2", "-o", "r", "--long"]).long
        True
    """
    backtest = commands.add_parser(
        "backtest",
        help="rolling-origin backtest of a forecaster on a CSV or parquet file",
        description="Trains a forecaster on the data before the first of --windows forecast "
        "origins (or before each, --refit), scores it on every window against the seasonal "
        "naive and random-walk baselines, and writes a report folder at once.\n\n"
        "example: snfseq backtest prices.csv -H 24 -o report/ --covariates load",
    )
    backtest.add_argument("data", help="a .csv or .parquet file, wide or long")
    backtest.add_argument(
        "--prediction-length", "-H", type=int, required=True, metavar="H", help="steps to forecast"
    )
    backtest.add_argument(
        "--output", "-o", required=True, metavar="REPORT_DIR", help="report folder (created)"
    )
    data = backtest.add_argument_group("data")
    data.add_argument(
        "--time-column", help="default: 'timestamp', else the first column if it holds dates"
    )
    data.add_argument("--id-column", default="id", help="long files: the series id column")
    data.add_argument("--value-column", default="value", help="long files: the value column")
    data.add_argument("--long", action="store_true", help="long file even without --id-column")
    data.add_argument("--columns", help="series to forecast, comma-separated (default: all)")
    data.add_argument(
        "--covariates", help="known covariate columns, comma-separated, wide files (default: none)"
    )
    data.add_argument("--freq", help="pandas frequency alias (default: inferred)")
    data.add_argument("--max-gap", type=int, default=2, help="longest gap interpolated, steps")
    model = backtest.add_argument_group("model")
    model.add_argument("--model", default="flow", choices=list(MODELS), help="the forecaster")
    model.add_argument(
        "--context-length",
        type=int,
        help="steps a forecast conditions on (default: max(2 x season, 2 x H) for flow and "
        "gaussian-gru; all the history for the baselines)",
    )
    model.add_argument(
        "--season-length", type=int, help="steps in a season (default: from the frequency)"
    )
    model.add_argument("--epochs", type=int, default=50, help="most training epochs")
    model.add_argument(
        "--batches-per-epoch",
        type=int,
        help="an epoch is this many batches of 64 windows (default: every window once; set "
        "it, e.g. 50, on long histories)",
    )
    model.add_argument(
        "--hidden", type=int, help="recurrent units (flow, gaussian-gru; default: the model's)"
    )
    model.add_argument(
        "--refinement", default="none", choices=list(VARIANTS), help="flow only: GRU-SNF kernel"
    )
    model.add_argument("--samples", type=int, default=100, help="sample paths per forecast")
    windows = backtest.add_argument_group("windows")
    windows.add_argument("--windows", type=int, default=5, help="forecast origins")
    windows.add_argument("--stride", type=int, help="steps between origins (default: H)")
    windows.add_argument("--refit", action="store_true", help="retrain before every window")
    windows.add_argument("--no-baselines", action="store_true", help="score the model alone")


def default_context(horizon: int, season: int) -> int:
    """The context length of the trained models when none is given: two seasons or two
    horizons, whichever is longer.

    Example:
        >>> default_context(horizon=24, season=24), default_context(horizon=4, season=1)
        (48, 8)
    """
    return max(2 * season, 2 * horizon)


def _names(text: str | None, option: str) -> list[str] | None:
    if text is None:
        return None
    names = [name.strip() for name in text.split(",")]
    if not all(names) or len(set(names)) != len(names):
        raise ValueError(f"{option} must be distinct comma-separated names, got {text!r}")
    return names


@dataclass
class _Run:
    """A model to backtest: the forecaster, its covariates, its options."""

    forecaster: Forecaster
    covariates: pd.DataFrame | None
    fit_options: dict[str, Any]
    predict_options: dict[str, Any]


def _forecaster(name: str, args: argparse.Namespace, freq: Any, season: int) -> Forecaster:
    horizon = args.prediction_length
    if name == "seasonal-naive":
        return SeasonalNaiveForecaster(horizon, season, args.context_length, freq)
    if name == "random-walk":
        return RandomWalkForecaster(horizon, args.context_length, freq)
    context = args.context_length or default_context(horizon, season)
    sizes = {} if args.hidden is None else {"hidden": args.hidden}
    return MODELS[name](horizon, context, freq, **sizes)  # type: ignore[call-arg]


def _plan(args: argparse.Namespace) -> tuple[SeriesFile, list[_Run], list[int]]:
    """Every check, before any training: the data, the models and their windows."""
    check_report_folder(args.output, args.force)
    if args.device not in ("auto", "cpu") and args.model != "flow":
        raise ValueError(
            f"--device {args.device} applies to --model flow; {args.model} runs on the CPU"
        )
    if args.refinement != "none" and args.model != "flow":
        raise ValueError(f"--refinement {args.refinement} needs --model flow, not {args.model}")
    if args.hidden is not None and args.model not in _TRAINED:
        raise ValueError(f"--hidden sets flow or gaussian-gru, not --model {args.model}")
    covariates = _names(args.covariates, "--covariates")
    with reading(args.data, "a CSV or parquet table"):
        data = read_series(
            args.data,
            time_column=args.time_column,
            id_column=args.id_column,
            value_column=args.value_column,
            long=args.long,
            columns=_names(args.columns, "--columns"),
            covariates=covariates,
            freq=args.freq,
            max_gap=args.max_gap,
        )
    freq = data.history.freq
    season = args.season_length or season_length(freq)
    main = _forecaster(args.model, args, freq, season)
    if covariates and not main.takes_features:
        raise ValueError(f"--covariates: --model {args.model} takes no covariates")
    progress = {"progress": not args.quiet, "seed": args.seed}
    trained: dict[str, Any] = {"epochs": args.epochs} if args.model in _TRAINED else {}
    if args.model == "flow" and args.device != "auto":
        trained["device"] = args.device
    if args.batches_per_epoch and args.model in _TRAINED:
        trained["num_batches_per_epoch"] = args.batches_per_epoch
    refinement = get_refinement(args.refinement)
    runs = [
        _Run(
            main,
            data.covariates,
            progress | trained,
            {} if refinement is None else {"refinement": refinement},
        )
    ]
    if not args.no_baselines:
        baselines = [
            SeasonalNaiveForecaster(args.prediction_length, season, freq=freq),
            RandomWalkForecaster(args.prediction_length, freq=freq),
        ]
        runs += [_Run(b, None, progress, {}) for b in baselines if type(b) is not type(main)]
    length, horizon = len(data.history.frame), args.prediction_length
    stride = args.stride or horizon
    cutoffs: list[int] = []
    for run in runs:
        try:
            cutoffs = window_cutoffs(
                length, horizon, args.windows, stride, *run.forecaster.min_history(fitting=True)
            )
        except ValueError as error:
            raise ValueError(
                f"{data.path.name} is too short ({length} timestamps) for "
                f"{type(run.forecaster).__name__}: {error}; lower --windows, --stride or "
                "--context-length"
            ) from None
    first = data.history.frame.iloc[: cutoffs[0]]
    for column in first.columns[(first.nunique() == 1).to_numpy()]:  # no scale: no forecast
        raise ValueError(
            f"series {column!r} of {data.path.name} is constant ({first[column].iloc[0]:g}) "
            "before the first window; leave it out with --columns"
        )
    return data, runs, cutoffs


def _backtest(
    run: _Run, frame: pd.DataFrame, cutoffs: list[int], args: argparse.Namespace
) -> pd.DataFrame:
    """The tidy table of one model. Training happens here (once, or before every window with
    ``--refit``, as :meth:`~snfseq.forecasting.Forecaster.backtest` does), so that the model of
    the last window stays in ``run.forecaster`` for the report's plot."""
    horizon, forecaster = args.prediction_length, run.forecaster
    options = {"num_samples": args.samples, "use_fitted": True} | run.predict_options
    if not args.refit:
        forecaster.fit(frame.iloc[: cutoffs[0]], run.covariates, **run.fit_options)
        return forecaster.backtest(
            frame,
            run.covariates,
            windows=len(cutoffs),
            stride=args.stride or horizon,
            seed=args.seed,
            **options,
        )
    tables = []
    for k, cutoff in enumerate(cutoffs):
        forecaster.fit(frame.iloc[:cutoff], run.covariates, **run.fit_options)
        table = forecaster.backtest(
            frame.iloc[: cutoff + horizon], run.covariates, windows=1, seed=args.seed + k, **options
        )
        tables.append(table.assign(window=k))
    return pd.concat(tables, ignore_index=True)


def _settings(args: argparse.Namespace, data: SeriesFile, runs: list[_Run]) -> dict[str, Any]:
    main = runs[0].forecaster
    history = data.history
    return {
        "command": "snfseq backtest",
        "data": str(Path(args.data).resolve()),
        "model": args.model,
        "models": [
            f"{type(r.forecaster).__name__} ({r.forecaster.variant(**r.predict_options)})"
            for r in runs
        ],
        "prediction_length": args.prediction_length,
        "context_length": main.context_length,
        "season_length": args.season_length or season_length(history.freq),
        "epochs": args.epochs if args.model in _TRAINED else None,
        "batches_per_epoch": args.batches_per_epoch,
        "hidden": args.hidden,
        "refinement": args.refinement,
        "samples": args.samples,
        "seed": args.seed,
        "stride": args.stride or args.prediction_length,
        "refit": args.refit,
        "baselines": not args.no_baselines,
        "long": data.long,
        "time_column": data.time_column,
        "time_axis": data.time_note,
        "freq": history.freq,
        "freq_given": args.freq,
        "columns": [str(c) for c in history.columns],
        "covariates": [] if data.covariates is None else list(data.covariates.columns),
        "timestamps": len(history.frame),
        "first": str(history.frame.index[0]),
        "last": str(history.frame.index[-1]),
        "filled_values": history.filled,
        "notes": data.notes,
        "snfseq_version": __version__,
    }


def run(args: argparse.Namespace) -> int:
    """Runs ``snfseq backtest`` (see the module); returns the exit status.

    Example:
        >>> from snfseq.cli import build_parser
        >>> run(build_parser().parse_args(["backtest", "data.txt", "-H", "2", "-o", "report"]))
        Traceback (most recent call last):
        ...
        ValueError: data.txt must end in .csv or .parquet or .pq
    """
    data, runs, cutoffs = _plan(args)
    history, horizon = data.history, args.prediction_length
    attrs = _settings(args, data, runs)
    frame = history.frame
    print(f"time axis: {data.time_note}; freq {history.freq!r}")
    print(
        f"{len(history.columns)} series x {len(frame)} timestamps; {len(cutoffs)} windows of "
        f"{horizon} steps, cutoffs {frame.index[cutoffs[0] - 1]} to {frame.index[cutoffs[-1] - 1]}"
    )
    for note in data.notes:
        print(f"note: {note}")
    tables = []
    for model, item in zip(attrs["models"], runs, strict=True):
        print(f"backtesting {model}", flush=True)
        tables.append(_backtest(item, frame, cutoffs, args))
    main = runs[0]
    past, truth = last_window_frames(
        frame, cutoffs[-1], horizon, max(main.forecaster.context_length or 0, 4 * horizon)
    )
    prediction: Prediction = main.forecaster.predict(
        frame.iloc[: cutoffs[-1]],
        main.covariates,
        num_samples=args.samples,
        seed=args.seed,
        **main.predict_options,
    )
    attrs |= {"windows": len(cutoffs), "cutoffs": [str(frame.index[c - 1]) for c in cutoffs]}
    markdown = write_report(
        args.output, pd.concat(tables, ignore_index=True), prediction, past, truth, attrs
    )
    print(markdown)
    print(written(args.output))
    return 0
