"""Streaming simulation: keypoints over a lossy, delayed link, shown at the full frame rate.

Every ``every``-th frame's keypoints are sent, lost (i.i.d. or in Gilbert bursts) or delivered
``delay`` frames later (:func:`transmit`). A :class:`Receiver` shows every frame from what has
arrived: the newest keypoints (:class:`HoldReceiver`), a line through the newest two
(:class:`LinearReceiver`) or a model's forecast (:class:`ForecastReceiver`: GRU-NF, GRU-SNF).
:func:`simulate_stream` scores them side by side, keypoints and (optionally) rendered frames.

Timing: every receiver has frames ``0..C-1`` (the ``context``) before the stream frames
``C..T-1``. Display time ``t`` shows an estimate of frame ``t``; frame ``r`` is usable from
display time ``r + delay`` (delay 0: shown as it arrives). The first ``delay - 1`` displayed
frames are younger than the steady state: drop them to score it.

Example:
    >>> import numpy as np
    >>> line = np.outer(np.arange(20.0), [1.0, -2.0])  # Array[T, D]: a straight trajectory
    >>> result = simulate_stream(line, context=4, delay=3, receivers={
    ...     "hold": HoldReceiver(), "linear": LinearReceiver()})
    >>> steady = result.isel(time=slice(2, None))  # hold lags 3 frames, linear is exact
    >>> steady.error.mean("time").round(3).values.tolist(), int(steady.age.min())
    ([6.708, 0.0], 3)
"""

from __future__ import annotations

__all__ = [
    "NEVER",
    "ForecastReceiver",
    "HoldReceiver",
    "LinearReceiver",
    "Receiver",
    "packet_losses",
    "simulate_stream",
    "transmit",
]

import time as clock
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from .quality import face_mask, mae, psnr, ssim

if TYPE_CHECKING:
    from .render import Renderer

NEVER = -1
"""Arrival time of a frame that never arrives (not sent, or lost)."""

_Floats = NDArray[np.float64]
_ToMesh = Callable[[_Floats], ArrayLike]


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _frames(values: ArrayLike, name: str, min_frames: int = 1) -> _Floats:
    """``values`` as float64 ``Array[T, D]``, finite, with at least ``min_frames`` frames."""
    array = np.array(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < min_frames or array.shape[1] < 1:
        raise ValueError(f"{name} must be Array[T, D] with T >= {min_frames}, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contain NaN or inf (fill gaps first)")
    return array


def packet_losses(
    count: int, loss: float, burst: float | None = None, *, seed: int | None = None
) -> NDArray[np.bool_]:
    """Which of ``count`` consecutive packets are lost.

    ``burst=None`` loses each packet independently with probability ``loss``. A ``burst``
    (mean number of packets lost in a row) uses the two-state Gilbert model (Gilbert-Elliott
    with certain loss in the bad state and none in the good one): bad -> good with probability
    ``1 / burst``, good -> bad with ``loss / (burst (1 - loss))``, so that the stationary loss
    rate is ``loss``; the first state is drawn from the stationary distribution.

    Args:
        count: Packets.
        loss: Mean loss rate in [0, 1).
        burst: Mean burst length, ``>= 1`` and ``>= loss / (1 - loss)``; None for i.i.d.
        seed: Seeds the draw.

    Returns:
        bool ``Array[count]``, True where lost.

    Example:
        >>> lost = packet_losses(200_000, 0.2, burst=4.0, seed=0)
        >>> round(float(lost.mean()), 2), round(float(lost.sum() / (lost[1:] > lost[:-1]).sum()))
        (0.2, 4)
    """
    count = _check_int("count", count, 0)
    if not 0 <= loss < 1:  # also rejects NaN
        raise ValueError(f"loss must lie in [0, 1), got {loss!r}")
    if burst is not None and not (burst >= 1 and burst >= loss / (1 - loss)):
        raise ValueError(f"burst must be >= 1 and >= loss / (1 - loss), got {burst!r}")
    draws = np.random.default_rng(seed).random(count + 1)
    if burst is None:
        return draws[1:] < loss
    stay_bad, go_bad = 1 - 1 / burst, loss / (burst * (1 - loss))
    lost = [bool(draws[0] < loss)]  # the state before the first packet: stationary
    for draw in draws[1:]:
        lost.append(bool(draw < (stay_bad if lost[-1] else go_bad)))
    return np.array(lost[1:], dtype=bool)


def transmit(
    count: int,
    *,
    every: int = 1,
    delay: int = 0,
    loss: float = 0.0,
    burst: float | None = None,
    seed: int | None = None,
) -> NDArray[np.int64]:
    """Display time at which each of ``count`` stream frames arrives, or :data:`NEVER`.

    Frames ``0, every, 2 every, ...`` are sent; each packet is lost as :func:`packet_losses`
    draws it, else it arrives ``delay`` frames after its own.

    Args:
        count: Stream frames.
        every: Send every this many frames, ``>= 1``.
        delay: One-way delay in frames, ``>= 0``.
        loss: Mean packet loss rate in [0, 1).
        burst: Mean burst length of the Gilbert model; None for i.i.d. loss.
        seed: Seeds the losses.

    Returns:
        int ``Array[count]``: frame ``i`` arrives at display time ``i + delay``, or never.

    Example:
        >>> transmit(7, every=2, delay=1).tolist()
        [1, -1, 3, -1, 5, -1, 7]
    """
    count = _check_int("count", count, 0)
    every, delay = _check_int("every", every, 1), _check_int("delay", delay, 0)
    sent = np.arange(0, count, every)
    lost = packet_losses(len(sent), loss, burst, seed=seed)
    arrival = np.full(count, NEVER, dtype=np.int64)
    arrival[sent[~lost]] = sent[~lost] + delay
    return arrival


@runtime_checkable
class Receiver(Protocol):
    """What a receiver does: start from the context, take packets, estimate displayed frames.

    Frame indices count from the first context frame. Packets come in index order; ``estimate``
    is asked once per display time, in order, after the packets that arrive then.

    Example:
        >>> isinstance(HoldReceiver(), Receiver), isinstance(object(), Receiver)
        (True, False)
    """

    def start(self, context: ArrayLike) -> None:
        """Resets the receiver to the context frames ``Array[C, D]`` (indices ``0..C-1``)."""

    def receive(self, index: int, frame: ArrayLike) -> None:
        """Takes the keypoints ``Array[D]`` of frame ``index``."""

    def estimate(self, time: int) -> ArrayLike:
        """The keypoints ``Array[D]`` to show at display time ``time``."""


class HoldReceiver:
    """Shows the newest received keypoints until newer ones arrive.

    Example:
        >>> receiver = HoldReceiver()
        >>> receiver.start([[0.0], [1.0]])
        >>> receiver.estimate(5).tolist()
        [1.0]
    """

    def start(self, context: ArrayLike) -> None:
        """Resets to the last context frame."""
        self._frame = _frames(context, "context")[-1]

    def receive(self, index: int, frame: ArrayLike) -> None:
        """Takes the keypoints of frame ``index``."""
        self._frame = np.array(frame, dtype=np.float64)

    def estimate(self, time: int) -> _Floats:
        """The newest received keypoints ``Array[D]``."""
        return self._frame.copy()


class LinearReceiver:
    """Extrapolates the newest two received frames along a straight line.

    Args:
        horizon: Extrapolate at most this many frames past the newest one, then hold; None
            for no limit.

    Example:
        >>> receiver = LinearReceiver(horizon=2)
        >>> receiver.start([[0.0], [1.0]])
        >>> receiver.receive(4, [4.0])  # frames 2 and 3 never came: the slope is per frame
        >>> receiver.estimate(5).tolist(), receiver.estimate(9).tolist()
        ([5.0], [6.0])
    """

    def __init__(self, horizon: int | None = None) -> None:
        self.horizon = None if horizon is None else _check_int("horizon", horizon, 0)

    def start(self, context: ArrayLike) -> None:
        """Resets to the last two context frames (at least two are needed)."""
        frames = _frames(context, "context", 2)
        self._index, self._frame = [len(frames) - 2, len(frames) - 1], [frames[-2], frames[-1]]

    def receive(self, index: int, frame: ArrayLike) -> None:
        """Takes the keypoints of frame ``index``."""
        self._index = [self._index[1], int(index)]
        self._frame = [self._frame[1], np.array(frame, dtype=np.float64)]

    def estimate(self, time: int) -> _Floats:
        """``x_r + (t - r) (x_r - x_q) / (r - q)`` for the newest two frames ``q < r``."""
        (older, newest), (before, last) = self._index, self._frame
        ahead = time - newest if self.horizon is None else min(time - newest, self.horizon)
        return last + ahead * (last - before) / (newest - older)


class ForecastReceiver:
    """Shows a sequence model's forecast of the frames since the newest received one.

    ``start(context[:-1])`` makes an online forecaster whose ``push(frame)`` takes the next
    observed frame and forecasts the ``H`` after it, ``samples: [S, 1, H, D]`` (e.g. ``lambda c:
    model.online(c, num_samples=100, horizon=H, refinement=...)`` of a
    :class:`snfseq.SequenceFlow`); the last context frame is pushed at once. Each arriving frame
    ``r`` is pushed, after stand-ins for the frames since the previous push that never came:
    this receiver's own estimates of them (imputation). Display time ``t > r`` shows step
    ``t - r - 1`` of the newest forecast (its last step once ``t - r > H``), ``t = r`` frame ``r``.

    A forecaster kept over a whole stream sees ever longer histories, ever further from its
    first frames; ``window`` starts a fresh one at every push on the newest ``window - 1``
    frames (received or stand-ins) and pushes the newest: windows, as in training.

    Args:
        start: The factory, ``Array[N, D] -> online forecaster``.
        path: Show the mean of the samples (None) or sample ``path`` of every forecast, one
            coherent sample path per forecast. (Seed torch to make sampling reproducible.)
        window: Frames per fresh forecaster (``>= 2``), or None to keep one forecaster.

    Example:
        >>> class Drift:  # a stand-in forecaster: two samples, +-1 around "one more per step"
        ...     def push(self, frame):
        ...         ahead = frame + np.arange(1.0, 4.0)[:, None]  # [H=3, D]
        ...         return type("Fc", (), {"samples": np.stack([ahead - 1, ahead + 1])[:, None]})
        >>> receiver = ForecastReceiver(lambda context: Drift())
        >>> receiver.start([[0.0], [10.0]])
        >>> [receiver.estimate(t).item() for t in (2, 3, 4, 9)]
        [11.0, 12.0, 13.0, 13.0]
        >>> receiver.receive(4, [20.0])  # frames 2 and 3 are pushed as 11 and 12 first
        >>> receiver.estimate(4).item(), receiver.estimate(5).item(), receiver.pushes
        (20.0, 21.0, 4)
    """

    def __init__(
        self, start: Callable[[_Floats], Any], *, path: int | None = None, window: int | None = None
    ) -> None:
        self.factory = start
        self.path = None if path is None else _check_int("path", path, 0)
        self.window = None if window is None else _check_int("window", window, 2)
        self.pushes = 0

    def start(self, context: ArrayLike) -> None:
        """Starts a forecaster on all context frames but the last, then pushes the last."""
        frames = _frames(context, "context", 2)
        self.pushes, self._history = 0, list(frames[:-1])
        if self.window is None:
            self._online = self.factory(frames[:-1])
        self._push(len(frames) - 1, frames[-1])

    def receive(self, index: int, frame: ArrayLike) -> None:
        """Pushes stand-ins for the frames that never came, then frame ``index``."""
        for missing in range(self._index + 1, index):
            self._push(missing, self.estimate(missing))
        self._push(index, np.array(frame, dtype=np.float64))

    def estimate(self, time: int) -> _Floats:
        """The forecast of frame ``time`` ``Array[D]`` (the frame itself when it is the newest)."""
        if time <= self._index:
            return self._frame.copy()
        return self._track[min(time - self._index, len(self._track)) - 1].copy()

    def _push(self, index: int, frame: _Floats) -> None:
        if self.window is not None:
            self._history = [*self._history[1 - self.window :], frame]
            self._online = self.factory(np.stack(self._history[:-1]))
        samples = torch.as_tensor(self._online.push(frame).samples).detach().cpu().double().numpy()
        self.pushes += 1
        if samples.ndim != 4 or samples.shape[1] != 1 or samples.shape[3] != len(frame):
            raise ValueError(f"samples must be [S, 1, H, {len(frame)}], got {samples.shape}")
        if self.path is not None and self.path >= samples.shape[0]:
            raise ValueError(f"path {self.path} is not among the {samples.shape[0]} samples")
        paths = samples[:, 0]
        self._track = paths.mean(0) if self.path is None else paths[self.path]
        self._index, self._frame = index, frame


def simulate_stream(
    keypoints: ArrayLike,
    *,
    receivers: Mapping[str, Receiver],
    context: int = 8,
    every: int = 1,
    delay: int = 0,
    loss: float = 0.0,
    burst: float | None = None,
    seed: int | None = None,
    point_dims: int = 2,
    frames: NDArray[np.uint8] | None = None,
    renderer: Renderer | None = None,
    to_mesh: _ToMesh | None = None,
    ssim_every: int = 0,
) -> xr.Dataset:
    """Streams keypoints through :func:`transmit` and scores each receiver's displayed frames.

    Args:
        keypoints: The sender's keypoints ``Array[T, D]``, ``point_dims`` numbers per point.
        receivers: Name -> :class:`Receiver`; each is started afresh.
        context: Frames ``C`` every receiver starts with (see the module's timing).
        every: Send every this many frames.
        delay: One-way delay in frames.
        loss: Mean packet loss rate in [0, 1).
        burst: Mean loss burst length (Gilbert model); None for i.i.d. loss.
        seed: Seeds the losses.
        point_dims: Numbers per keypoint (2 for x, y) for the keypoint error.
        frames: With ``renderer`` and ``to_mesh``: the video ``Array[T, H, W, 3]`` (uint8)
            the keypoints were taken from, frame for frame, to score rendered frames against.
        renderer: Renders a mesh ``Array[P, 2]`` (normalised) to a frame.
        to_mesh: Keypoints ``Array[..., D]`` -> mesh ``Array[..., P, 2]`` (e.g.
            ``SequenceFlow.to_mesh``).
        ssim_every: Also score SSIM on every this many displayed frames (0: never; slow).

    Returns:
        A Dataset over ``receiver``, ``time`` (display times ``C..T-1``) and ``feature``:
        ``estimate``, ``truth``, ``error`` (mean keypoint distance), ``latency_ms`` (receive,
        estimate, mesh and render), ``age`` (display time minus the newest received frame),
        ``arrival`` (:data:`NEVER` if not). With frames also ``mesh_error_px`` (to
        ``to_mesh(truth)``), ``psnr``, ``mae``, ``ssim`` (NaN where skipped) on the face (hull
        of ``to_mesh(truth)``), ``render_ms``; ``oracle_psnr``, ``oracle_mae`` render the truth.

    Example:
        >>> import numpy as np
        >>> walk = np.random.default_rng(0).normal(size=(50, 4)).cumsum(0)
        >>> result = simulate_stream(walk, receivers={"hold": HoldReceiver()}, delay=2,
        ...                          loss=0.2, burst=2.0, seed=1)
        >>> dict(result.sizes), result.attrs["loss"]
        ({'receiver': 1, 'time': 42, 'feature': 4}, 0.2)
    """
    values = _frames(keypoints, "keypoints")
    length, features = values.shape
    context = _check_int("context", context, 1)
    if context >= length:
        raise ValueError(f"context must be < the {length} keypoint frames, got {context}")
    point_dims = _check_int("point_dims", point_dims, 1)
    if features % point_dims:
        raise ValueError(f"keypoints have {features} features, not a multiple of {point_dims}")
    chosen = [r for r in receivers.values() if isinstance(r, Receiver)]
    if not chosen or len({*map(id, chosen)}) != len(receivers):
        raise ValueError("receivers must map names to distinct Receiver objects")
    if len({frames is None, renderer is None, to_mesh is None}) > 1:
        raise ValueError("give frames, renderer and to_mesh together, or none of them")
    ssim_every = _check_int("ssim_every", ssim_every, 0)
    if frames is not None and (np.shape(frames)[:1] != (length,) or np.ndim(frames) != 4):
        raise ValueError(f"frames must be Array[T={length}, H, W, 3], got {np.shape(frames)}")
    arrival = transmit(
        length - context, every=every, delay=delay, loss=loss, burst=burst, seed=seed
    )
    arrival = np.where(arrival == NEVER, NEVER, arrival + context)
    arriving: dict[int, list[int]] = {}
    for frame in np.flatnonzero(arrival != NEVER):
        arriving.setdefault(int(arrival[frame]), []).append(int(frame) + context)
    times = np.arange(context, length)
    estimates = np.empty((len(receivers), len(times), features))
    latency = np.empty((len(receivers), len(times)))
    age = np.empty(len(times), dtype=np.int64)
    for receiver in receivers.values():
        receiver.start(values[:context].copy())
    newest = context - 1
    for j, now in enumerate(times.tolist()):
        packets = arriving.get(now, [])
        newest = packets[-1] if packets else newest
        age[j] = now - newest
        for k, receiver in enumerate(receivers.values()):
            tic = clock.perf_counter()
            for index in packets:
                receiver.receive(index, values[index].copy())
            estimates[k, j] = receiver.estimate(now)
            latency[k, j] = 1000 * (clock.perf_counter() - tic)
    truth = values[context:]
    gap = (estimates - truth).reshape(len(receivers), len(times), -1, point_dims)
    data: dict[str, Any] = {
        "estimate": (("receiver", "time", "feature"), estimates),
        "truth": (("time", "feature"), truth),
        "error": (("receiver", "time"), np.linalg.norm(gap, axis=-1).mean(-1)),
        "latency_ms": (("receiver", "time"), latency),
        "age": (("time",), age),
        "arrival": (("time",), arrival),
    }
    if frames is not None and renderer is not None and to_mesh is not None:
        rows = np.concatenate([estimates, truth[None]])
        scores = _pixel_scores(rows, frames[context:], renderer, to_mesh, ssim_every)
        data |= scores
        data["latency_ms"] = (("receiver", "time"), latency + scores["render_ms"][1])
    settings = {"context": context, "every": every, "delay": delay, "loss": float(loss)}
    settings |= {} if burst is None else {"burst": float(burst)}
    settings |= {} if seed is None else {"seed": seed}
    return xr.Dataset(
        data,
        coords={"receiver": list(receivers), "time": times, "feature": np.arange(features)},
        attrs=settings,
    )


def _pixel_scores(
    rows: _Floats, frames: NDArray[np.uint8], renderer: Renderer, to_mesh: _ToMesh, every: int
) -> dict[str, tuple[tuple[str, ...], _Floats]]:
    """Mesh error, face-region PSNR/MAE/SSIM (on every ``every``-th frame) and render time of
    keypoints ``[R + 1, N, D]``: the estimates, then the truth."""
    true_mesh = np.asarray(to_mesh(rows[-1]), dtype=np.float64)[..., :2]
    height, width = frames.shape[1:3]
    masks = face_mask(true_mesh, (height, width))
    names = ("mesh_error_px", "psnr", "mae", "ssim", "render_ms")
    out = {name: np.full(rows.shape[:2], np.nan) for name in names}
    for j, (frame, mask) in enumerate(zip(frames, masks, strict=True)):
        for k, estimate in enumerate(rows[:, j]):
            tic = clock.perf_counter()
            mesh = np.asarray(to_mesh(estimate), dtype=np.float64)[..., :2]
            image = renderer.render(mesh)
            out["render_ms"][k, j] = 1000 * (clock.perf_counter() - tic)
            offset = (mesh - true_mesh[j]) * (width, height)  # pixels
            out["mesh_error_px"][k, j] = np.hypot(*offset.T).mean()
            out["psnr"][k, j] = psnr(image, frame, mask=mask)
            out["mae"][k, j] = mae(image, frame, mask=mask)
            if every and j % every == 0:
                out["ssim"][k, j] = ssim(image, frame, mask=mask)
    result = {name: (("receiver", "time"), values[:-1]) for name, values in out.items()}
    return result | {f"oracle_{name}": (("time",), out[name][-1]) for name in ("psnr", "mae")}
