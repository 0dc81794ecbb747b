"""Forecasts over keypoint sequences: rolling lead-h forecasts, and the frames after the last.

Motion transfer hides a network delay of ``h`` frames by showing, at frame ``t``, the forecast
of frame ``t`` made from the frames up to ``t - h``: :func:`lead_forecast` computes that for
every frame of a sequence with the model's online forecaster (each frame pushed once, one
forecast of ``h`` frames per push). :func:`forecast_dataset` forecasts the frames after the last
one, with its context, into one self-contained Dataset (what ``snfseq forecast`` writes).
Variants are named as on the command line: ``"none"`` (GRU-NF), ``"paper"``, ``"mala"``,
``"hmc"``, ``"rwm"`` (GRU-SNF refinements), see :func:`get_refinement` and
:func:`variant_label`.

Example:
    >>> get_refinement("paper").kernel, variant_label("paper")
    ('rwm', 'GRU-SNF (paper)')
"""

from __future__ import annotations

__all__ = ["VARIANTS", "forecast_dataset", "get_refinement", "lead_forecast", "variant_label"]

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import NDArray
from tqdm.auto import tqdm

from snfseq.data import to_array
from snfseq.model import Feedback, SequenceFlow
from snfseq.runtime import seeded
from snfseq.snf import Refinement
from snfseq.version import __version__

from .features import model_keypoints, to_mesh

#: Variant names and their labels in videos and tables.
VARIANTS = {
    "none": "GRU-NF",
    "paper": "GRU-SNF (paper)",
    "mala": "GRU-SNF (MALA)",
    "hmc": "GRU-SNF (HMC)",
    "rwm": "GRU-SNF (RWM)",
}


def get_refinement(name: str | Refinement | None) -> Refinement | None:
    """The refinement of a variant name (a :class:`Refinement` or None is returned as it is).

    ``"none"`` is GRU-NF (no refinement), ``"paper"`` ``Refinement.paper()``, ``"mala"`` and
    ``"hmc"`` the gradient kernels at their defaults, ``"rwm"`` random-walk Metropolis with
    step size 0.1.

    Example:
        >>> get_refinement("none") is None, get_refinement("mala").kernel
        (True, 'mala')
    """
    if name is None or isinstance(name, Refinement):
        return name
    if name not in VARIANTS:
        raise ValueError(f"unknown refinement {name!r}; expected one of {list(VARIANTS)}")
    if name == "none":
        return None
    if name == "paper":
        return Refinement.paper()
    if name == "rwm":
        return Refinement(kernel="rwm", step_size=0.1)
    return Refinement(kernel="mala" if name == "mala" else "hmc")


def variant_label(name: str | Refinement | None) -> str:
    """The label of a variant in videos and tables: ``"GRU-NF"``, ``"GRU-SNF (paper)"``, ...

    Example:
        >>> variant_label(None), variant_label("hmc")
        ('GRU-NF', 'GRU-SNF (HMC)')
    """
    if name is None:
        return VARIANTS["none"]
    if isinstance(name, Refinement):
        return f"GRU-SNF ({name.kernel})"
    if name not in VARIANTS:
        raise ValueError(f"unknown refinement {name!r}; expected one of {list(VARIANTS)}")
    return VARIANTS[name]


def _name(variant: str | Refinement | None) -> str:
    return "none" if variant is None else variant if isinstance(variant, str) else repr(variant)


def _check_count(name: str, value: int, low: int = 1) -> int:
    if isinstance(value, bool) or int(value) != value or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_leads(model: SequenceFlow, lead: int | Sequence[int], context: int) -> list[int]:
    """The distinct leads, ascending, once checked against ``context`` and the model."""
    leads = sorted({_check_count("lead", h) for h in np.atleast_1d(lead).tolist()})
    if not leads:
        raise ValueError("no lead given")
    first = _check_count("context", context) - leads[-1] + 1
    if first < model.config.min_context:
        need = leads[-1] + model.config.min_context - 1
        raise ValueError(
            f"context {context} leaves {first} frames before the first lead-{leads[-1]} "
            f"forecast; the model needs {model.config.min_context}: use context >= {need}"
        )
    return leads


def _check_complete(frames: NDArray[np.floating], times: NDArray[Any], source: str) -> None:
    """Refuses frames with NaN (no landmarks), naming the first of them."""
    missing = np.isnan(frames).any(axis=tuple(range(1, frames.ndim)))
    if missing.any():
        shown = ", ".join(str(t) for t in times[missing][:5])
        more = " ..." if missing.sum() > 5 else ""
        raise ValueError(
            f"{int(missing.sum())} frames of {source} have no landmarks (NaN): frames {shown}"
            f"{more}; fill or drop them first (snfseq extract --gaps trim, a larger --max-gap)"
        )


def _fps(keypoints: xr.DataArray) -> float:
    """Frames per second from the ``fps`` attribute or the ``seconds`` coordinate (nan if none)."""
    fps = float(keypoints.attrs.get("fps", math.nan))
    if math.isfinite(fps) and fps > 0:
        return fps
    if "seconds" in keypoints.coords and keypoints.sizes["time"] > 1:
        step = float(np.median(np.diff(keypoints.coords["seconds"].values)))
        if step > 0:
            return 1.0 / step
    return math.nan


def _source(keypoints: xr.DataArray) -> str:
    return str(keypoints.attrs.get("source", "the keypoints"))


def lead_forecast(
    model: SequenceFlow,
    keypoints: xr.DataArray,
    lead: int | Sequence[int] = 1,
    *,
    context: int = 8,
    num_samples: int = 100,
    refinement: str | Refinement | None = None,
    feedback: Feedback = "sample",
    seed: int | None = 0,
    progress: bool = True,
) -> xr.DataArray:
    """Rolling lead-h forecasts: every frame ``t >= context`` forecast from frames ``<= t - h``.

    One pass of the model's online forecaster: it starts from the frames before the first
    forecast, each later frame is pushed once, and each push forecasts the next ``max(lead)``
    frames, so every lead asked for comes from the same pass and covers the same frames. Each
    push re-encodes the newest ``context`` frames (``window=context``), so that every forecast
    starts, as in training, from a freshly normalised window, however long the video.

    Args:
        model: A trained model.
        keypoints: ``DataArray[T, K, C]`` (a face mesh, or keypoints the model reads, see
            :func:`~snfseq.transfer.model_keypoints`), without NaN.
        lead: The delay ``h`` in frames (>= 1), or several.
        context: Frames before the first forecast frame; ``context >= max(lead) + 1``.
        num_samples: Samples ``S`` per forecast frame.
        refinement: A variant name (``"none"``, ``"paper"``, ...), a Refinement or None.
        feedback: ``"sample"`` or ``"mean"`` (see :meth:`snfseq.SequenceFlow.forecast`).
        seed: Seeds the whole pass (the global random state is left as it was).
        progress: Show a progress bar.

    Returns:
        ``DataArray[S, T - context, K, C]`` with dims ``(sample, time, keypoint, coord)`` in
        the model's keypoints (``time`` the frame numbers, with ``seconds`` and the input's
        other time coordinates; a scalar ``lead`` coordinate), or ``(sample, lead, time,
        keypoint, coord)`` for several leads. With a weighted refinement, ``log_weight``
        (sample, [lead,] time) holds each path's log-weight up to the forecast frame.

    Raises:
        ValueError: Bad sizes, too few frames, or frames with NaN.

    Example:
        >>> import torch, xarray as xr
        >>> from snfseq import SequenceFlow
        >>> model = SequenceFlow(features=2, hidden=8, layers=1, transforms=2)
        >>> _ = model.fit(torch.randn(30, 8, 2).cumsum(1), context=4, epochs=1, progress=False)
        >>> walk = xr.DataArray(torch.randn(12, 1, 2).cumsum(0).numpy(),
        ...                     dims=("time", "keypoint", "coord"))
        >>> fc = lead_forecast(model, walk, lead=2, context=4, num_samples=5, progress=False)
        >>> fc.dims, fc.time.values.tolist()[:3], int(fc.lead)
        (('sample', 'time', 'keypoint', 'coord'), [4, 5, 6], 2)
    """
    leads = _check_leads(model, lead, context)
    num_samples = _check_count("num_samples", num_samples)
    horizon = max(leads)
    first = context - horizon + 1  # frames observed before the first forecast
    observed = model_keypoints(model, keypoints)
    frames, times = to_array(observed), observed.coords["time"].values
    if len(frames) <= context:
        raise ValueError(f"{_source(observed)} has {len(frames)} frames: none after {context}")
    _check_complete(frames, times, _source(observed))
    length = len(frames) - context
    shape = (num_samples, len(leads), length, *observed.shape[1:])
    samples = np.full(shape, np.nan, np.float32)
    log_weights = np.full((num_samples, len(leads), length), np.nan)
    weighted = False
    online = model.online(
        frames[:first], num_samples, horizon, get_refinement(refinement), feedback, context
    )
    last = len(frames) - 1 - leads[0]  # the last frame a forecast needs to have seen
    pushes = tqdm(range(first - 1, last + 1), disable=not progress, unit="frame", desc="forecast")
    with seeded(seed, [model.device]):
        for seen in pushes:
            fc = online.forecast() if seen == first - 1 else online.push(frames[seen])
            path = fc.samples[:, 0].cpu().numpy().reshape(num_samples, horizon, *shape[3:])
            steps = fc.step_log_weights
            cumulative = None if steps is None else steps[:, 0].cumsum(-1).cpu().numpy()
            for index, h in enumerate(leads):
                target = seen + h - context
                if 0 <= target < length:
                    samples[:, index, target] = path[:, h - 1]
                    if cumulative is not None:
                        log_weights[:, index, target] = cumulative[:, h - 1]
                        weighted = True
    kept = observed.isel(time=slice(context, None))
    coords: dict[str, Any] = {str(k): v for k, v in kept.coords.items()}
    coords |= {"sample": np.arange(num_samples), "lead": leads}
    if weighted:
        coords["log_weight"] = (("sample", "lead", "time"), log_weights)
    attrs = {
        **{k: v for k, v in observed.attrs.items() if isinstance(v, (str, int, float))},
        "context": context,
        "num_samples": num_samples,
        "refinement": _name(refinement),
        "feedback": feedback,
        "seed": "none" if seed is None else int(seed),
        "layout": "none" if model.layout is None else model.layout.name,
    }
    dims = ("sample", "lead", "time", "keypoint", "coord")
    result = xr.DataArray(samples, dims=dims, coords=coords, name="forecast", attrs=attrs)
    return result.isel(lead=0) if isinstance(lead, (int, np.integer)) else result


def forecast_dataset(
    model: SequenceFlow,
    keypoints: xr.DataArray,
    *,
    context: int = 8,
    horizon: int = 8,
    num_samples: int = 100,
    refinement: str | Refinement | None = None,
    feedback: Feedback = "sample",
    seed: int | None = 0,
    attrs: Mapping[str, str | int | float] | None = None,
) -> xr.Dataset:
    """Forecasts the frames after the last ``context`` frames, into one self-contained Dataset.

    Args:
        model: A trained model.
        keypoints: ``DataArray[T, K, C]`` that the model reads (see
            :func:`~snfseq.transfer.model_keypoints`); the last ``context`` frames, without
            NaN, condition the forecast.
        context: Frames the forecast conditions on.
        horizon: Frames forecast ``H``.
        num_samples: Samples ``S``.
        refinement: A variant name (``"none"``, ``"paper"``, ...), a Refinement or None.
        feedback: ``"sample"`` or ``"mean"``.
        seed: Makes the forecast reproducible.
        attrs: More attributes (the files it came from, ...).

    Returns:
        A Dataset with ``forecast`` ``(sample, time, keypoint, coord)`` in the model's
        keypoints, ``time`` continuing the input's frame numbers (with ``seconds`` where the
        frame rate is known); ``context`` ``(context_time, keypoint, coord)``, the frames it
        started from; ``log_weight`` ``(sample,)`` for weighted refinements; and for a model
        with a layout ``forecast_mesh`` ``(sample, time, mesh_point, mesh_coord)``, the
        forecast on the full face mesh. Attributes: ``source``, ``fps``, ``layout``,
        ``refinement``, ``seed``, ``snfseq_version``, ... and ``attrs``.

    Example:
        >>> import torch, xarray as xr
        >>> from snfseq import SequenceFlow
        >>> model = SequenceFlow(features=2, hidden=8, layers=1, transforms=2)
        >>> _ = model.fit(torch.randn(30, 8, 2).cumsum(1), context=4, epochs=1, progress=False)
        >>> walk = xr.DataArray(torch.randn(12, 1, 2).cumsum(0).numpy(),
        ...                     dims=("time", "keypoint", "coord"), attrs={"fps": 10.0})
        >>> ds = forecast_dataset(model, walk, context=4, horizon=2, num_samples=3)
        >>> ds.forecast.dims, ds.time.values.tolist(), ds.seconds.values.tolist()
        (('sample', 'time', 'keypoint', 'coord'), [12, 13], [1.2, 1.3])
    """
    context, horizon = _check_count("context", context), _check_count("horizon", horizon)
    num_samples = _check_count("num_samples", num_samples)
    observed = model_keypoints(model, keypoints)
    if observed.sizes["time"] < context:
        raise ValueError(
            f"{_source(observed)} has {observed.sizes['time']} frames; context needs {context}"
        )
    past = observed.isel(time=slice(-context, None))
    frames, times = to_array(past), past.coords["time"].values
    _check_complete(frames, times, _source(observed))
    chosen = get_refinement(refinement)
    fc = model.forecast(frames, horizon, num_samples, chosen, feedback=feedback, seed=seed)
    shape = (num_samples, horizon, *past.shape[1:])
    samples = fc.samples[:, 0].cpu().numpy().reshape(shape)
    start = int(times[-1]) + 1 if np.issubdtype(times.dtype, np.integer) else len(observed)
    fps = _fps(observed)
    keypoint_coords = {
        str(name): coord for name, coord in past.coords.items() if "time" not in coord.dims
    }
    coords: dict[str, Any] = {**keypoint_coords, "time": np.arange(start, start + horizon)}
    context_coords = {"context_time": times}
    if math.isfinite(fps):
        coords["seconds"] = ("time", coords["time"] / fps)
        context_coords["context_seconds"] = ("context_time", times / fps)
    dataset = xr.Dataset(
        {
            "forecast": (("sample", "time", "keypoint", "coord"), samples),
            "context": (("context_time", "keypoint", "coord"), past.values),
        },
        coords={**coords, **context_coords, "sample": np.arange(num_samples)},
    )
    if fc.log_weights is not None:
        dataset["log_weight"] = ("sample", fc.log_weights[:, 0].cpu().numpy())
    if model.layout is not None:
        mesh = to_mesh(model, samples)
        dataset["forecast_mesh"] = (("sample", "time", "mesh_point", "mesh_coord"), mesh)
        labels = ["x", "y", "z"][: mesh.shape[-1]]
        dataset = dataset.assign_coords(mesh_point=np.arange(mesh.shape[-2]), mesh_coord=labels)
    dataset.attrs = {
        "source": _source(observed),
        "fps": fps,
        "layout": "none" if model.layout is None else model.layout.name,
        "refinement": _name(refinement),
        "feedback": feedback,
        "seed": "none" if seed is None else int(seed),
        "context": context,
        "horizon": horizon,
        "num_samples": num_samples,
        "snfseq_version": __version__,
        **dict(attrs or {}),
    }
    return dataset
