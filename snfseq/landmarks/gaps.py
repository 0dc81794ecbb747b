"""Gaps in keypoint sequences: frames without a detection, and what to do with them.

A frame in which nothing was detected holds NaN. :func:`apply_gap_policy` leaves such gaps
marked, fills short ones by linear interpolation, drops the undetected frames at the start and
end, splits the sequence at long ones, or refuses the sequence; :func:`snfseq.landmarks.extract`
applies it to what it extracts.

Example:
    >>> import numpy as np, xarray as xr
    >>> values = np.array([0.0, np.nan, 2.0, np.nan, np.nan, np.nan, 6.0])[:, None, None]
    >>> da = xr.DataArray(values, dims=("time", "keypoint", "coord"))
    >>> filled = apply_gap_policy(da, "interpolate", max_gap=1)
    >>> filled[:, 0, 0].values, filled.interpolated.values.tolist()
    (array([ 0.,  1.,  2., nan, nan, nan,  6.]), [False, True, False, False, False, False, False])
"""

from __future__ import annotations

from typing import Any, Literal, get_args, overload

import numpy as np
import xarray as xr
from numpy.typing import NDArray

__all__ = ["GapPolicy", "apply_gap_policy"]

GapPolicy = Literal["mark", "interpolate", "trim", "split", "raise"]
"""What to do with frames without a detection: see :func:`apply_gap_policy`."""
_GAP_POLICIES = get_args(GapPolicy)

# Interpolation builds [T, columns] index arrays; blocks of columns bound that memory on long
# videos of dense meshes.
_COLUMN_BLOCK = 256


def _runs(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Half-open [start, stop) ranges of consecutive True entries of a 1-D mask."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), stops.tolist(), strict=True))


def _describe_runs(runs: list[tuple[int, int]]) -> str:
    return ", ".join(f"{a}" if b - a == 1 else f"{a}-{b - 1}" for a, b in runs)


def _fill_short_gaps(
    flat: NDArray[np.floating[Any]], max_gap: int
) -> tuple[NDArray[np.floating[Any]], NDArray[np.bool_]]:
    """Linearly fills interior NaN runs of at most ``max_gap`` frames, column by column.

    Args:
        flat: Values ``Array[T, F]``.
        max_gap: Longest run of missing frames that is filled.

    Returns:
        The filled copy ``Array[T, F]`` and which frames got a filled value, ``Array[T]``.
    """
    length = len(flat)
    out = flat.copy()
    filled = np.zeros(length, dtype=bool)
    if max_gap == 0:
        return out, filled
    positions = np.arange(length)[:, None]
    for start in range(0, flat.shape[1], _COLUMN_BLOCK):
        block = flat[:, start : start + _COLUMN_BLOCK]
        missing = np.isnan(block)
        if not missing.any():
            continue
        before = np.maximum.accumulate(np.where(missing, -1, positions), axis=0)
        after = np.minimum.accumulate(np.where(missing, length, positions)[::-1], axis=0)[::-1]
        # Edge runs have no value on one side and stay missing.
        fill = missing & (before >= 0) & (after < length) & (after - before - 1 <= max_gap)
        rows, cols = np.nonzero(fill)
        low, high = before[rows, cols], after[rows, cols]
        weight = (rows - low) / (high - low)
        out[rows, start + cols] = block[low, cols] + weight * (block[high, cols] - block[low, cols])
        filled |= fill.any(axis=1)
    return out, filled


@overload
def apply_gap_policy(
    keypoints: xr.DataArray,
    gaps: Literal["mark", "interpolate", "trim", "raise"],
    max_gap: int = ...,
) -> xr.DataArray: ...
@overload
def apply_gap_policy(
    keypoints: xr.DataArray, gaps: Literal["split"], max_gap: int = ...
) -> list[xr.DataArray]: ...
@overload
def apply_gap_policy(
    keypoints: xr.DataArray, gaps: GapPolicy, max_gap: int = ...
) -> xr.DataArray | list[xr.DataArray]: ...


def apply_gap_policy(
    keypoints: xr.DataArray, gaps: GapPolicy, max_gap: int = 5
) -> xr.DataArray | list[xr.DataArray]:
    """Handles missing (NaN) values of a keypoint sequence along ``time``.

    Args:
        keypoints: Keypoints with a ``time`` dimension, e.g. ``DataArray[T, K, C]``.
        gaps: ``"mark"`` leaves NaN in place; ``"interpolate"`` fills each run of at most
            ``max_gap`` missing frames linearly between its neighbours, per value (runs at the
            start or end, and longer runs, stay NaN); ``"trim"`` interpolates as well and then
            drops the frames with missing values at the start and end, so that the sequence
            begins and ends with a detection (longer interior runs stay NaN); ``"split"``
            interpolates as well and then cuts the sequence at the frames still missing,
            returning the pieces; ``"raise"`` raises a ValueError naming the frames with
            missing values.
        max_gap: Longest run of missing frames that is interpolated.

    Returns:
        The processed copy with a boolean ``interpolated`` coordinate along ``time``, or for
        ``"split"`` a list of contiguous pieces. ``"trim"`` and ``"split"`` keep the ``time``
        labels (and coordinates such as ``seconds``) of the frames they keep; ``"trim"`` labels
        ``time`` with frame numbers first when it has no labels.

    Example:
        >>> import numpy as np, xarray as xr
        >>> values = np.arange(6.0)[:, None, None] * np.ones((6, 1, 2))
        >>> values[2:4] = np.nan
        >>> da = xr.DataArray(values, dims=("time", "keypoint", "coord"))
        >>> apply_gap_policy(da, "interpolate", max_gap=2)[:, 0, 0].values
        array([0., 1., 2., 3., 4., 5.])
        >>> [len(piece) for piece in apply_gap_policy(da, "split", max_gap=1)]
        [2, 2]
        >>> values[:2] = np.nan  # no detection in the first two frames either
        >>> edges = xr.DataArray(values, dims=("time", "keypoint", "coord"))
        >>> apply_gap_policy(edges, "trim", max_gap=2).time.values  # frame numbers stay real
        array([4, 5])
    """
    if gaps not in _GAP_POLICIES:
        raise ValueError(f"gaps must be one of {_GAP_POLICIES}, got {gaps!r}")
    if int(max_gap) != max_gap or max_gap < 0:
        raise ValueError(f"max_gap must be an integer >= 0, got {max_gap}")
    if "time" not in keypoints.dims:
        raise ValueError(f"keypoints need a 'time' dimension, got dims {keypoints.dims}")
    if gaps == "mark":
        return keypoints
    ordered = keypoints.transpose("time", ...)
    flat = np.asarray(ordered.values, dtype=np.result_type(ordered.dtype, np.float32))
    flat = flat.reshape(len(flat), -1)
    source = keypoints.attrs.get("source", "the sequence")
    if gaps != "mark" and len(flat) and np.isnan(flat).all():
        raise ValueError(f"no detection in any of the {len(flat)} frames of {source}")
    if gaps == "raise":
        missing = np.isnan(flat).any(axis=1)
        if missing.any():
            raise ValueError(
                f"{int(missing.sum())} of {len(flat)} frames of {source} have no detection "
                f"(0-based frames {_describe_runs(_runs(missing))})"
            )
        return keypoints
    values, filled = _fill_short_gaps(flat, int(max_gap))
    previous = keypoints.coords.get("interpolated")
    if previous is not None and previous.dims == ("time",):
        filled |= previous.values.astype(bool)
    result = ordered.copy(data=values.reshape(ordered.shape).astype(ordered.dtype))
    result = result.assign_coords(interpolated=("time", filled)).transpose(*keypoints.dims)
    if gaps == "interpolate":
        return result
    complete = ~np.isnan(values).any(axis=1)
    if not complete.any():
        raise ValueError(f"every frame of {source} has missing values; nothing to keep")
    if gaps == "trim":
        kept = np.flatnonzero(complete)
        if "time" not in result.coords:
            result = result.assign_coords(time=np.arange(result.sizes["time"]))
        return result.isel(time=slice(int(kept[0]), int(kept[-1]) + 1))
    return [result.isel(time=slice(start, stop)) for start, stop in _runs(complete)]
