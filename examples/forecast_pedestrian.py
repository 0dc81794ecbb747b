"""Hourly pedestrian counts at four Melbourne sensors: a GRU-NF against three baselines.

``pedestrian`` (:func:`snfseq.data.load_series`) holds the hourly counts of four City of
Melbourne sensors (Birrarung Marr, Bourke Street Mall, QV Market, Southern Cross Station) on
the 4,271 hours (May to October 2016) on which all four are complete. The series have no
covariates; the crowds follow the clock, so a ``FlowForecaster`` (GRU-NF) forecasts the next
24 hours of the four counts jointly from the last week, conditioned on calendar features (hour
of day, day of week). It is trained once on the months before the backtest, as is a
DeepAR-like Gaussian GRU with the same inputs; both are then scored with the seasonal naive
(the same hour of the day before, plus a drawn daily change) and Gaussian random-walk
baselines on the same 14 daily windows (the last two weeks). The table shows the scaled CRPS,
energy and variogram scores (the four sensors jointly over the day: a busy day is busy
everywhere) and the coverage of the 50% and 90% intervals; ``<output>/backtest.csv`` holds
every score per window, sensor and hour, ``<output>/forecast.png`` the GRU-NF forecast of the
last day with what happened.

Run: ``python examples/forecast_pedestrian.py [--quick] [--output forecast_pedestrian]
[--epochs N] [--windows N] [--samples N]``. Full size trains for 5-7 minutes on a 2-core CPU;
``--quick`` (tiny models, one epoch, 2 windows, 14 days of data) runs in seconds.
"""

from __future__ import annotations

from _forecasting import compare, parse_args

from snfseq import data

HORIZON = 24  # hours: the next day


def main() -> None:
    args = parse_args(__doc__, "forecast_pedestrian")
    counts = data.load_series("pedestrian")
    target = counts.target.iloc[-14 * HORIZON :] if args.quick else counts.target
    compare(
        args,
        target,
        None,
        prediction_length=HORIZON,
        context_length=2 * HORIZON if args.quick else 7 * HORIZON,
        season=counts.season,
        windows=14,
        flow_options={},  # FlowForecaster's own sizes (TempFlow's)
        gru_options={},
        fit_options={"epochs": 20, "num_batches_per_epoch": 50, "lr": 3e-3},
    )


if __name__ == "__main__":
    main()
