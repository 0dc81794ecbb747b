"""Rendering forecasts as video: a source frame animated by true and forecast keypoints.

:func:`render_video` animates one frame of the video (:func:`source_frame`: the first with a
detected face, or a chosen one) with :class:`snfseq.motion.Renderer`, through the model's
layout back to the face mesh (:func:`~snfseq.transfer.to_mesh`): once with the true keypoints
and once per forecast sample. It writes the labelled side-by-side video ("real video",
"rendered from true keypoints", "GRU-NF sample 1", ...) and scores every rendered sample
against the real frame (:class:`~snfseq.transfer.PixelScores`), in one pass over the frames.
:func:`motion_transfer` runs the whole pipeline: landmarks, rolling forecasts, rendering,
scores.

The source frame is given the mesh of its own keypoints through the layout, as every target
is, so that a forecast equal to the truth renders exactly as the truth does and the layout's
own error cancels out of the difference.

Example:
    >>> TRUTH_LABEL, REAL_LABEL
    ('rendered from true keypoints', 'real video')
"""

from __future__ import annotations

__all__ = ["REAL_LABEL", "TRUTH_LABEL", "motion_transfer", "render_video", "source_frame"]

import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import NDArray
from tqdm.auto import tqdm

from snfseq.data.io import as_keypoints
from snfseq.landmarks import FACE_MESH_POINTS, extract
from snfseq.model import SequenceFlow
from snfseq.motion import Renderer, iter_frames, quality, write_video
from snfseq.motion.overlay import label, tile
from snfseq.snf import Refinement

from .features import is_face_mesh, model_keypoints, to_mesh
from .rolling import _check_count, _check_leads, _fps, lead_forecast, variant_label
from .scores import PixelScores

TRUTH_LABEL = "rendered from true keypoints"
REAL_LABEL = "real video"
# Pixels the face region reaches past the hull of the face mesh (hair line, jaw edge).
_FACE_MARGIN = 4.0
_DEFAULT_FPS = 25.0

Frame = NDArray[np.uint8]


def source_frame(keypoints: xr.DataArray, frame: int | None = None) -> int:
    """The frame to animate: ``frame`` if it has a detected face, else the first that has one.

    Frames whose landmarks were interpolated or are missing have no detected face.

    Args:
        keypoints: ``DataArray[T, K, C]`` with frame numbers as ``time`` (and ``detected``,
            ``interpolated`` coordinates where :func:`snfseq.landmarks.extract` made them).
        frame: A frame number, or None for the first frame with a face.

    Returns:
        The frame number.

    Example:
        >>> import numpy as np, xarray as xr
        >>> values = np.ones((4, 468, 2))
        >>> values[0] = np.nan
        >>> source_frame(xr.DataArray(values, dims=("time", "keypoint", "coord"),
        ...                           coords={"time": [10, 11, 12, 13]}))
        11
    """
    keypoints = as_keypoints(keypoints)
    times = keypoints.time.values
    found = ~np.isnan(keypoints.values).any(axis=(1, 2))
    for name, value in (("detected", True), ("interpolated", False)):
        if name in keypoints.coords:
            found &= keypoints.coords[name].values.astype(bool) == value
    where = str(keypoints.attrs.get("source", "the keypoints"))
    if frame is None:
        if not found.any():
            raise ValueError(f"no frame of {where} has a detected face to animate")
        return int(times[np.argmax(found)])
    if frame not in times:
        raise ValueError(f"source frame {frame} is not among frames {times[0]}-{times[-1]}")
    if not found[list(times).index(frame)]:
        raise ValueError(f"source frame {frame} of {where} has no detected face")
    return int(frame)


def _video_frames(video: str | os.PathLike[str] | Frame, times: Sequence[int]) -> Iterator[Frame]:
    """The frames numbered ``times`` (ascending), streamed from a file or taken from an array."""
    if isinstance(video, np.ndarray):
        yield from (video[t] for t in times)
        return
    wanted = set(int(t) for t in times)
    with iter_frames(video, start=int(times[0])) as reader:
        for index, frame in enumerate(reader, start=int(times[0])):
            if index in wanted:
                yield frame
            if index >= times[-1]:
                return
    raise ValueError(f"{video} ends before frame {times[-1]} (its keypoints go that far)")


def _one_frame(video: str | os.PathLike[str] | Frame, frame: int) -> Frame:
    return next(_video_frames(video, [frame]))


def _compose(real: Frame, truth: Frame, rows: list[list[Frame]]) -> Frame:
    """Real frame and truth rendering in the first row, then one row per variant."""
    width = max(2, *(len(row) for row in rows))
    first = [label(real, REAL_LABEL), label(truth, TRUTH_LABEL)]
    blank = np.zeros_like(first[0])
    cells = first + [blank] * (width - 2)
    for row in rows:
        cells += row + [blank] * (width - len(row))
    return tile(cells, width)


def render_video(
    model: SequenceFlow,
    video: str | os.PathLike[str] | Frame,
    keypoints: xr.DataArray,
    forecasts: Mapping[str, xr.DataArray],
    *,
    output: str | os.PathLike[str] | None = None,
    tiles: int = 3,
    source: int | None = None,
    best: int = 20,
    progress: bool = True,
) -> xr.Dataset:
    """Renders true and forecast keypoints over a video, writes it side by side, scores it.

    Args:
        model: The model the forecasts came from (its layout maps them to the mesh).
        video: The video file, or its frames ``Array[N, H, W, 3]`` (uint8) indexed by frame
            number.
        keypoints: ``DataArray[T, K, C]`` of that video (frame numbers as ``time``): the truth.
        forecasts: Variant label to forecast, as :func:`~snfseq.transfer.lead_forecast`
            returns (all with the same frames).
        output: The side-by-side video to write (atomically), or None to score only.
        tiles: Samples shown per variant and lead.
        source: The frame to animate (see :func:`source_frame`).
        best: ``k`` of the best-k-of-N scores.
        progress: Show a progress bar.

    Returns:
        The :meth:`~snfseq.transfer.PixelScores.summary` of every variant and lead, with
        :data:`TRUTH_LABEL` first (the renderer's and layout's own error, one "sample"), and
        attributes ``source_frame``, ``leads``, ``render_ms_per_frame``.

    Raises:
        ValueError: No forecasts or forecasts of different frames, a model whose keypoints
            are no face mesh, a source frame without a face, or a video shorter than the
            keypoints.

    Example:
        >>> import numpy as np, xarray as xr
        >>> from snfseq import SequenceFlow
        >>> rng = np.random.default_rng(0)
        >>> face = 0.5 + rng.uniform(-0.2, 0.2, size=(468, 2))
        >>> mesh = xr.DataArray(  # 6 frames of a drifting "face"
        ...     np.stack([face + 0.002 * t for t in range(6)]), dims=("time", "keypoint", "coord"),
        ...     coords={"time": np.arange(6), "coord": ["x", "y"]})
        >>> model = SequenceFlow(features=936, hidden=8, layers=1, transforms=2)  # reads the mesh
        >>> video = rng.integers(0, 256, (6, 48, 64, 3), dtype=np.uint8)
        >>> exact = mesh.isel(time=slice(2, None)).expand_dims(sample=2).assign_coords(lead=1)
        >>> scores = render_video(model, video, mesh, {"exact": exact}, progress=False)
        >>> scores.variant.values.tolist(), scores.attrs["frames"]
        (['rendered from true keypoints', 'exact'], 4)
        >>> float(scores.apd.sel(variant="exact", lead=1, region="frame"))  # identical samples
        0.0
    """
    if not forecasts:
        raise ValueError("no forecasts to render")
    tiles = _check_count("tiles", tiles)
    first = next(iter(forecasts.values()))
    times = first.time.values
    for name, forecast in forecasts.items():
        if not np.array_equal(forecast.time.values, times):
            raise ValueError(
                f"forecast {name!r} covers other frames than {next(iter(forecasts))!r}"
            )
    truth = model_keypoints(model, keypoints)
    truth_mesh = to_mesh(model, truth)
    # Face regions come from the real mesh where there is one, else from the model's keypoints.
    mask_mesh = truth_mesh
    if is_face_mesh(as_keypoints(keypoints)):
        mask_mesh = as_keypoints(keypoints).values[:, :FACE_MESH_POINTS, :2]
    position = {int(t): index for index, t in enumerate(truth.time.values)}
    start = source_frame(keypoints, source)
    renderer = Renderer(_one_frame(video, start), truth_mesh[position[start]])
    panels = []  # (caption, lead, samples [S, T, K, C])
    several = any(forecast.coords["lead"].size > 1 for forecast in forecasts.values())
    for name, forecast in forecasts.items():
        for h in np.atleast_1d(forecast.coords["lead"].values).tolist():
            chosen = forecast.sel(lead=h) if "lead" in forecast.dims else forecast
            values = chosen.transpose("sample", "time", "keypoint", "coord").values
            caption = f"{name} lead {h}" if several else name
            panels.append((caption, name, int(h), values))
    scores = PixelScores(best)
    seconds = [0.0]

    def frames() -> Iterator[Frame]:
        steps = tqdm(times, disable=not progress, unit="frame", desc="render")
        for index, (t, real) in enumerate(zip(steps, _video_frames(video, times), strict=False)):
            began = time.perf_counter()
            face = quality.face_mask(
                mask_mesh[position[int(t)]], real.shape[:2], margin=_FACE_MARGIN
            )
            rendered_truth = renderer.render(truth_mesh[position[int(t)]])
            scores.add(TRUTH_LABEL, None, rendered_truth[None], real, face)
            rows = []
            for caption, name, h, values in panels:
                rendered = renderer.render_many(to_mesh(model, values[:, index]))
                scores.add(name, h, rendered, real, face)
                shown = rendered[:tiles]
                rows.append([label(f, f"{caption} sample {i + 1}") for i, f in enumerate(shown)])
            seconds[0] += time.perf_counter() - began
            yield _compose(real, rendered_truth, rows)

    if output is None:
        for _ in frames():
            pass
    else:
        fps = _fps(as_keypoints(keypoints))
        write_video(output, frames(), fps if math.isfinite(fps) else _DEFAULT_FPS)
    summary = scores.summary()
    summary.attrs |= {
        "source_frame": start,
        "render_ms_per_frame": 1000 * seconds[0] / max(summary.attrs["frames"], 1),
    }
    return summary


def motion_transfer(
    model: SequenceFlow,
    video: str | os.PathLike[str],
    *,
    keypoints: xr.DataArray | None = None,
    variants: Sequence[str | Refinement | None] = ("none", "paper"),
    lead: int | Sequence[int] = 1,
    context: int = 8,
    num_samples: int = 20,
    best: int = 5,
    tiles: int = 3,
    seed: int | None = 0,
    source: int | None = None,
    max_frames: int | None = None,
    output: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> xr.Dataset:
    """Motion transfer over a video: landmarks, lead-h forecasts, rendering and scores.

    Every option is checked before any work starts. The landmarks are extracted (gaps
    ``"trim"``) unless given; each variant is forecast by :func:`lead_forecast` with the same
    seed; :func:`render_video` renders and scores them.

    Args:
        model: A trained model whose keypoints map to the face mesh (a layout, or the mesh).
        video: The video file.
        keypoints: Its landmarks, if already extracted (frame numbers as ``time``).
        variants: Refinement names (``"none"``, ``"paper"``, ``"mala"``, ``"hmc"``,
            ``"rwm"``), Refinements or None.
        lead: The delay ``h`` in frames, or several.
        context: Frames before the first forecast frame.
        num_samples: Forecast samples per frame, all rendered and scored.
        best: ``k`` of the best-k-of-N scores, at most ``num_samples``.
        tiles: Samples shown per variant and lead, at most ``num_samples``.
        seed: Seeds the forecasts.
        source: The frame to animate (default: the first with a detected face).
        max_frames: Use only the first frames of the video.
        output: The side-by-side video to write, or None.
        progress: Show progress bars.

    Returns:
        The scores of :func:`render_video`, with attributes ``video``, ``variants``,
        ``num_samples``, ``context``, ``seed`` and ``forecast_ms_per_frame`` added.

    Example:
        >>> from snfseq import SequenceFlow
        >>> model = SequenceFlow(features=20, hidden=8, layers=1, transforms=2)
        >>> motion_transfer(model, "clip.mp4", num_samples=4, best=5)
        Traceback (most recent call last):
        ...
        ValueError: best must be between 1 and num_samples = 4, got 5
    """
    num_samples = _check_count("num_samples", num_samples)
    for name, value in (("best", best), ("tiles", tiles)):
        if _check_count(name, value) > num_samples:
            raise ValueError(
                f"{name} must be between 1 and num_samples = {num_samples}, got {value}"
            )
    labels = [variant_label(variant) for variant in variants]
    if not labels or len(set(labels)) != len(labels):
        raise ValueError(f"variants must be distinct and at least one, got {list(variants)}")
    _check_leads(model, lead, context)
    if max_frames is not None:
        max_frames = _check_count("max_frames", max_frames, low=context + 1)
    if not Path(video).is_file():
        raise FileNotFoundError(f"video not found: {video}")
    if output is not None and not Path(output).parent.is_dir():
        raise FileNotFoundError(f"directory not found: {Path(output).parent}")
    if keypoints is None:
        keypoints = extract(video, max_frames=max_frames, gaps="trim", progress=progress)
    elif max_frames is not None:
        keypoints = keypoints.isel(time=keypoints.time.values < max_frames)
    source = source_frame(keypoints, source)  # before the forecasts: a bad choice fails fast
    forecasts, timings = {}, {}
    for variant, name in zip(variants, labels, strict=True):
        began = time.perf_counter()
        forecasts[name] = lead_forecast(
            model,
            keypoints,
            lead,
            context=context,
            num_samples=num_samples,
            refinement=variant,
            seed=seed,
            progress=progress,
        )
        timings[name] = 1000 * (time.perf_counter() - began) / forecasts[name].sizes["time"]
    scores = render_video(
        model,
        video,
        keypoints,
        forecasts,
        output=output,
        tiles=tiles,
        source=source,
        best=best,
        progress=progress,
    )
    settings: dict[str, Any] = {
        "video": str(video),
        "variants": labels,
        "num_samples": num_samples,
        "context": context,
        "seed": seed,
        "forecast_ms_per_frame": timings,
    }
    scores.attrs |= settings
    return scores
