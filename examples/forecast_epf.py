"""Day-ahead electricity prices of France and Belgium: a GRU-NF against three baselines.

``EPF_FR_BE`` (:func:`snfseq.data.load_series`) holds the hourly day-ahead prices of France
and Belgium (EUR/MWh, 2015-01 to 2016-10) with the day-ahead forecasts of generation and
system load, published before the prices and so known for the hours forecast. A
``FlowForecaster`` (GRU-NF) forecasts the next 24 hours of both prices jointly from the last
week, conditioned on the two forecasts and on calendar features (hour of day, day of week).
It is trained once on the year before the backtest, as is a DeepAR-like Gaussian GRU with the
same inputs; both are then scored with the seasonal naive (the same hour of the day before,
plus a drawn daily change) and Gaussian random-walk baselines on the same 14 daily windows
(the last two weeks of the data). The table shows the scaled CRPS, energy and variogram scores
(both prices jointly over the day: they rise and fall together) and the coverage of the 50%
and 90% intervals; ``<output>/backtest.csv`` holds every score per window, series and hour,
``<output>/forecast.png`` the GRU-NF forecast of the last day with what happened.

Run: ``python examples/forecast_epf.py [--quick] [--output forecast_epf] [--epochs N]
[--windows N] [--samples N]``. Full size trains for 5-7 minutes on a 2-core CPU; ``--quick``
(tiny models, one epoch, 2 windows, 14 days of data) runs in seconds.
"""

from __future__ import annotations

from _forecasting import compare, parse_args

from snfseq import data

HORIZON = 24  # hours: tomorrow's prices, as the day-ahead auction sets them


def main() -> None:
    args = parse_args(__doc__, "forecast_epf")
    prices = data.load_series("EPF_FR_BE")
    windows = 14
    days = 14 if args.quick else 365 + windows
    assert prices.covariates is not None
    compare(
        args,
        prices.target.iloc[-days * HORIZON :],
        prices.covariates.iloc[-days * HORIZON :],
        prediction_length=HORIZON,
        context_length=2 * HORIZON if args.quick else 7 * HORIZON,
        season=prices.season,
        windows=windows,
        flow_options={},  # FlowForecaster's own sizes (TempFlow's)
        gru_options={},
        fit_options={"epochs": 20, "num_batches_per_epoch": 50, "lr": 3e-3},
    )


if __name__ == "__main__":
    main()
