"""snfseq.forecasting on real data: statsmodels' macrodata (12 quarterly US series, 1959-2009).

Tiny models (hidden 8, one layer, two coupling layers, 1-3 epochs): the tests pin the API,
the data handling and the scoring, not forecast quality.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from snfseq import Refinement, forecasting
from snfseq.forecasting import (
    FlowForecaster,
    GaussianGRUForecaster,
    Prediction,
    RandomWalkForecaster,
    SeasonalNaiveForecaster,
)
from snfseq.forecasting.backtesting import JOINT_METRICS, SERIES_METRICS

pytest.importorskip("statsmodels", reason="macrodata ships with statsmodels")

H, C = 4, 12
TINY = {"hidden": 8, "layers": 1, "transforms": 2, "flow_hidden": (8,), "condition_size": 8}
QUICK = {"progress": False, "seed": 0}


@pytest.fixture(scope="module")
def flow(macro: pd.DataFrame) -> FlowForecaster:
    """A tiny FlowForecaster fitted on all of macrodata (shared; do not refit)."""
    return FlowForecaster(H, C, **TINY).fit(macro, epochs=2, **QUICK)


def _long(frame: pd.DataFrame) -> pd.DataFrame:
    return (
        frame.rename_axis("timestamp")
        .reset_index()
        .melt(id_vars="timestamp", var_name="id", value_name="value")
    )


# ---------------------------------------------------------------------------- predictions


def test_predict_gives_samples_and_frames_on_the_future_quarters(flow, macro) -> None:
    prediction = flow.predict(macro, num_samples=50, seed=0)
    assert isinstance(prediction, Prediction)
    assert prediction.samples.shape == (50, 1, H, 12)
    future = pd.period_range("2009Q4", periods=H, freq="Q")
    assert prediction.index.equals(future)
    for frame in (prediction.mean(), prediction.median(), prediction.quantile(0.9)):
        assert frame.index.equals(future) and list(frame.columns) == list(macro.columns)
    gdp = prediction.samples[:, 0, :, 0].double()
    assert np.allclose(prediction.mean()["realgdp"], gdp.mean(0).numpy())
    assert prediction.context.index[-1] == macro.index[-1] and len(prediction.context) == C
    assert prediction.weights is None and prediction.ess is None
    assert prediction.title == "FlowForecaster (GRU-NF)"

    array = prediction.to_xarray()
    assert array.dims == ("sample", "time", "series")
    assert list(array["series"].values) == list(macro.columns)
    assert pd.DatetimeIndex(array["time"].values).equals(future.to_timestamp())
    assert np.array_equal(array.sel(series="cpi").values, prediction.samples[:, 0, :, 5].numpy())

    long = prediction.to_pandas("long")
    assert list(long.columns) == ["sample", "timestamp", "id", "value"]
    assert isinstance(long["timestamp"].dtype, pd.PeriodDtype)
    assert len(long) == 50 * H * 12
    row = long.iloc[12 * H + 12 + 5]  # sample 1, step 1, series 5
    assert (row["sample"], row["timestamp"], row["id"]) == (1, future[1], "cpi")
    assert row["value"] == pytest.approx(float(prediction.samples[1, 0, 1, 5]))
    wide = prediction.to_pandas("wide")
    assert wide.shape == (50 * H, 12) and wide.loc[(1, future[1]), "cpi"] == row["value"]


def test_quantiles_are_monotone_and_intervals_nested(flow, macro) -> None:
    prediction = flow.predict(macro, num_samples=200, seed=1)
    levels = [0.05, 0.25, 0.5, 0.75, 0.95]
    bands = prediction.quantile(levels)
    assert list(bands.columns.get_level_values(0).unique()) == levels
    stacked = np.stack([bands[level].to_numpy() for level in levels])
    assert (np.diff(stacked, axis=0) >= 0).all()
    assert np.array_equal(bands[0.5].to_numpy(), prediction.median().to_numpy())
    inner, outer = prediction.interval(0.5), prediction.interval(0.9)
    assert (outer["lower"] <= inner["lower"]).all().all()
    assert (inner["upper"] <= outer["upper"]).all().all()
    assert (inner["lower"] <= prediction.median()).all().all()
    assert (prediction.median() <= inner["upper"]).all().all()
    assert (inner["lower"] < inner["upper"]).all().all()  # the samples do spread


def test_wide_long_and_xarray_inputs_give_the_same_forecast(flow, macro) -> None:
    array = xr.DataArray(
        macro.to_numpy(),
        dims=("time", "series"),
        coords={"time": macro.index, "series": list(macro.columns)},
    ).transpose("series", "time")  # dims in any order
    reference = flow.predict(macro, num_samples=30, seed=3).samples
    for given in (_long(macro), array, macro.iloc[::-1]):  # rows in any order
        assert torch.equal(flow.predict(given, num_samples=30, seed=3).samples, reference)
    assert not torch.equal(flow.predict(macro, num_samples=30, seed=4).samples, reference)


def test_numpy_long_and_wide_inputs_train_and_forecast_alike(macro) -> None:
    options = {"calendar": False, **TINY}
    from_wide = FlowForecaster(H, C, **options).fit(macro, epochs=1, **QUICK)
    from_numpy = FlowForecaster(H, C, **options).fit(macro.to_numpy(), epochs=1, **QUICK)
    from_long = FlowForecaster(H, C, **options).fit(_long(macro), epochs=1, **QUICK)
    wide = from_wide.predict(macro, num_samples=20, seed=0)
    assert torch.equal(from_long.predict(macro, num_samples=20, seed=0).samples, wide.samples)
    array = from_numpy.predict(macro.to_numpy(), num_samples=20, seed=0)
    assert torch.equal(wide.samples, array.samples)
    assert list(array.index) == [203, 204, 205, 206]  # integer steps: no timestamps given
    adopted = from_wide.predict(macro.to_numpy(), num_samples=20, seed=0)  # names from the fit
    assert list(adopted.columns) == list(macro.columns)
    assert torch.equal(adopted.samples, wide.samples)


def test_a_forecast_reads_only_the_context(flow, macro) -> None:
    """Only the last ``context_length`` steps matter, scale included: the earlier history,
    however different, changes nothing."""
    earlier = macro.copy()
    earlier.iloc[:-C] *= 10.0
    assert torch.equal(
        flow.predict(earlier, num_samples=20, seed=0).samples,
        flow.predict(macro, num_samples=20, seed=0).samples,
    )
    assert torch.equal(
        flow.predict(macro.iloc[-C:], num_samples=20, seed=0).samples,
        flow.predict(macro, num_samples=20, seed=0).samples,
    )


def test_refinement_leaves_weights_and_an_effective_sample_size(flow, macro) -> None:
    prediction = flow.predict(macro, num_samples=40, seed=0, refinement=Refinement.paper())
    assert prediction.variant == "GRU-SNF (rwm)"
    assert prediction.weights.shape == (40, 1)
    assert float(prediction.weights.sum()) == pytest.approx(1.0)
    assert 1.0 <= float(prediction.ess[0]) <= 40.0
    weighted, plain = prediction.mean(), prediction.mean(weighted=False)
    expected = (prediction.weights[:, 0, None, None].double() * prediction.samples[:, 0]).sum(0)
    assert np.allclose(weighted.to_numpy(), expected.numpy())
    assert np.allclose(plain.to_numpy(), prediction.samples[:, 0].double().mean(0).numpy())
    assert "weight" in prediction.to_pandas().columns
    assert "weight" in prediction.to_xarray().coords


def test_save_and_load_give_equal_predictions(flow, macro, tmp_path) -> None:
    path = flow.save(tmp_path / "flow.pt")
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "snfseq.forecasting.FlowForecaster"
    loaded = FlowForecaster.load(path)
    assert loaded.columns_ == list(macro.columns) and loaded.freq_ == "Q-DEC"
    assert (loaded.prediction_length, loaded.context_length) == (H, C)
    assert loaded.scaling == "mean_abs" and np.array_equal(loaded.series_scale_, flow.series_scale_)
    assert torch.equal(
        loaded.predict(macro, num_samples=25, seed=7).samples,
        flow.predict(macro, num_samples=25, seed=7).samples,
    )
    with pytest.raises(ValueError, match="is not a checkpoint of snfseq.forecasting.Gaussian"):
        GaussianGRUForecaster.load(path)


def test_plot_shows_history_bands_and_truth_under_a_title_naming_the_model(flow, macro) -> None:
    prediction = flow.predict(macro.iloc[:-H], num_samples=30, seed=0)
    figure = prediction.plot(truth=macro.iloc[-H:], series=["realgdp", "cpi"])
    assert [axis.get_title() for axis in figure.axes] == ["realgdp", "cpi"]
    assert figure._suptitle.get_text().startswith("FlowForecaster (GRU-NF): median, 50% and 90%")
    labels = [line.get_label() for line in figure.axes[0].lines]
    assert labels == ["history", "median", "truth"]
    truth_line = figure.axes[1].lines[2]
    assert np.array_equal(truth_line.get_ydata(), macro["cpi"].iloc[-H:].to_numpy())
    with pytest.raises(ValueError, match="truth has no column 'cpi'"):
        prediction.plot(truth=macro.iloc[-H:, :2], series=["cpi"])


# ---------------------------------------------------------------------------- scaling


def test_context_scaling_makes_forecasts_equivariant_to_units(macro) -> None:
    """Why ``scaling="mean_abs"`` is the default: GDP counted in dollars (x 1e6) must not
    change the forecast of interest rates. The model's own normaliser floors every spread at
    1e-3 of the largest, so without the context scale it flattens the rates."""
    dollars = macro.assign(realgdp=macro["realgdp"] * 1e6)
    options = {"calendar": False, **TINY}
    billions = FlowForecaster(H, C, **options).fit(macro, epochs=1, **QUICK)
    scaled = FlowForecaster(H, C, **options).fit(dollars, epochs=1, **QUICK)
    a = billions.predict(macro, num_samples=20, seed=0).samples.double()
    b = scaled.predict(dollars, num_samples=20, seed=0).samples.double()
    assert torch.allclose(b[..., 0], a[..., 0] * 1e6, rtol=1e-3)
    assert torch.allclose(b[..., 1:], a[..., 1:], rtol=1e-3, atol=1e-3)

    raw = FlowForecaster(H, C, scaling=None, **options).fit(dollars, epochs=1, **QUICK)
    spread = raw.model_.normalizer.scale
    rate = list(macro.columns).index("tbilrate")
    assert float(spread[rate]) == pytest.approx(1e-3 * float(spread.max()))  # floored: flat


# ---------------------------------------------------------------------------- backtests


def test_backtest_table_has_every_score_per_window_series_and_step(macro) -> None:
    forecaster = FlowForecaster(H, C, **TINY)
    table = forecaster.backtest(
        macro, windows=3, num_samples=50, fit_options={"epochs": 1, "progress": False}
    )
    assert not forecaster.is_fitted  # it trained a copy
    assert list(table.columns) == ["model", "window", "cutoff", "series", "step", "metric", "value"]
    assert set(table["model"]) == {"FlowForecaster (GRU-NF)"}
    per_series = table[table["series"] != "joint"]
    joint = table[table["series"] == "joint"]
    assert set(per_series["metric"]) == set(SERIES_METRICS)
    assert set(joint["metric"]) == set(JOINT_METRICS)
    assert len(per_series) == 6 * 3 * H * 12 and len(joint) == 4 * 3
    assert joint["step"].isna().all() and set(per_series["step"]) == set(range(1, H + 1))
    assert list(dict.fromkeys(table["cutoff"])) == list(macro.index[[-13, -9, -5]])
    coverage = per_series[per_series["metric"].str.startswith("coverage")]["value"]
    assert set(coverage) <= {0.0, 1.0}
    assert np.isfinite(table["value"]).all()

    result = forecasting.summary(table)
    assert list(result.columns) == [*macro.columns, "joint", "all series"]
    assert result.loc[("FlowForecaster (GRU-NF)", "coverage_90"), "all series"] == pytest.approx(
        coverage[per_series["metric"] == "coverage_90"].mean()
    )
    assert np.isnan(result.loc[("FlowForecaster (GRU-NF)", "crps"), "all series"])


def test_backtest_scores_the_windows_it_claims() -> None:
    """Lines of slopes 1 and 2: the random walk (with no spread) forecasts the last value seen,
    so its absolute error at step h is h times the slope, and its scaled CRPS h."""
    line = pd.DataFrame(
        {"a": np.arange(40.0), "b": 2 * np.arange(40.0)},
        index=pd.date_range("2001-01-01", periods=40, freq="D"),
    )
    table = RandomWalkForecaster(3).backtest(line, windows=4, stride=2, num_samples=10)
    mae = table[(table["metric"] == "mae") & (table["series"] == "a")]
    assert mae.groupby("step")["value"].mean().tolist() == [1.0, 2.0, 3.0]
    b = table[table["series"] == "b"].pivot_table(index="step", columns="metric", values="value")
    assert b["crps"].tolist() == pytest.approx([2.0, 4.0, 6.0])  # no spread: absolute error
    assert b["crps_scaled"].tolist() == pytest.approx([1.0, 2.0, 3.0])  # over b's step, 2
    assert list(dict.fromkeys(mae["cutoff"])) == list(line.index[[30, 32, 34, 36]])


def test_backtest_coverage_tells_the_50_from_the_90_percent_interval() -> None:
    """A zigzag of +-1 steps: the walk's spread is 1, so the truth one step ahead lies one
    spread away (inside the 90% interval, outside the 50%) and two steps ahead at its centre."""
    zigzag = pd.DataFrame({"z": np.arange(40) % 2.0})
    table = RandomWalkForecaster(2).backtest(zigzag, windows=2, stride=2, num_samples=4000)
    coverage = table[table["metric"].str.startswith("coverage")]
    by_step = coverage.pivot_table(index="step", columns="metric", values="value")
    assert by_step.to_dict("index") == {
        1: {"coverage_50": 0.0, "coverage_90": 1.0},
        2: {"coverage_50": 1.0, "coverage_90": 1.0},
    }


def test_backtest_trains_only_on_data_before_each_window(macro) -> None:
    seen: list[pd.Period] = []

    class Spy(RandomWalkForecaster):
        def _fit(self, history, features, **options):
            seen.append(history.frame.index[-1])

    Spy(H).backtest(macro, windows=3, refit=False, num_samples=5)
    assert seen == [macro.index[-13]]
    seen.clear()
    Spy(H).backtest(macro, windows=3, refit=True, num_samples=5)
    assert seen == list(macro.index[[-13, -9, -5]])
    seen.clear()
    fitted = Spy(H).fit(macro.iloc[:100])
    seen.clear()
    fitted.backtest(macro, windows=3, use_fitted=True, num_samples=5)
    assert seen == []


def test_flow_is_reported_against_the_random_walk_on_crps(macro) -> None:
    fit_options = {"epochs": 3, "progress": False}
    flow = FlowForecaster(H, C, **TINY).backtest(
        macro, windows=6, num_samples=100, fit_options=fit_options
    )
    walk = RandomWalkForecaster(H).backtest(macro, windows=6, num_samples=100)
    result = forecasting.summary(pd.concat([flow, walk]))
    crps = result.xs("crps_scaled", level="metric")["all series"]
    assert list(crps.index) == [
        "FlowForecaster (GRU-NF)",
        "RandomWalkForecaster (Gaussian random walk)",
    ]
    assert np.isfinite(crps).all()
    # Three epochs of a tiny model: not asserted to win, only to be in the walk's league.
    assert crps.iloc[0] < 2 * crps.iloc[1]


# ---------------------------------------------------------------------------- baselines


def test_baselines_return_the_same_prediction_type(macro) -> None:
    for forecaster in (
        SeasonalNaiveForecaster(H),
        RandomWalkForecaster(H, drift=True),
        GaussianGRUForecaster(H, C, hidden=8, layers=1),
    ):
        forecaster.fit(
            macro, **({"epochs": 1} if "GRU" in type(forecaster).__name__ else {}), **QUICK
        )
        prediction = forecaster.predict(macro, num_samples=20, seed=0)
        assert isinstance(prediction, Prediction) and prediction.samples.shape == (20, 1, H, 12)
        assert prediction.index.equals(pd.period_range("2009Q4", periods=H, freq="Q"))
        assert prediction.model == type(forecaster).__name__


def test_seasonal_naive_adds_past_seasonal_errors_season_after_season() -> None:
    """Seasonal differences of this series are -1 or 3 and those of ``b`` twice ``a``'s: every
    sample adds a drawn difference to the value one season back, season after season, and
    draws the differences of all series at one timestamp together."""
    changes = np.where(np.random.default_rng(0).random(28) < 0.5, -1.0, 3.0)
    a = np.concatenate([[10.0, 20.0, 30.0, 40.0], np.zeros(28)])
    for t in range(4, 32):
        a[t] = a[t - 4] + changes[t - 4]
    index = pd.period_range("2000Q1", periods=32, freq="Q")
    data = pd.DataFrame({"a": a, "b": 2 * a + 100}, index=index)
    naive = SeasonalNaiveForecaster(6).fit(data)
    assert naive.variant() == "seasonal naive, m=4"
    samples = naive.predict(data, num_samples=400, seed=0).samples[:, 0].double()
    first = samples[:, 0, 0] - a[-4]  # step 1: one season after the last season's first value
    second = samples[:, 4, 0] - samples[:, 0, 0]  # step 5: one more season on
    assert set(first.unique().tolist()) == {-1.0, 3.0}
    assert set(second.unique().tolist()) == {-1.0, 3.0}
    assert torch.allclose(samples[..., 1], 2 * samples[..., 0] + 100)


def test_random_walk_spread_grows_with_the_square_root_of_the_step(macro) -> None:
    walk = RandomWalkForecaster(H, context_length=40).fit(macro)
    samples = walk.predict(macro, num_samples=4000, seed=0).samples[:, 0].double()
    sigma = np.diff(macro.to_numpy()[-40:], axis=0).std(0, ddof=1)
    assert np.allclose(
        samples.std(0).numpy() / (sigma * np.sqrt(np.arange(1, H + 1))[:, None]), 1, atol=0.06
    )
    assert (np.abs(samples.mean(0).numpy() - macro.to_numpy()[-1]) < 0.1 * sigma * np.sqrt(H)).all()


def test_gaussian_gru_learns_and_takes_covariates(macro) -> None:
    series = macro[["realgdp", "cpi"]]
    covariates = macro[["tbilrate"]].rename(columns={"tbilrate": "rate"})
    gru = GaussianGRUForecaster(H, C, hidden=8, layers=1)
    gru.fit(series.iloc[:-H], covariates, epochs=3, **QUICK)
    assert gru.fit_history_.train_loss[-1] < gru.fit_history_.train_loss[0]
    assert gru.features_.calendar_columns == ["month_of_year_sin", "month_of_year_cos"]
    a = gru.predict(series.iloc[:-H], covariates, num_samples=20, seed=0).samples
    b = gru.predict(series.iloc[:-H], covariates * 50, num_samples=20, seed=0).samples
    assert a.shape == (20, 1, H, 2) and not torch.equal(a, b)
    with pytest.raises(ValueError, match="covariates lack timestamp 2009Q4"):
        gru.predict(series, covariates, num_samples=5)
    with pytest.raises(ValueError, match=r"fit with covariates \['rate'\]; pass them"):
        gru.predict(series.iloc[:-H], num_samples=5)


def test_gaussian_gru_reads_each_covariate_at_the_step_it_belongs_to(macro) -> None:
    series, covariates = macro[["realgdp", "cpi"]].iloc[:-H], macro[["tbilrate"]]
    gru = GaussianGRUForecaster(H, C, hidden=8, layers=1).fit(series, covariates, epochs=1, **QUICK)
    reference = gru.predict(series, covariates, num_samples=10, seed=0).samples
    for step in (0, H - 1):  # a change at forecast step k moves steps k.. only
        changed = covariates.copy()
        changed.iloc[len(series) + step] += 10.0
        samples = gru.predict(series, changed, num_samples=10, seed=0).samples
        assert torch.equal(samples[:, :, :step], reference[:, :, :step])
        assert not torch.equal(samples[:, :, step], reference[:, :, step])
    before = covariates.copy()
    before.iloc[len(series) - C - 1] += 10.0  # before the context: not read at all
    assert torch.equal(gru.predict(series, before, num_samples=10, seed=0).samples, reference)


def test_flow_conditions_on_calendar_features_and_covariates(flow, macro) -> None:
    assert flow.model_.config.covariates == 2  # month of year, sine and cosine
    series, covariates = macro.drop(columns=["unemp"]), macro[["unemp"]]
    forecaster = FlowForecaster(H, C, **TINY).fit(series.iloc[:-H], covariates, epochs=1, **QUICK)
    assert forecaster.model_.config.covariates == 3
    a = forecaster.predict(series.iloc[:-H], covariates, num_samples=20, seed=0).samples
    b = forecaster.predict(series.iloc[:-H], covariates + 5, num_samples=20, seed=0).samples
    assert not torch.equal(a, b)
    with pytest.raises(ValueError, match="data has no timestamps"):
        flow.predict(macro.to_numpy(), num_samples=5)


def test_bad_prediction_input_and_settings_are_refused(flow, macro) -> None:
    cases = [
        (
            lambda: flow.predict(macro.iloc[-8:]),
            r"data has 8 timestamps \(from 2007Q4 to 2009Q3\); a context of context_length=12 "
            "needs at least 12",
        ),
        (
            lambda: flow.predict(macro.assign(extra=1.0)),
            "column 'extra' of data was not in the training data",
        ),
        (lambda: flow.predict(macro.drop(columns="cpi")), "data lacks column 'cpi'"),
        (lambda: flow.predict(macro, num_samples=0), "num_samples must be an integer >= 1"),
        (lambda: FlowForecaster(0, C), "prediction_length must be an integer >= 1, got 0"),
        (lambda: FlowForecaster(H, 1), "context_length must be >= min_context=2"),
        (lambda: FlowForecaster(H, C, scaling="max"), "scaling must be one of"),
        (
            lambda: FlowForecaster(H, C).backtest(macro.iloc[:60], windows=12),
            "12 windows of 4 steps, 4 apart, leave 12 timestamps before the first; "
            "training .* needs at least 16",
        ),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(TypeError, match=r"unknown SequenceFlow options \['hiden'\]"):
        FlowForecaster(H, C, hiden=8)
    with pytest.raises(RuntimeError, match="not fitted: call fit"):
        FlowForecaster(H, C).predict(macro)
    with pytest.raises(ValueError, match="periods of 'Q-DEC', not freq='MS'"):
        FlowForecaster(H, C, freq="MS").fit(macro)
