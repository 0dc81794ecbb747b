"""Streaming reports on real face video: the sweeps, their scores and bit rates, the plots and
the errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import xarray as xr
from matplotlib.figure import Figure

from snfseq import SequenceFlow, data, landmarks, transfer
from snfseq.motion import HoldReceiver, KeypointCodec, LinearReceiver, bitrate, simulate_stream
from snfseq.motion.render import Renderer
from snfseq.transfer import streaming
from snfseq.video import read_video

CONTEXT, FRAMES, START = 4, 24, 6  # frames 2-5 start the receivers, 6-23 are streamed
# Small sweeps: the delay, send-interval and loss lines cross at delay 2, every 1, no loss.
SWEEPS = {"delays": (0, 2, 3), "every": (1, 2, 4), "losses": (0.0, 0.3)}
OPTIONS = {"num_samples": 4, "context": CONTEXT, "progress": False}


@pytest.fixture(scope="module")
def mesh() -> xr.DataArray:
    """The first 24 frames of the carphone clip's face mesh (x, y, z; frame numbers as time)."""
    return landmarks.extract(data.face_video("carphone"), max_frames=FRAMES, progress=False)


@pytest.fixture(scope="module")
def video() -> np.ndarray:
    return read_video(data.face_video("carphone"), max_frames=FRAMES)[0]


@pytest.fixture(scope="module")
def model(mesh: xr.DataArray) -> SequenceFlow:
    """A tiny GRU-NF on the mesh10 layout fitted on the clip, the layout on the model."""
    [train], layout = transfer.training_keypoints([mesh])
    torch.manual_seed(0)
    model = SequenceFlow(features=20, hidden=8, layers=1, transforms=2, flow_hidden=(8,))
    model.fit(data.make_windows([train], CONTEXT, 2), context=CONTEXT, epochs=2, progress=False)
    model.layout = layout
    return model


@pytest.fixture(scope="module")
def report(model, video, mesh) -> xr.Dataset:
    return transfer.stream_report(model, video, mesh, start=START, **SWEEPS, **OPTIONS)


def test_the_report_holds_every_sweep_on_one_grid_with_units(report) -> None:
    receivers = ["hold", "linear", "GRU-NF mean", "GRU-SNF (paper) mean"]
    assert report.receiver.values.tolist() == receivers
    assert (report.delay.values.tolist(), report.every.values.tolist()) == ([0, 2, 3], [1, 2, 4])
    assert report.loss.values.tolist() == [0.0, 0.3]
    for name in transfer.SCORES:
        assert report[name].dims == ("receiver", "delay", "every", "loss")
    units = {name: report[name].attrs["units"] for name in report.variables if name != "receiver"}
    assert units == {
        **{"mesh_error_px": "px", "psnr": "dB", "latency_ms": "ms", "oracle_psnr": "dB"},
        **{"mean_age": "frames", "kbit_per_second": "kbit/s", "delay": "frames"},
        **{"every": "frames", "loss": "fraction of packets lost"},
    }
    # Settings off the three sweeps are not run; the ones on them all are.
    ran = report.mean_age.notnull()
    assert int(ran.sum()) == 6 and bool(ran.sel(delay=3, every=1, loss=0.0))
    assert not ran.sel(delay=3, every=2).any() and not ran.sel(delay=0, loss=0.3).any()
    assert report.latency_ms.where(ran).min() > 0
    warmup = 2  # the largest delay minus one
    attrs = report.attrs
    assert (attrs["warmup"], attrs["frames_scored"]) == (warmup, FRAMES - START - warmup)
    assert (attrs["first_streamed_frame"], attrs["first_scored_frame"]) == (START, START + warmup)
    assert attrs["sweep_delay"] == 2
    assert attrs["variants"] == receivers[2:] and attrs["layout"] == "mesh10"
    assert attrs["model"] == "GRU 1x8, 2 flow layers, layout mesh10"
    line = transfer.stream_sweep(report, "every")
    assert line.mesh_error_px.dims == ("receiver", "every") and int(line.delay) == 2
    assert line.every.values.tolist() == [1, 2, 4] and line.mesh_error_px.notnull().all()


def test_baseline_scores_are_simulate_streams_on_the_steady_frames(
    report, model, video, mesh
) -> None:
    frames = data.to_array(transfer.model_keypoints(model, mesh)).astype(np.float64)
    run = simulate_stream(
        frames[START - CONTEXT :],
        receivers={"hold": HoldReceiver(), "linear": LinearReceiver(horizon=4)},
        context=CONTEXT,
        every=2,
        delay=2,
        frames=video[START - CONTEXT :],
        renderer=Renderer(video[0], model.to_mesh(frames[0])),  # the video's first frame
        to_mesh=model.to_mesh,
    ).isel(time=slice(2, None))
    cell = report.sel(delay=2, every=2, loss=0.0, receiver=["hold", "linear"])
    np.testing.assert_allclose(cell.mesh_error_px, run.mesh_error_px.mean("time"), rtol=1e-9)
    np.testing.assert_allclose(cell.psnr, run.psnr.mean("time"), rtol=1e-9)
    assert float(report.oracle_psnr) == pytest.approx(float(run.oracle_psnr.mean()))


def test_at_delay_0_every_receiver_shows_the_truth(report) -> None:
    now = report.sel(delay=0, every=1, loss=0.0)
    np.testing.assert_allclose(now.mesh_error_px, 0, atol=1e-9)
    np.testing.assert_allclose(now.psnr, float(report.oracle_psnr))
    hold = report.mesh_error_px.sel(receiver="hold", every=1, loss=0.0)
    assert 0 < hold.sel(delay=2) < hold.sel(delay=3)  # older keypoints, larger errors
    assert report.mean_age.sel(every=1, loss=0.0).values.tolist() == [0, 2, 3]


def test_the_bit_rate_grows_as_the_send_interval_shrinks(report, model, mesh) -> None:
    rates = report.kbit_per_second.values
    assert rates[0] > rates[1] > rates[2] > 0
    # Only the streamed frames are sent (not the context), at the video's frame rate / 2.
    frames = data.to_array(transfer.model_keypoints(model, mesh))[START::2]
    packets = KeypointCodec(20, step=1 / 1024).encode_sequence(frames)
    expected = bitrate(packets, fps=mesh.attrs["fps"] / 2).kbit_per_second
    assert float(report.kbit_per_second.sel(every=2)) == pytest.approx(expected)


def test_runs_are_seeded_and_bursts_lose_other_packets(model, video, mesh) -> None:
    options = {**OPTIONS, "delays": (2,), "every": (1,), "losses": (0.3,), "variants": ["none"]}
    one, again, other = (
        transfer.stream_report(model, video, mesh, seed=seed, **options) for seed in (0, 0, 1)
    )
    bursty = transfer.stream_report(model, video, mesh, burst=3.0, **options)
    xr.testing.assert_equal(one.mesh_error_px, again.mesh_error_px)
    error = {
        name: report.mesh_error_px.sel(delay=2, every=1)
        for name, report in (("one", one), ("other", other), ("bursty", bursty))
    }
    assert error["one"].sel(receiver="GRU-NF mean", loss=0.0) != error["other"].sel(
        receiver="GRU-NF mean", loss=0.0
    )  # other forecasts
    hold = {name: float(values.sel(receiver="hold", loss=0.3)) for name, values in error.items()}
    assert hold["one"] != hold["other"] and hold["one"] != hold["bursty"]  # other packets lost
    assert (one.attrs["burst"], bursty.attrs["burst"]) == ("none", 3.0)


def test_text_and_plots_name_what_they_show(report, tmp_path, monkeypatch) -> None:
    text = transfer.format_stream_report(report)
    assert "mesh keypoint error (px) / face PSNR (dB)" in text and "GRU-SNF (paper) mean" in text
    rates = report.kbit_per_second.values
    assert all(f"every {k} ({rate:.2f} kbit/s)" in text for k, rate in zip((1, 2, 4), rates))
    assert "loss 30%" in text and "delay 3 (frames)" in text
    titles, labels = [], []
    save = Figure.savefig

    def record(figure: Figure, *args, **kwargs) -> None:
        titles.append(figure._suptitle.get_text())
        labels.append([axis.get_xlabel() for axis in figure.axes])
        save(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    written = transfer.plot_stream_report(report, tmp_path, title="carphone, first 24 frames")
    names = ["quality_vs_delay.png", "quality_vs_bandwidth.png", "quality_vs_loss.png"]
    assert [path.name for path in written] == names
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)  # no temporary files
    assert all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in written)
    for title in titles:
        for part in ("carphone, first 24 frames", "GRU 1x8, 2 flow layers, layout mesh10"):
            assert part in title
        assert "GRU-NF mean, GRU-SNF (paper) mean (S=4" in title
        assert "carphone_pristine.mp4" in title and "16 frames scored" in title
    assert [axes[0] for axes in labels] == [
        "one-way delay (frames)",
        "keypoint stream rate (kbit/s)",
        "packet loss rate (%)",
    ]


def test_a_failed_plot_leaves_no_file(report, tmp_path, monkeypatch) -> None:
    def fail(figure: Figure, path, **kwargs) -> None:
        path.write_bytes(b"half a png")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", fail)
    with pytest.raises(OSError, match="disk full"):
        transfer.plot_stream_report(report, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"delays": (-1, 2)}, r"delays must be one or more integers >= 0, got \[-1, 2\]"),
        ({"every": (0,)}, "every must be one or more integers >= 1"),
        ({"losses": (0.1, 1.0)}, r"losses must be one or more rates in \[0, 1\)"),
        ({"losses": ()}, r"losses must be one or more rates in \[0, 1\), got \[\]"),
        ({"burst": 0.5}, "burst must be >= 1"),
        ({"variants": ("none", None)}, "variants must be distinct"),
        ({"variants": ("fast",)}, "unknown refinement 'fast'"),
        ({"context": 2}, "context must be an integer >= 3"),
        ({"start": 22, "delays": (0, 3)}, "24 frames leave none to score after start 22"),
        ({"start": 3}, "start must be an integer >= 4, got 3"),
        ({"video": 23}, "video_frames has 23 frames, keypoints 24: give the frames the"),
        ({"holes": True}, r"2 frames of .* have no landmarks \(NaN\): frames 7, 8"),
        ({"array": True}, "fps must be a positive number"),
        ({"no_layout": True}, "without a layout cannot read a 468-point face mesh"),
        ({"no_layout": True, "array": True, "fps": 30}, "cannot be rendered"),
        ({"untrained": True}, "the model is not trained"),
    ],
)
def test_bad_inputs_are_refused_before_any_work(
    change, message, model, video, mesh, monkeypatch
) -> None:
    def never(*args, **kwargs) -> None:
        raise AssertionError("a stream ran before the inputs were checked")

    monkeypatch.setattr(streaming, "simulate_stream", never)
    options = {**OPTIONS, **change}
    keypoints, frames = mesh, video[: options.pop("video", FRAMES)]
    if options.pop("holes", False):
        keypoints = mesh.copy(deep=True)
        keypoints[7:9] = np.nan
    if options.pop("no_layout", False):
        model = copy.deepcopy(model)
        model.layout = None
    if options.pop("untrained", False):
        model = SequenceFlow(features=20, hidden=8, layers=1, transforms=2)
    if options.pop("array", False):
        keypoints = np.zeros((FRAMES, 20))
    with pytest.raises(ValueError, match=message):
        transfer.stream_report(model, frames, keypoints, **options)
