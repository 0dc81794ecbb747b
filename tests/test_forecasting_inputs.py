"""snfseq.forecasting's input handling on real data (statsmodels' macrodata): formats,
frequencies, gaps, calendar features, and a one-line error for every kind of bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from snfseq import forecasting
from snfseq.forecasting import FlowForecaster

pytest.importorskip("statsmodels", reason="macrodata ships with statsmodels")

H, C = 4, 12
TINY = {"hidden": 8, "layers": 1, "transforms": 2, "flow_hidden": (8,), "condition_size": 8}
QUICK = {"progress": False, "seed": 0}


def _long(frame: pd.DataFrame) -> pd.DataFrame:
    return (
        frame.rename_axis("timestamp")
        .reset_index()
        .melt(id_vars="timestamp", var_name="id", value_name="value")
    )


def test_short_gaps_are_interpolated_with_a_warning(macro) -> None:
    holed = macro.copy()
    holed.iloc[50, 5] = np.nan
    holed = holed.drop(index=holed.index[80])  # a missing quarter is a gap in every series
    with pytest.warns(
        UserWarning, match=r"filled 13 missing value\(s\) of data .*'realgdp' at 1979Q1"
    ):
        history = forecasting.prepare(holed)
    assert history.frame.index.equals(macro.index)
    assert history.frame.iloc[50, 5] == pytest.approx((macro.iloc[49, 5] + macro.iloc[51, 5]) / 2)
    assert history.filled == 13


def _with(macro: pd.DataFrame, column: str, rows: slice, value: float) -> pd.DataFrame:
    changed = macro.copy()
    changed.iloc[rows, changed.columns.get_loc(column)] = value
    return changed


def _bad_inputs(macro: pd.DataFrame) -> dict[str, tuple[object, str]]:
    days = pd.to_datetime(["2001-01-01", "2001-02-01", "2001-03-01", "2001-03-15", "2001-04-01"])
    irregular = pd.DataFrame({"a": np.arange(5.0), "b": np.arange(5.0) ** 2}, index=days)
    long = _long(macro)
    return {
        "text column": (macro.assign(label="x"), "column 'label' of data is not numeric"),
        "duplicate time": (
            pd.concat([macro.iloc[:30], macro.iloc[[29]]]),
            "timestamp 1966Q2 appears more than once",
        ),
        "irregular": (irregular, r"regular \('MS'\) up to 2001-03-01 but not at 2001-03-15"),
        "no freq": (
            irregular.iloc[[0, 1, 3]],
            "its first timestamps 2001-01-01, 2001-02-01, 2001-03-15 have no common step",
        ),
        "long gap": (
            _with(macro, "cpi", slice(40, 43), np.nan),
            "column 'cpi' of data is missing 3 values in a row from 1969Q1",
        ),
        "leading gap": (
            _with(macro, "m1", slice(0, 2), np.nan),
            "column 'm1' of data is missing its first 2 value",
        ),
        "trailing gap": (
            _with(macro, "m1", slice(-1, None), np.nan),
            "column 'm1' of data is missing its last 1 value",
        ),
        "all missing": (
            _with(macro, "infl", slice(None), np.nan),
            "column 'infl' of data has no values",
        ),
        "infinite": (
            _with(macro, "infl", slice(7, 8), np.inf),
            "column 'infl' of data is infinite at 1960Q4",
        ),
        "constant": (macro.assign(const=5.0), r"column 'const' of data is constant \(5\)"),
        "too short": (macro.iloc[:15], "data has 15 timestamps .*; training .* needs at least 16"),
        "long duplicate": (
            pd.concat([long, long.iloc[[3]]]),
            "series 'realgdp' has timestamp 1959Q4 more than once",
        ),
        "long text time": (
            long.astype({"timestamp": str}),
            "time column 'timestamp' of data has dtype .*, not timestamps",
        ),
        "no time dim": (
            xr.DataArray(macro.to_numpy(), dims=("t", "series")),
            r"dims \(time, series\)",
        ),
    }


BAD_INPUTS = [
    "text column",
    "duplicate time",
    "irregular",
    "no freq",
    "long gap",
    "leading gap",
    "trailing gap",
    "all missing",
    "infinite",
    "constant",
    "too short",
    "long duplicate",
    "long text time",
    "no time dim",
]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_training_input_is_refused_in_one_line(macro, case) -> None:
    cases = _bad_inputs(macro)
    assert list(cases) == BAD_INPUTS
    data, message = cases[case]
    with pytest.raises(ValueError, match=message) as error:
        FlowForecaster(H, C, **TINY).fit(data, epochs=1, **QUICK)
    assert "\n" not in str(error.value)


def test_datetime_timestamps_need_the_frequency_when_a_row_is_missing(macro) -> None:
    dated = macro.to_timestamp(how="start")
    holed = dated.drop(index=dated.index[100])
    with pytest.raises(
        ValueError, match=r"regular \('QS-JAN'\) up to 1983-10-01 but not at 1984-04-01"
    ):
        forecasting.prepare(holed)
    with pytest.warns(UserWarning, match="filled 12 missing"):
        history = forecasting.prepare(holed, freq="QS")
    assert history.frame.index.equals(dated.index) and history.freq == "QS-JAN"
    with pytest.raises(
        ValueError, match="timestamp 1984-02-15 of data is not on the 'QS-JAN' grid"
    ):
        forecasting.prepare(
            dated.rename(index={dated.index[100]: pd.Timestamp("1984-02-15")}), freq="QS"
        )


def test_calendar_features_and_season_lengths() -> None:
    quarters = pd.period_range("2000Q1", periods=4, freq="Q")
    features = forecasting.calendar_features(quarters, "Q-DEC")
    assert np.allclose(features["month_of_year_sin"], [0, 1, 0, -1], atol=1e-12)
    hours = pd.date_range("2001-01-01", periods=48, freq="h")
    assert list(forecasting.calendar_features(hours, "h").columns) == [
        "hour_of_day_sin",
        "hour_of_day_cos",
        "day_of_week_sin",
        "day_of_week_cos",
    ]
    assert forecasting.calendar_features(pd.RangeIndex(5), 1).shape == (5, 0)
    seasons = {
        f: forecasting.season_length(f)
        for f in ("Q-DEC", "QS", "MS", "W-SUN", "D", "B", "h", "30min", "YS", 1)
    }
    assert seasons == {
        "Q-DEC": 4,
        "QS": 4,
        "MS": 12,
        "W-SUN": 52,
        "D": 7,
        "B": 5,
        "h": 24,
        "30min": 48,
        "YS": 1,
        1: 1,
    }
