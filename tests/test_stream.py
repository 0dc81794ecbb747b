"""Streaming simulation: the link's timing and losses, and each receiver against closed forms."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from snfseq.motion.stream import (
    NEVER,
    ForecastReceiver,
    HoldReceiver,
    LinearReceiver,
    Receiver,
    packet_losses,
    simulate_stream,
    transmit,
)

CONTEXT = 6


def _curve(length: int = 60) -> np.ndarray:
    """A smooth, bending trajectory ``Array[T, 4]`` (two keypoints, x and y)."""
    t = np.arange(length, dtype=np.float64)
    return np.column_stack([np.sin(t / 5), 0.01 * t**2, np.cos(t / 7), t])


def _line(length: int = 60) -> np.ndarray:
    return np.outer(np.arange(length, dtype=np.float64), [1.0, -0.5, 0.25, 2.0]) + 3.0


class ConstantVelocity:
    """A fake online forecaster: two samples, one step ``+-1`` around the constant-velocity
    extrapolation of the last two pushed frames; it records what was pushed."""

    def __init__(self, context: np.ndarray, horizon: int = 4, sleep: float = 0.0) -> None:
        self.pushed = [np.array(frame) for frame in context]
        self.horizon, self.sleep = horizon, sleep

    def push(self, frame: np.ndarray) -> object:
        time.sleep(self.sleep)
        self.pushed.append(np.array(frame))
        velocity = self.pushed[-1] - self.pushed[-2]
        steps = np.arange(1, self.horizon + 1)[:, None]
        mean = self.pushed[-1] + steps * velocity  # [H, D]
        return type(
            "Forecast", (), {"samples": torch.as_tensor(np.stack([mean - 1, mean + 1]))[:, None]}
        )


def _forecaster(**options):
    """A ForecastReceiver on the fake, and the list of fakes it started."""
    started: list[ConstantVelocity] = []

    def start(context: np.ndarray) -> ConstantVelocity:
        started.append(ConstantVelocity(context, **options))
        return started[-1]

    return start, started


# ----------------------------------------------------------------------------- transmission


def test_transmit_sends_every_kth_frame_and_delays_it() -> None:
    np.testing.assert_array_equal(
        transmit(7, every=3, delay=2), [2, NEVER, NEVER, 5, NEVER, NEVER, 8]
    )
    np.testing.assert_array_equal(transmit(4), [0, 1, 2, 3])


def test_iid_losses_hit_their_rate_and_are_independent() -> None:
    lost = packet_losses(200_000, 0.3, seed=0)
    assert lost.mean() == pytest.approx(0.3, abs=0.005)
    # Independent: a loss after a loss is as likely as after a delivery.
    assert lost[1:][lost[:-1]].mean() == pytest.approx(0.3, abs=0.01)


@pytest.mark.parametrize(("loss", "burst"), [(0.1, 1.5), (0.2, 4.0), (0.3, 8.0)])
def test_gilbert_losses_hit_their_rate_and_burst_length(loss: float, burst: float) -> None:
    lost = packet_losses(300_000, loss, burst, seed=1)
    starts = np.flatnonzero(lost[1:] & ~lost[:-1]).size + int(lost[0])
    assert lost.mean() == pytest.approx(loss, rel=0.05)
    assert lost.sum() / starts == pytest.approx(burst, rel=0.05)


def test_losses_are_reproducible_by_seed() -> None:
    first = transmit(500, delay=1, loss=0.2, burst=3.0, seed=7)
    np.testing.assert_array_equal(first, transmit(500, delay=1, loss=0.2, burst=3.0, seed=7))
    assert (first != transmit(500, delay=1, loss=0.2, burst=3.0, seed=8)).any()
    arrived = first != NEVER
    np.testing.assert_array_equal(first[arrived], np.flatnonzero(arrived) + 1)


# ----------------------------------------------------------------------------- baselines


def test_without_delay_or_loss_every_receiver_shows_the_truth() -> None:
    keypoints = _curve()
    start, _ = _forecaster()
    receivers = {"hold": HoldReceiver(), "linear": LinearReceiver(), "fc": ForecastReceiver(start)}
    result = simulate_stream(keypoints, receivers=receivers, context=CONTEXT)
    for name in receivers:
        np.testing.assert_array_equal(result.estimate.sel(receiver=name), keypoints[CONTEXT:])
    assert (result.error == 0).all() and (result.age == 0).all()
    np.testing.assert_array_equal(result.time, np.arange(CONTEXT, len(keypoints)))


@pytest.mark.parametrize("delay", [1, 3, 7])
def test_a_delay_shifts_hold_by_exactly_that_many_frames(delay: int) -> None:
    keypoints = _curve()
    result = simulate_stream(
        keypoints, receivers={"hold": HoldReceiver()}, context=CONTEXT, delay=delay
    )
    shown = result.estimate.sel(receiver="hold").values
    steady = np.arange(delay - 1, len(shown))  # before that, the last context frame
    np.testing.assert_array_equal(shown[steady], keypoints[CONTEXT + steady - delay])
    np.testing.assert_array_equal(
        shown[: delay - 1], np.broadcast_to(keypoints[CONTEXT - 1], shown[: delay - 1].shape)
    )
    np.testing.assert_array_equal(result.age[steady], delay)


@pytest.mark.parametrize(("delay", "every"), [(1, 1), (4, 1), (2, 3), (0, 4)])
def test_linear_extrapolation_is_exact_on_a_straight_line_where_hold_is_not(
    delay: int, every: int
) -> None:
    receivers = {"hold": HoldReceiver(), "linear": LinearReceiver()}
    result = simulate_stream(
        _line(), receivers=receivers, context=CONTEXT, delay=delay, every=every
    )
    np.testing.assert_allclose(result.error.sel(receiver="linear"), 0, atol=1e-9)
    assert (result.error.sel(receiver="hold") > 0.5).mean() > 0.6
    # The keypoint error is the mean Euclidean distance per (x, y) point.
    lag = (result.estimate - result.truth).sel(receiver="hold").values.reshape(-1, 2, 2)
    np.testing.assert_allclose(
        result.error.sel(receiver="hold"), np.hypot(*lag.transpose(2, 0, 1)).mean(-1).ravel()
    )


def test_linear_holds_after_its_horizon() -> None:
    receiver = LinearReceiver(horizon=3)
    receiver.start(_line(4))
    np.testing.assert_allclose(receiver.estimate(10), _line(7)[-1])


# ----------------------------------------------------------------------------- forecasting


@pytest.mark.parametrize("path", [None, 0, 1])
def test_a_forecast_receiver_shows_the_step_ahead_of_its_newest_forecast(path: int | None) -> None:
    keypoints, delay = _curve(), 3
    start, started = _forecaster(horizon=5)
    result = simulate_stream(
        keypoints,
        receivers={"fc": ForecastReceiver(start, path=path)},
        context=CONTEXT,
        delay=delay,
    )
    assert len(started) == 1  # one forecaster kept over the stream, fed only real frames
    np.testing.assert_array_equal(np.stack(started[0].pushed), keypoints[: len(keypoints) - delay])
    offset = {None: 0.0, 0: -1.0, 1: 1.0}[path]
    for j, now in enumerate(result.time.values):
        newest = now - int(result.age[j])
        velocity = keypoints[newest] - keypoints[newest - 1]
        expected = keypoints[newest] + (now - newest) * velocity + offset
        np.testing.assert_allclose(result.estimate.sel(receiver="fc")[j], expected)


def test_frames_that_never_came_are_imputed_with_the_receivers_own_estimates() -> None:
    keypoints = _curve(80)
    start, started = _forecaster(horizon=3)
    receiver = ForecastReceiver(start, path=1)
    result = simulate_stream(
        keypoints,
        receivers={"fc": receiver},
        context=CONTEXT,
        delay=2,
        every=2,
        loss=0.3,
        burst=2.0,
        seed=3,
    )
    arrival = result.arrival.values
    assert (arrival[::2] == NEVER).any(), "some sent packets must be lost for this test"
    pushed = np.stack(started[0].pushed)
    delivered = (arrival != NEVER) & (arrival < len(keypoints))  # before the stream ends
    last = CONTEXT + int(np.flatnonzero(delivered)[-1])
    assert len(pushed) == last + 1 == receiver.pushes + CONTEXT - 1  # every frame, in order
    for index in range(CONTEXT, last + 1):
        if delivered[index - CONTEXT]:
            np.testing.assert_array_equal(pushed[index], keypoints[index])
        else:  # step 0 of the forecast after the previous push, sample path 1 (+1)
            guess = 2 * pushed[index - 1] - pushed[index - 2] + 1
            np.testing.assert_allclose(pushed[index], guess)
    shown = result.estimate.sel(receiver="fc").values
    assert np.isfinite(shown).all() and (result.error.sel(receiver="fc") > 0).any()


def test_a_window_restarts_the_forecaster_on_the_newest_frames() -> None:
    keypoints = _curve(30)
    start, started = _forecaster(horizon=2)
    simulate_stream(
        keypoints, receivers={"fc": ForecastReceiver(start, window=4)}, context=CONTEXT, delay=1
    )
    assert len(started) == len(keypoints) - 1 - CONTEXT + 1  # one per push
    for count, fake in enumerate(started):
        newest = CONTEXT - 1 + count
        np.testing.assert_array_equal(np.stack(fake.pushed), keypoints[newest - 3 : newest + 1])


def test_latency_counts_the_receivers_work_on_the_frames_it_happens() -> None:
    start, _ = _forecaster(sleep=0.004)
    receivers = {"fc": ForecastReceiver(start), "hold": HoldReceiver()}
    result = simulate_stream(_curve(30), receivers=receivers, context=CONTEXT, every=3)
    latency = result.latency_ms.sel(receiver="fc").values
    arrived = result.arrival.values != NEVER
    assert latency[arrived][0] >= 3.5  # the first frame follows the context: one push
    assert (latency[arrived][1:] >= 3.5 * 3).all()  # later, two stand-ins and the frame
    # Frames without a packet cost an estimate only (medians: immune to a stray preemption).
    assert np.median(latency[~arrived]) < 1 and result.latency_ms.sel(receiver="hold").median() < 1


# ----------------------------------------------------------------------------- a real model


@pytest.fixture(scope="module")
def carphone():
    """The first 48 carphone frames, their mesh10 keypoints, and a tiny model trained on them."""
    pytest.importorskip("mediapipe", reason="real face landmarks need the landmark extractor")
    pytest.importorskip("cv2")
    from snfseq import SequenceFlow, data
    from snfseq.landmarks import get_layout
    from snfseq.video import read_video

    layout = get_layout("mesh10")
    keypoints = data.load_face("carphone", layout=layout, progress=False).values
    keypoints = keypoints.reshape(len(keypoints), -1).astype(np.float64)
    frames, _ = read_video(data.face_video("carphone"), max_frames=48)
    torch.manual_seed(0)
    model = SequenceFlow(features=20, hidden=16, layers=1, transforms=2, flow_hidden=(16,))
    model.fit(
        data.make_windows([keypoints[:80]], 8, 4, stride=2), context=8, epochs=3, progress=False
    )
    model.layout = layout
    return {"keypoints": keypoints[:48], "frames": frames, "model": model}


def test_a_real_model_streams_real_faces_and_renders_them(carphone) -> None:
    from snfseq import Refinement
    from snfseq.motion.render import Renderer

    model, keypoints, frames = carphone["model"], carphone["keypoints"], carphone["frames"]
    renderer = Renderer(frames[0], model.to_mesh(keypoints[0]))

    def online(refinement=None):
        return lambda context: model.online(
            context, num_samples=8, horizon=4, refinement=refinement
        )

    receivers = {
        "hold": HoldReceiver(),
        "linear": LinearReceiver(horizon=4),
        "GRU-NF": ForecastReceiver(online(), window=9),
        "GRU-SNF path": ForecastReceiver(online(Refinement.paper()), path=0),
    }
    pixels = {"frames": frames, "renderer": renderer, "to_mesh": model.to_mesh}
    torch.manual_seed(0)
    result = simulate_stream(
        keypoints,
        receivers=receivers,
        context=10,
        delay=2,
        loss=0.2,
        seed=0,
        ssim_every=19,
        **pixels,
    )
    assert dict(result.sizes) == {"receiver": 4, "time": 38, "feature": 20}
    for name in ("error", "mesh_error_px", "psnr", "mae", "latency_ms", "render_ms"):
        assert np.isfinite(result[name]).all(), name
    assert np.isfinite(result.ssim).sum() == 4 * 2  # display frames 0 and 19
    hold = float(result.error.sel(receiver="hold").mean())
    assert 0 < float(result.error.sel(receiver="GRU-NF").mean()) < 3 * hold
    assert (result.latency_ms >= result.render_ms).all()
    # Without delay every receiver shows the received frame: exactly the truth's render.
    exact = simulate_stream(
        keypoints[:16], receivers=receivers, context=10, **{**pixels, "frames": frames[:16]}
    )
    np.testing.assert_array_equal(exact.psnr, np.broadcast_to(exact.oracle_psnr, exact.psnr.shape))
    np.testing.assert_allclose(exact.mesh_error_px, 0, atol=1e-9)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"delay": -1}, "delay must be an integer >= 0"),
        ({"delay": 1.5}, "delay must be an integer >= 0"),
        ({"every": 0}, "every must be an integer >= 1"),
        ({"loss": 1.0}, r"loss must lie in \[0, 1\)"),
        ({"loss": -0.1}, r"loss must lie in \[0, 1\)"),
        ({"loss": float("nan")}, r"loss must lie in \[0, 1\)"),
        ({"loss": 0.6, "burst": 1.2}, "burst must be >= 1 and >= loss"),
        ({"loss": 0.1, "burst": 0.5}, "burst must be >= 1 and >= loss"),
        ({"context": 0}, "context must be an integer >= 1"),
        ({"context": 20}, "context must be < the 20 keypoint frames"),
        ({"point_dims": 3}, "not a multiple of 3"),
        ({"receivers": {}}, "receivers must map names to distinct Receiver"),
        ({"receivers": {"x": object()}}, "receivers must map names to distinct Receiver"),
        ({"receivers": dict.fromkeys("ab", HoldReceiver())}, "names to distinct Receiver"),
        ({"to_mesh": np.asarray}, "give frames, renderer and to_mesh together"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(options: dict, message: str) -> None:
    arguments = {"receivers": {"hold": HoldReceiver()}, "context": 4} | options
    with pytest.raises(ValueError, match=message):
        simulate_stream(_line(20), **arguments)


@pytest.mark.parametrize(
    ("keypoints", "message"),
    [
        (np.zeros(20), r"keypoints must be Array\[T, D\]"),
        (np.zeros((20, 5, 2)), r"keypoints must be Array\[T, D\]"),
        (np.full((20, 4), np.nan), "keypoints contain NaN"),
    ],
)
def test_keypoints_of_the_wrong_shape_are_refused(keypoints: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        simulate_stream(keypoints, receivers={"hold": HoldReceiver()}, context=4)


def test_receivers_refuse_what_they_cannot_use() -> None:
    assert isinstance(ForecastReceiver(lambda c: None), Receiver)
    with pytest.raises(ValueError, match="context must be Array"):
        LinearReceiver().start(np.zeros((1, 3)))
    start, _ = _forecaster(horizon=2)
    with pytest.raises(ValueError, match="path 2 is not among the 2 samples"):
        ForecastReceiver(start, path=2).start(_line(4))
    with pytest.raises(ValueError, match="window must be an integer >= 2"):
        ForecastReceiver(start, window=1)
    bad = ForecastReceiver(
        lambda c: type(
            "Online", (), {"push": lambda self, f: type("F", (), {"samples": np.zeros((3, 4))})}
        )()
    )
    with pytest.raises(ValueError, match=r"samples must be \[S, 1, H, 4\]"):
        bad.start(_line(4))
