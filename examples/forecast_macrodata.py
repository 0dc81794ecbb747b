"""Twelve quarterly US macroeconomic series: a GRU-NF against three baselines.

``macrodata`` (:func:`snfseq.data.load_series`) holds twelve US series from 1959Q1 to 2009Q3
(203 quarters): real GDP, consumption, investment, government spending and disposable income,
CPI, M1, the 3-month T-bill rate, unemployment, population, inflation and the real interest
rate. A ``FlowForecaster`` (GRU-NF) forecasts the next 8 quarters (two years) of all twelve
jointly from the last 24 (six years), conditioned on a calendar feature (quarter of the year);
the series are seasonally adjusted and have no covariates. It is trained once on the quarters
before the backtest, as is a DeepAR-like Gaussian GRU; both are then scored with the seasonal
naive (the same quarter a year before plus a drawn yearly change) and a Gaussian random walk
with drift (the series trend) on the same 5 windows, which tile the last ten years, the 2008
recession included. Each series is divided by its own mean one-step change before it is
scored (it is in dollars, percent or millions of people), so the table shows the scaled CRPS,
energy and variogram scores and the coverage of the 50% and 90% intervals;
``<output>/backtest.csv`` holds every score per window, series and quarter,
``<output>/forecast.png`` the GRU-NF forecast of the last two years (four of the series) with
what happened.

Run: ``python examples/forecast_macrodata.py [--quick] [--output forecast_macrodata]
[--epochs N] [--windows N] [--samples N]``. Full size trains for about half a minute on a CPU;
``--quick`` (tiny models, one epoch, 2 windows) runs in seconds.
"""

from __future__ import annotations

from _forecasting import compare, parse_args

from snfseq import data

HORIZON = 8  # quarters: two years


def main() -> None:
    args = parse_args(__doc__, "forecast_macrodata")
    macro = data.load_series("macrodata")
    compare(
        args,
        macro.target,
        None,
        prediction_length=HORIZON,
        context_length=HORIZON + 4 if args.quick else 3 * HORIZON,
        season=macro.season,
        windows=5,
        # Some 130 training windows: a smaller network than TempFlow's, trained longer.
        flow_options={"hidden": 32, "layers": 1, "condition_size": 32, "flow_hidden": (64,)},
        gru_options={"hidden": 32, "layers": 1},
        fit_options={"epochs": 100, "batch_size": 32, "lr": 3e-3, "patience": 30},
        drift=True,
        plot_series=["realgdp", "unemp", "tbilrate", "infl"],
    )


if __name__ == "__main__":
    main()
