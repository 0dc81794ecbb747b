"""Half-hourly electricity demand of Victoria with temperature: a GRU-NF against three
baselines.

``vic_elec`` (:func:`snfseq.data.load_series`) holds the half-hourly electricity demand of
Victoria, Australia (MW, 2012-2014) with the Melbourne temperature and a public-holiday flag.
Demand is one series, so the ``FlowForecaster`` (GRU-NF) uses a spline autoregressive flow
over it; it forecasts the next 48 half-hours (one day) from the last four days, conditioned on
the temperature (observed here, standing in for a weather forecast), the holiday flag and
calendar features (time of day, day of week). It is trained once on the year before the
backtest, as is a DeepAR-like Gaussian GRU with the same inputs; both are then scored with the
seasonal naive (the same half-hour of the day before, plus a drawn daily change) and Gaussian
random-walk baselines on the same 14 daily windows (the last two weeks of 2014). The table
shows the CRPS (in MW, and scaled by the mean half-hourly change) and the coverage of the 50%
and 90% intervals; ``<output>/backtest.csv`` holds every score per window and half-hour (with
the energy and variogram scores of each day's path), ``<output>/forecast.png`` the GRU-NF
forecast of the last day with what happened.

Run: ``python examples/forecast_vic_elec.py [--quick] [--output forecast_vic_elec]
[--epochs N] [--windows N] [--samples N]``. Full size trains for 5-7 minutes on a 2-core CPU;
``--quick`` (tiny models, one epoch, 2 windows, 8 days of data) runs in seconds.
"""

from __future__ import annotations

from _forecasting import compare, parse_args

from snfseq import data

HORIZON = 48  # half-hours: the next day


def main() -> None:
    args = parse_args(__doc__, "forecast_vic_elec")
    demand = data.load_series("vic_elec")
    windows = 14
    days = 8 if args.quick else 365 + windows
    assert demand.covariates is not None
    compare(
        args,
        demand.target.iloc[-days * HORIZON :],
        demand.covariates.iloc[-days * HORIZON :],
        prediction_length=HORIZON,
        context_length=2 * HORIZON if args.quick else 4 * HORIZON,
        season=demand.season,
        windows=windows,
        flow_options={},  # FlowForecaster's own sizes (TempFlow's); one series: a spline flow
        gru_options={},
        fit_options={"epochs": 20, "num_batches_per_epoch": 50, "lr": 3e-3},
    )


if __name__ == "__main__":
    main()
