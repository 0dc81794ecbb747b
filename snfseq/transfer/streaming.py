"""Streaming reports: keypoints over a delayed, lossy link, and what each receiver shows.

A sender streams a video's keypoints; they arrive ``delay`` frames late, every ``every``-th
frame only, or not at all (:func:`snfseq.motion.simulate_stream`). The receiver renders every
frame from the video's first frame and the keypoints it has: the newest (``hold``), a line
through the newest two (``linear``) or the mean forecast of a model variant (``GRU-NF mean``,
``GRU-SNF (paper) mean``, ...). :func:`stream_report` sweeps the delay (every frame sent, no
loss), the send interval (with the stream's bit rate) and the loss rate (both at
``sweep_delay``); :func:`stream_sweep` takes one sweep out, :func:`format_stream_report` and
:func:`plot_stream_report` show them.

Forecasts reach ``H = delay + every - 1`` frames ahead (``+ 4 every`` with loss) and
re-encode the newest ``context`` frames at every push (``window=context``): one state kept
over a long stream drifts away from the training windows (``benchmarks/results/stream.md``).
The first ``warmup`` displayed frames of a run are younger than the delay (the context is not
delayed): no run scores them, so that every run scores the same frames.

Example:
    >>> STREAM_PLOTS["every"], SCORES
    ('quality_vs_bandwidth.png', ('mesh_error_px', 'psnr', 'latency_ms'))
"""

from __future__ import annotations

__all__ = [
    "SCORES",
    "STREAM_PLOTS",
    "format_stream_report",
    "plot_stream_report",
    "stream_report",
    "stream_sweep",
]

import math
import os
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike, NDArray
from tqdm.auto import tqdm

from snfseq.data import to_array
from snfseq.files import atomic_write
from snfseq.model import SequenceFlow
from snfseq.motion import KeypointCodec, Receiver, Renderer, bitrate, simulate_stream
from snfseq.motion.stream import ForecastReceiver, HoldReceiver, LinearReceiver, packet_losses
from snfseq.runtime import seeded
from snfseq.snf import Refinement
from snfseq.version import __version__

from .features import model_keypoints, to_mesh
from .rolling import _check_complete, _check_count, _fps, _source, get_refinement, variant_label

#: The scores per receiver and setting: mean mesh keypoint error (px), face PSNR (dB) and
#: time per displayed frame (ms: receive, forecast, render).
SCORES = ("mesh_error_px", "psnr", "latency_ms")
#: The file :func:`plot_stream_report` writes for each sweep.
STREAM_PLOTS = {
    "delay": "quality_vs_delay.png",
    "every": "quality_vs_bandwidth.png",
    "loss": "quality_vs_loss.png",
}
_SWEPT = {"delay": "swept_delays", "every": "swept_every", "loss": "swept_losses"}
_UNITS = {"mesh_error_px": "px", "psnr": "dB", "latency_ms": "ms", "oracle_psnr": "dB"}
_UNITS |= {"mean_age": "frames", "delay": "frames", "every": "frames", "kbit_per_second": "kbit/s"}
_UNITS["loss"] = "fraction of packets lost"
_LABELS = {
    "mesh_error_px": "mesh keypoint error (px, mean over the mesh)",
    "psnr": "face PSNR vs the real frame (dB)",
    "latency_ms": "ms per displayed frame (receive, forecast, render)",
}
_AXES = {
    "delay": "one-way delay (frames)",
    "every": "keypoint stream rate (kbit/s)",
    "loss": "packet loss rate (%)",
}


def _values(name: str, values: Sequence[float], kind: type, low: float) -> list[Any]:
    """The distinct settings, ascending: integers ``>= low``, or (floats) rates in [0, 1)."""
    ok = [
        not isinstance(v, bool) and kind(v) == v and low <= v and (kind is int or v < 1)
        for v in values
    ]
    if not ok or not all(ok):
        rule = f"integers >= {low}" if kind is int else "rates in [0, 1)"
        raise ValueError(f"{name} must be one or more {rule}, got {list(values)}")
    return sorted({kind(v) for v in values})


def _model_text(model: SequenceFlow) -> str:
    config, layout = model.config, "none" if model.layout is None else model.layout.name
    return f"GRU {config.layers}x{config.hidden}, {config.transforms} flow layers, layout {layout}"


def _features(model: SequenceFlow, keypoints: xr.DataArray | ArrayLike) -> NDArray[np.float64]:
    """The model's frames ``Array[T, D]`` of landmarks (through its layout) or of frames."""
    if isinstance(keypoints, xr.DataArray):
        observed = model_keypoints(model, keypoints)
        frames = to_array(observed).astype(np.float64)
        _check_complete(frames, observed.coords["time"].values, _source(observed))
        return frames
    frames = np.asarray(keypoints, dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != model.features:
        raise ValueError(f"keypoints must be Array[T, {model.features}], got {frames.shape}")
    _check_complete(frames, np.arange(len(frames)), "the keypoints")
    return frames


def stream_report(
    model: SequenceFlow,
    video_frames: NDArray[np.uint8],
    keypoints: xr.DataArray | ArrayLike,
    *,
    start: int | None = None,
    delays: Sequence[int] = (0, 2, 4, 6, 8),
    every: Sequence[int] = (1, 2, 4),
    losses: Sequence[float] = (0.0, 0.1, 0.3),
    burst: float | None = None,
    sweep_delay: int = 2,
    variants: Sequence[str | Refinement | None] = ("none", "paper"),
    num_samples: int = 100,
    context: int = 8,
    seed: int | None = 0,
    warmup: int | None = None,
    fps: float | None = None,
    attrs: Mapping[str, str | int | float] | None = None,
    progress: bool = True,
) -> xr.Dataset:
    """Streams a video's keypoints at several delays, send intervals and loss rates, and scores
    what hold, linear and forecast receivers render.

    Every option is checked before any work starts. Each setting runs once, seeded with
    ``seed`` (forecasts and losses alike), so that receivers and settings are compared on the
    same draws.

    Args:
        model: A trained model whose keypoints map to the face mesh (a layout, or the mesh).
        video_frames: The video ``Array[T, H, W, 3]`` (uint8), frame for frame with
            ``keypoints``; its first frame is the source the receivers animate.
        keypoints: Its landmarks ``DataArray[T, K, C]`` (read through the model's layout,
            see :func:`~snfseq.transfer.model_keypoints`) or the model's frames
            ``Array[T, D]``, without NaN.
        start: Position of the first streamed frame (``>= context``; the ``context`` frames
            before it start every receiver); None for ``context``, the whole video.
        delays: One-way delays (frames) of the delay sweep: every frame sent, no loss.
        every: Send intervals (frames) of the bandwidth sweep, at ``sweep_delay``, no loss.
        losses: Packet loss rates in [0, 1) of the loss sweep, at ``sweep_delay``.
        burst: Mean loss burst length (Gilbert model); None for i.i.d. losses.
        sweep_delay: The delay of the bandwidth and loss sweeps.
        variants: Forecast receivers: variant names (``"none"``, ``"paper"``, ``"mala"``,
            ``"hmc"``, ``"rwm"``), Refinements or None, each showing its mean forecast.
        num_samples: Samples ``S`` per forecast.
        context: Frames every receiver starts with; forecasts re-encode the newest this many.
        seed: Seeds every run; None leaves runs unseeded.
        warmup: Displayed frames not scored at the start of every run; None for the largest
            delay minus one.
        fps: Frames per second, for the bit rates; None for the ``fps`` of ``keypoints``.
        attrs: More attributes (the files it came from, ...).
        progress: Show a progress bar.

    Returns:
        A Dataset over ``receiver``, ``delay`` (frames), ``every`` (frames) and ``loss``
        (fraction): :data:`SCORES` per receiver and setting, NaN off the three sweeps (take
        one with :func:`stream_sweep`), ``mean_age`` (frames between the displayed frame and
        the newest received one), ``kbit_per_second`` (``every``: the streamed keypoints
        through :class:`~snfseq.motion.KeypointCodec`, step 1/1024, keyframe every 30) and
        ``oracle_psnr`` (the true keypoints rendered). Attributes: the settings, ``model``,
        ``layout``, ``variants``, ``source``, ``frames_scored``, ``snfseq_version``, ...

    Raises:
        ValueError: Frames and keypoints of different lengths, a bad setting (negative
            delay, loss outside [0, 1), ...), a model that cannot be rendered or is not
            trained, keypoints it cannot read or with NaN, or too few frames.

    Example:
        >>> import numpy as np, xarray as xr
        >>> from snfseq import SequenceFlow, data, transfer
        >>> rng = np.random.default_rng(0)
        >>> face = 0.5 + rng.uniform(-0.2, 0.2, size=(468, 2))
        >>> mesh = xr.DataArray([face + 0.01 * np.sin(t / 3) for t in range(16)],
        ...                     dims=("time", "keypoint", "coord"), attrs={"fps": 25.0})
        >>> [train], layout = transfer.training_keypoints([mesh])
        >>> model = SequenceFlow(features=20, hidden=8, layers=1, transforms=2, flow_hidden=(8,))
        >>> _ = model.fit(data.make_windows([train], 4, 2), context=4, epochs=1, progress=False)
        >>> model.layout = layout
        >>> video = rng.integers(0, 256, (16, 48, 64, 3), dtype=np.uint8)
        >>> report = stream_report(model, video, mesh, delays=(0, 3), every=(1, 2),
        ...     losses=(0.2,), variants=("none",), num_samples=4, context=4, progress=False)
        >>> report.receiver.values.tolist(), dict(report.mesh_error_px.sizes)
        (['hold', 'linear', 'GRU-NF mean'], {'receiver': 3, 'delay': 3, 'every': 2, 'loss': 2})
        >>> float(report.mesh_error_px.sel(receiver="hold", delay=0, every=1, loss=0))
        0.0
    """
    video_frames = np.asarray(video_frames)
    if video_frames.ndim != 4 or video_frames.shape[-1] != 3 or video_frames.dtype != np.uint8:
        raise ValueError(f"video_frames must be uint8 Array[T, H, W, 3], got {video_frames.shape}")
    sweeps = {
        "delay": _values("delays", delays, int, 0),
        "every": _values("every", every, int, 1),
        "loss": _values("losses", losses, float, 0),
    }
    sweep_delay = _check_count("sweep_delay", sweep_delay, 0)
    for loss in sweeps["loss"]:
        packet_losses(0, loss, burst)  # checks burst against every loss rate
    num_samples = _check_count("num_samples", num_samples)
    context = _check_count("context", context, model.config.min_context + 1)
    labels = [f"{variant_label(variant)} mean" for variant in variants]
    if not labels or len(set(labels)) != len(labels):
        raise ValueError(f"variants must be distinct and at least one, got {list(variants)}")
    chosen = {label: get_refinement(v) for label, v in zip(labels, variants, strict=True)}
    if not bool(model.normalizer.fitted):
        raise ValueError("the model is not trained: fit it or load a checkpoint")
    frames = _features(model, keypoints)
    length = len(frames)
    if len(video_frames) != length:
        raise ValueError(
            f"video_frames has {len(video_frames)} frames, keypoints {length}: give the frames "
            "the keypoints were taken from, frame for frame"
        )
    start = context if start is None else _check_count("start", start, context)
    largest = max(*sweeps["delay"], sweep_delay)
    warmup = max(largest - 1, 0) if warmup is None else _check_count("warmup", warmup, 0)
    if length - start - warmup < 1:
        raise ValueError(
            f"{length} frames leave none to score after start {start} and warmup {warmup}"
        )
    if fps is None:
        fps = _fps(keypoints) if isinstance(keypoints, xr.DataArray) else math.nan
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"fps must be a positive number (for the bit rates), got {fps}")
    mesh_of = partial(to_mesh, model)
    renderer = Renderer(video_frames[0], mesh_of(frames[0]))  # refuses models without a mesh

    def receivers(horizon: int) -> dict[str, Receiver]:
        def online(refinement: Refinement | None) -> Any:
            return lambda past: model.online(past, num_samples, horizon, refinement, window=context)

        forecasts = {name: ForecastReceiver(online(r)) for name, r in chosen.items()}
        return {"hold": HoldReceiver(), "linear": LinearReceiver(horizon), **forecasts}

    settings = [(d, 1, 0.0) for d in sweeps["delay"]]
    settings += [(sweep_delay, k, 0.0) for k in sweeps["every"]]
    settings += [(sweep_delay, 1, p) for p in sweeps["loss"]]
    runs, oracle, stream = [], math.nan, slice(start - context, None)
    for delay, interval, loss in tqdm(
        list(dict.fromkeys(settings)), disable=not progress, desc="stream", unit="run"
    ):
        horizon = max(1, delay + interval - 1 + (4 * interval if loss else 0))
        with seeded(seed, [model.device]):
            result = simulate_stream(
                frames[stream],
                receivers=receivers(horizon),
                context=context,
                every=interval,
                delay=delay,
                loss=loss,
                burst=burst if loss else None,
                seed=seed,
                frames=video_frames[stream],
                renderer=renderer,
                to_mesh=mesh_of,
            ).isel(time=slice(warmup, None))
        run = result[list(SCORES)].mean("time").assign(mean_age=result.age.mean())
        runs.append(run.expand_dims(delay=[delay], every=[interval], loss=[loss]))
        oracle = float(result.oracle_psnr.mean())  # the same frames in every run
    report = xr.merge(runs, join="outer", compat="no_conflicts").transpose("receiver", ...)
    rates = []
    for interval in report.every.values.tolist():
        sent = frames[start::interval]
        bound = max(4.0, 2 * float(np.abs(sent).max()))
        codec = KeypointCodec(model.features, step=1 / 1024, bound=bound)
        rates.append(bitrate(codec.encode_sequence(sent), fps=fps / interval).kbit_per_second)
    report["kbit_per_second"] = ("every", rates)
    report["oracle_psnr"] = oracle
    for name, unit in _UNITS.items():
        report[name].attrs["units"] = unit
    times = keypoints.time.values if isinstance(keypoints, xr.DataArray) else np.arange(length)
    report.attrs = {
        "source": _source(keypoints) if isinstance(keypoints, xr.DataArray) else "keypoints",
        "model": _model_text(model),
        "layout": "none" if model.layout is None else model.layout.name,
        "variants": labels,
        "num_samples": num_samples,
        "context": context,
        "seed": "none" if seed is None else int(seed),
        "burst": "none" if burst is None else float(burst),
        "sweep_delay": sweep_delay,
        "swept_delays": sweeps["delay"],
        "swept_every": sweeps["every"],
        "swept_losses": sweeps["loss"],
        "warmup": warmup,
        "first_streamed_frame": int(times[start]),
        "first_scored_frame": int(times[start + warmup]),
        "frames_scored": length - start - warmup,
        "fps": float(fps),
        "snfseq_version": __version__,
        **dict(attrs or {}),
    }
    return report


def stream_sweep(report: xr.Dataset, sweep: str) -> xr.Dataset:
    """One sweep of a :func:`stream_report`: its settings along ``sweep``, the others fixed.

    Args:
        report: What :func:`stream_report` returned (or read back from its file).
        sweep: ``"delay"``, ``"every"`` or ``"loss"``.

    Returns:
        The report's variables along ``sweep`` (and ``receiver``), at the settings swept;
        the other two settings are scalar coordinates.

    Example:
        >>> import numpy as np, xarray as xr
        >>> report = xr.Dataset(
        ...     {"psnr": (("delay", "every", "loss"), np.arange(8.0).reshape(2, 2, 2))},
        ...     coords={"delay": [0, 2], "every": [1, 4], "loss": [0.0, 0.1]},
        ...     attrs={"sweep_delay": 2, "swept_delays": [0, 2], "swept_every": [1, 4],
        ...            "swept_losses": [0.1]})
        >>> stream_sweep(report, "every").psnr.values.tolist()
        [4.0, 6.0]
    """
    if sweep not in STREAM_PLOTS:
        raise ValueError(f"sweep must be one of {list(STREAM_PLOTS)}, got {sweep!r}")
    fixed = {"delay": int(report.attrs["sweep_delay"]), "every": 1, "loss": 0.0}
    fixed[sweep] = np.atleast_1d(report.attrs[_SWEPT[sweep]]).tolist()
    return report.sel(fixed)


def format_stream_report(report: xr.Dataset) -> str:
    """The report as text: one table per sweep, mesh error px / face PSNR dB per receiver.

    Example:
        >>> import numpy as np, xarray as xr
        >>> grid = ("receiver", "delay", "every", "loss")
        >>> report = xr.Dataset(
        ...     {"mesh_error_px": (grid, np.full((1, 1, 1, 1), 1.5)),
        ...      "psnr": (grid, np.full((1, 1, 1, 1), 30.0)),
        ...      "kbit_per_second": ("every", [2.5]), "oracle_psnr": 31.0},
        ...     coords={"receiver": ["hold"], "delay": [2], "every": [1], "loss": [0.0]},
        ...     attrs={"sweep_delay": 2, "swept_delays": [2], "swept_every": [1],
        ...            "swept_losses": [0.0], "source": "clip.mp4", "frames_scored": 9})
        >>> print(format_stream_report(report).splitlines()[3])
          delay 2 (frames)          1.50 / 30.00
    """
    names = [str(name) for name in report.receiver.values]
    head = " " * 24 + " ".join(f"{name:>22s}" for name in names)
    at = f"delay {report.attrs['sweep_delay']}"
    lines = [
        f"{report.attrs.get('source', '')}: {report.attrs.get('frames_scored')} frames scored; "
        f"mesh keypoint error (px) / face PSNR (dB); true keypoints rendered: "
        f"{float(report.oracle_psnr):.2f} dB",
    ]
    titles = {
        "delay": ("delay sweep: every frame sent, no loss", "delay {} (frames)"),
        "every": (f"send-interval sweep: {at}, no loss", "every {} ({:.2f} kbit/s)"),
        "loss": (f"loss sweep: {at}, every frame sent", "loss {:.0%}"),
    }
    for sweep, (title, row) in titles.items():
        line = stream_sweep(report, sweep)
        lines += [title, head]
        for index, value in enumerate(line[sweep].values.tolist()):
            extra = [float(line.kbit_per_second[index])] if sweep == "every" else []
            cells = " ".join(
                f"{float(line.mesh_error_px[k, index]):>14.2f} / {float(line.psnr[k, index]):5.2f}"
                for k in range(len(names))
            )
            lines.append(f"  {row.format(value, *extra):<22s}{cells}")
    return "\n".join(lines)


def plot_stream_report(
    report: xr.Dataset, folder: str | os.PathLike[str], *, title: str | None = None
) -> list[Path]:
    """Plots quality against delay, bandwidth and loss (:data:`STREAM_PLOTS`) into ``folder``.

    Each figure shows the mesh keypoint error, the face PSNR (with the true keypoints'
    rendering for reference) and the time per displayed frame of every receiver; its title
    names the video, the model (size, layout), the variants and ``S``. Files are written
    atomically.

    Args:
        report: What :func:`stream_report` returned.
        folder: An existing folder.
        title: A first title line (e.g. which part of the video streamed).

    Returns:
        The paths written.

    Example:
        >>> plot_stream_report(xr.Dataset(), "no/such/folder")
        Traceback (most recent call last):
        ...
        FileNotFoundError: folder not found: no/such/folder
    """
    from matplotlib.figure import Figure

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder not found: {folder}")
    attrs = report.attrs
    variants = ", ".join(np.atleast_1d(attrs["variants"]).tolist())
    about = (
        f"{Path(str(attrs['source'])).name}: {attrs['frames_scored']} frames scored. Model "
        f"{attrs['model']}; receivers hold, linear, {variants} (S={attrs['num_samples']}, "
        f"context {attrs['context']})"
    )
    lossy = "i.i.d." if attrs["burst"] == "none" else f"Gilbert bursts of {attrs['burst']:g}"
    at = f"delay {attrs['sweep_delay']} frames"
    what = {
        "delay": "Rendered quality vs one-way delay: every frame sent, no loss",
        "every": f"Rendered quality vs keypoint bandwidth: every k-th frame sent, {at}, no "
        "loss (KeypointCodec step 1/1024, keyframe every 30)",
        "loss": f"Rendered quality vs packet loss ({lossy}): every frame sent, {at}",
    }
    written = []
    for sweep, name in STREAM_PLOTS.items():
        line = stream_sweep(report, sweep)
        x = line[sweep].values * (100 if sweep == "loss" else 1)
        x = line.kbit_per_second.values if sweep == "every" else x
        figure = Figure(figsize=(16, 4.8))
        axes = figure.subplots(1, len(SCORES))
        for receiver in line.receiver.values.tolist():
            style = {"linestyle": "--"} if receiver in ("hold", "linear") else {}
            for axis, score in zip(axes, SCORES, strict=True):
                values = line[score].sel(receiver=receiver).values
                axis.plot(x, values, marker="o", label=receiver, **style)
        oracle = float(report.oracle_psnr)
        axes[1].axhline(oracle, color="black", linestyle=":", label="true keypoints rendered")
        if sweep == "every":
            hold = line.mesh_error_px.sel(receiver="hold").values
            for k, rate, error in zip(line.every.values.tolist(), x, hold, strict=True):
                axes[0].annotate(f"every {k}", (rate, error), fontsize=7)
        for axis, score in zip(axes, SCORES, strict=True):
            axis.set(xlabel=_AXES[sweep], ylabel=_LABELS[score])
            axis.grid(alpha=0.3)
        axes[1].legend(fontsize=7)
        heading = f"{title}\n" if title else ""
        figure.suptitle(f"{heading}{what[sweep]}\n{about}", fontsize=9)
        figure.tight_layout()
        with atomic_write(folder / name) as partial_path:
            figure.savefig(partial_path, dpi=100, format="png")
        written.append(folder / name)
    return written
