"""``snfseq backtest`` on real series: the report folder, wide and long files, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from snfseq import data, version
from snfseq.cli import main, report
from snfseq.forecasting import Forecaster, SeasonalNaiveForecaster

torch.set_num_threads(1)
QUIET = ["--samples", "20", "--windows", "2", "--quiet"]


@pytest.fixture(scope="module")
def macro_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The last 15 years of three US macro series, quarterly, wide, as pandas writes them."""
    path = tmp_path_factory.mktemp("data") / "macro.csv"
    target = data.load_series("macrodata").target
    target[["realgdp", "realcons", "unemp"]].iloc[-60:].to_csv(path)
    return path


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    """Ten days of hourly French and Belgian power prices with their two load covariates."""
    series = data.load_series("EPF_FR_BE")
    return pd.concat([series.target, series.covariates], axis=1).iloc[:240]


def _report(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text())


def test_wide_csv_writes_the_whole_report_of_the_flow_and_its_baselines(
    macro_csv, tmp_path, capsys
) -> None:
    out = tmp_path / "report"
    command = ["backtest", str(macro_csv), "-H", "4", "-o", str(out), *QUIET]
    assert main([*command, "--epochs", "1", "--hidden", "8"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(report.FILES)
    printed = capsys.readouterr().out
    assert "time axis: column 'time' (the first column, parsed as dates" in printed
    models = [
        "FlowForecaster (GRU-NF)",
        "SeasonalNaiveForecaster (seasonal naive, m=4)",
        "RandomWalkForecaster (Gaussian random walk)",
    ]
    summary = pd.read_csv(out / "summary.csv", index_col="model")
    assert list(summary.index) == models  # one row per model, the main model first
    assert list(summary.columns) == [
        "crps_scaled",
        "coverage_50",
        "coverage_90",
        "energy_score_scaled",
        "variogram_score_scaled",
    ]
    table = pd.read_csv(out / "backtest.csv")
    assert table["model"].unique().tolist() == models
    assert sorted(table["cutoff"].unique()) == ["2007Q3", "2008Q3"]  # H apart
    crps = table[table["metric"] == "crps_scaled"].groupby("model", sort=False)["value"].mean()
    pd.testing.assert_series_equal(crps, summary["crps_scaled"], check_names=False)
    markdown = (out / "summary.md").read_text()
    assert markdown.splitlines()[0].startswith("| model | crps_scaled | coverage_50 |")
    assert markdown.count("**") == 2 * 5 and markdown.strip() in printed
    best = summary["crps_scaled"].idxmin()
    assert f"| {best} | **{summary.loc[best, 'crps_scaled']:.4g}** |" in markdown
    settings = _report(out)
    assert (settings["freq"], settings["windows"], settings["context_length"]) == ("Q-DEC", 2, 8)
    assert settings["columns"] == ["realgdp", "realcons", "unemp"]
    assert settings["cutoffs"] == ["2007Q3", "2008Q3"] and settings["epochs"] == 1
    assert list(settings["summary"]) == models
    assert settings["summary"][best]["crps_scaled"] == pytest.approx(summary.loc[best].iloc[0])
    assert settings["snfseq_version"] == version.__version__
    for figure in ("forecast.png", "scores.png"):
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_long_parquet_with_refit_scores_as_the_library_does(prices, tmp_path, capsys) -> None:
    long = prices[["FR", "BE"]].rename_axis("timestamp").reset_index()
    long = long.melt(id_vars="timestamp", var_name="id", value_name="value")
    long["note"] = "kept out"  # another column of the long file is ignored, and said so
    path = tmp_path / "prices.parquet"
    long.to_parquet(path)
    out = tmp_path / "report"
    command = ["backtest", str(path), "-H", "24", "-o", str(out), "--model", "seasonal-naive"]
    assert main([*command, *QUIET, "--refit", "--columns", "BE,FR"]) == 0
    printed = capsys.readouterr().out
    assert "note: ignored columns 'note' of long prices.parquet" in printed
    settings = _report(out)
    assert settings["long"] and settings["freq"] == "h" and settings["columns"] == ["BE", "FR"]
    assert settings["refit"] and settings["time_column"] == "timestamp"
    assert settings["models"] == [
        "SeasonalNaiveForecaster (seasonal naive, m=24)",
        "RandomWalkForecaster (Gaussian random walk)",  # the main model is not run twice
    ]
    # Retraining before every window is what Forecaster.backtest(refit=True) does.
    table = pd.read_csv(out / "backtest.csv")
    expected = SeasonalNaiveForecaster(24).backtest(
        prices[["BE", "FR"]], windows=2, refit=True, num_samples=20, seed=0
    )
    keys = ["window", "metric", "series", "step"]
    mine = table[table["model"] == settings["models"][0]].set_index(keys)["value"].sort_index()
    expected = expected.astype({"step": "float64"}).set_index(keys)["value"].sort_index()
    assert len(mine) == len(expected) == 2 * 2 * 24 * 6 + 2 * 4
    pd.testing.assert_series_equal(mine, expected)


def test_one_flow_series_reports_scores_in_its_units(macro_csv, tmp_path) -> None:
    out = tmp_path / "report"
    command = ["backtest", str(macro_csv), "-H", "4", "-o", str(out), "--columns", "realgdp"]
    assert main([*command, "--epochs", "1", "--hidden", "8", "--no-baselines", *QUIET]) == 0
    summary = pd.read_csv(out / "summary.csv", index_col="model")
    assert list(summary.index) == ["FlowForecaster (GRU-NF)"]
    assert {"crps", "mae", "mse", "crps_scaled"} <= set(summary.columns)  # one unit: comparable
    assert _report(out)["columns"] == ["realgdp"]


def test_covariates_reach_the_model(prices, tmp_path, monkeypatch) -> None:
    path = tmp_path / "prices.csv"
    prices.rename_axis("timestamp").to_csv(path)
    fit, seen = Forecaster.fit, []

    def spy(self: Forecaster, data: object, covariates: object = None, **options: object) -> object:
        seen.append(None if covariates is None else list(covariates.columns))  # type: ignore[attr-defined]
        return fit(self, data, covariates, **options)

    monkeypatch.setattr(Forecaster, "fit", spy)
    out = tmp_path / "report"
    command = ["backtest", str(path), "-H", "24", "-o", str(out), "--model", "gaussian-gru"]
    options = ["--columns", "FR,BE", "--covariates", "system_load", "--epochs", "1"]
    assert main([*command, *options, "--hidden", "4", *QUIET]) == 0
    assert seen == [["system_load"], None, None]  # the model gets them, the baselines cannot
    settings = _report(out)
    assert settings["covariates"] == ["system_load"] and settings["context_length"] == 48
    assert settings["columns"] == ["FR", "BE"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["{tmp}/none.csv"], "not found: {tmp}/none.csv"),
        (["{tmp}/data.txt"], "data.txt must end in .csv or .parquet or .pq"),
        (["{csv}", "--columns", "realgdp,nope"], "--columns: macro.csv has no 'nope'"),
        (["{csv}", "--covariates", "rate"], "--covariates: macro.csv has no 'rate'"),
        (["{csv}", "--time-column", "when"], "--time-column 'when' is not a column of macro.csv"),
        (["{csv}", "-H", "0"], "--prediction-length must be >= 1, got 0"),
        (["{csv}", "--windows", "0"], "--windows must be >= 1, got 0"),
        (["{csv}", "--context-length", "1"], "--context-length must be >= 2, got 1"),
        (["{csv}", "--windows", "13"], "macro.csv is too short (60 timestamps) for FlowForecaster"),
        (["{csv}", "--model", "random-walk", "--refinement", "paper"], "needs --model flow"),
        (["{csv}", "--model", "seasonal-naive", "--covariates", "unemp"], "takes no covariates"),
        (["{csv}", "--long"], "--id-column 'id' is not a column of long macro.csv"),
        (["{csv}", "--freq", "D"], "periods of 'Q-DEC', not freq='D'"),
        (["{flat}"], "series 'flat' of flat.csv is constant (5) before the first window"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_any_training(
    options, message, macro_csv, tmp_path, capsys, monkeypatch
) -> None:
    def trained(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was trained before the input was checked")

    monkeypatch.setattr(Forecaster, "fit", trained)
    (tmp_path / "data.txt").write_text("x")
    flat = pd.read_csv(macro_csv).assign(flat=5.0)
    flat.loc[58:, "flat"] = 6.0  # changes in the last window only
    flat.to_csv(tmp_path / "flat.csv", index=False)
    paths = {"tmp": tmp_path, "csv": macro_csv, "flat": tmp_path / "flat.csv"}
    filled = [part.format(**paths) for part in options]
    command = ["backtest", *filled[:1], "-H", "4", "-o", str(tmp_path / "report"), *filled[1:]]
    assert main(command) == 2
    error = capsys.readouterr().err
    assert message.format(**paths) in error and error.count("\n") == 1, error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.txt", "flat.csv"]  # no report


def test_a_report_folder_is_never_left_in_part(macro_csv, tmp_path, capsys, monkeypatch) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "old.md").write_text("an earlier report")
    command = ["backtest", str(macro_csv), "-H", "4", "-o", str(out), "--model", "random-walk"]
    command += [*QUIET, "--no-baselines"]
    assert main(command) == 2
    assert "--output " + str(out) + " is not empty; pass --force" in capsys.readouterr().err

    def fail(table: pd.DataFrame) -> None:
        raise ValueError("scores cannot be drawn")

    # A failure while writing leaves the old folder as it was, and no new one.
    monkeypatch.setattr(report, "plot_scores", fail)
    assert main([*command, "--force"]) == 2
    assert "scores cannot be drawn" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["old.md"]
    command[5] = str(tmp_path / "new")
    assert main(command) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no temporary left either
    monkeypatch.undo()
    assert main([*command[:5], str(out), *command[6:], "--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(report.FILES)  # replaced as a whole
