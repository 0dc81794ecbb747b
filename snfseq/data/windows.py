"""From keypoint sequences to training windows, and train/validation/test splits.

Splits are made on whole sequences before windowing, so that no video contributes windows to
two sides of a split; when there are fewer sequences than parts, each sequence is cut in time
into contiguous blocks instead.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal, TypeVar

import numpy as np
import torch
import xarray as xr
from numpy.typing import ArrayLike, NDArray

__all__ = ["to_array", "make_windows", "split_sequences"]

SequenceT = TypeVar("SequenceT")


def to_array(sequence: xr.DataArray | ArrayLike) -> NDArray[np.float32]:
    """Flattens a keypoint sequence to one feature vector per frame.

    Args:
        sequence: ``DataArray`` with a ``time`` dimension (e.g. ``(time, keypoint, coord)`` or
            ``(time, joint, coord)``; ``time`` is moved first and ``coord`` last), or an array
            ``Array[T, K, C]`` or ``Array[T, D]``.

    Returns:
        ``Array[T, D]`` (float32, C-contiguous) with ``D = K * C``, keypoint-major: the
        coordinates of keypoint 0 first.

    Example:
        >>> import numpy as np
        >>> to_array(np.zeros((24, 68, 2))).shape
        (24, 136)
    """
    if isinstance(sequence, xr.DataArray):
        if "time" not in sequence.dims:
            raise ValueError(f"sequence needs a 'time' dimension, got dims {sequence.dims}")
        last = ("coord",) if "coord" in sequence.dims else ()
        values = np.asarray(sequence.transpose("time", ..., *last).values)
    else:
        values = np.asarray(sequence)
    if values.ndim not in (2, 3):
        raise ValueError(
            "sequence must be [time, keypoint, coord] or [time, features], "
            f"got shape {values.shape}"
        )
    return np.ascontiguousarray(values.reshape(len(values), -1), dtype=np.float32)


def _label(index: int, sequence: Any) -> str:
    attrs = getattr(sequence, "attrs", {})
    name = attrs.get("dataset") or attrs.get("clip") or attrs.get("source")
    return f"{index} ({name})" if name else str(index)


def make_windows(
    sequences: Sequence[xr.DataArray | ArrayLike],
    context: int,
    horizon: int,
    stride: int = 1,
) -> torch.Tensor:
    """Cuts sequences into overlapping windows of ``context + horizon`` frames.

    Sequences shorter than one window are skipped, and so are windows that contain NaN (a
    frame without a detection); both are reported in one warning.

    Args:
        sequences: Keypoint sequences, each accepted by :func:`to_array`; all with the same
            number of features D.
        context: Frames the model conditions on (>= 1).
        horizon: Frames it forecasts (>= 0).
        stride: Step between the starts of consecutive windows of one sequence.

    Returns:
        ``Tensor[N, context + horizon, D]`` (float32), the windows of every sequence in order.

    Raises:
        ValueError: Bad sizes, mismatched feature counts, or no complete window at all.

    Example:
        >>> import numpy as np
        >>> windows = make_windows([np.zeros((100, 10, 2)), np.zeros((50, 10, 2))], 8, 16)
        >>> tuple(windows.shape)
        (104, 24, 20)
    """
    for label, value, low in (
        ("context", context, 1),
        ("horizon", horizon, 0),
        ("stride", stride, 1),
    ):
        if int(value) != value or value < low:
            raise ValueError(f"{label} must be an integer >= {low}, got {value}")
    if len(sequences) == 0:
        raise ValueError("no sequences given")
    length = int(context) + int(horizon)
    arrays = [to_array(sequence) for sequence in sequences]
    features = {array.shape[1] for array in arrays}
    if len(features) > 1:
        raise ValueError(f"sequences have different feature counts {sorted(features)}")
    short, nan_windows, pieces = [], 0, []
    for index, array in enumerate(arrays):
        if len(array) < length:
            short.append(f"{_label(index, sequences[index])}: {len(array)} frames")
            continue
        # sliding_window_view puts the window axis last: [N, D, L] -> [N, L, D].
        windows = np.lib.stride_tricks.sliding_window_view(array, length, axis=0)[:: int(stride)]
        windows = windows.transpose(0, 2, 1)
        complete = ~np.isnan(windows).any(axis=(1, 2))
        nan_windows += int((~complete).sum())
        pieces.append(windows[complete])
    problems = []
    if short:
        problems.append(
            f"skipped {len(short)} sequences shorter than context + horizon = {length} frames "
            f"({'; '.join(short)})"
        )
    if nan_windows:
        problems.append(f"skipped {nan_windows} windows containing NaN")
    if problems:
        warnings.warn("; ".join(problems), stacklevel=2)
    total = sum(len(piece) for piece in pieces)
    if total == 0:
        raise ValueError(
            f"no complete window of {length} frames in {len(arrays)} sequences "
            f"(lengths {[len(array) for array in arrays]})"
        )
    stacked = np.concatenate([piece for piece in pieces if len(piece)], axis=0)
    return torch.from_numpy(np.ascontiguousarray(stacked))


def _check_fractions(fractions: Sequence[float]) -> NDArray[np.float64]:
    parts = np.asarray(fractions, dtype=np.float64)
    if parts.ndim != 1 or len(parts) not in (2, 3):
        raise ValueError(f"fractions must be (train, val) or (train, val, test), got {fractions}")
    if (parts <= 0).any() or not math.isclose(parts.sum(), 1.0, abs_tol=1e-6):
        raise ValueError(f"fractions must be positive and sum to 1, got {fractions}")
    return parts


def _sequence_counts(parts: NDArray[np.float64], count: int) -> NDArray[np.int64]:
    """Sequences per part: proportional, at least one each, summing to ``count``."""
    counts = np.maximum(1, np.floor(parts * count)).astype(np.int64)
    while counts.sum() > count:
        counts[np.argmax(counts)] -= 1
    while counts.sum() < count:
        counts[np.argmax(parts * count - counts)] += 1
    return counts


def _length(sequence: Any) -> int:
    if isinstance(sequence, xr.DataArray):
        if "time" not in sequence.dims:
            raise ValueError(f"sequence needs a 'time' dimension, got dims {sequence.dims}")
        return int(sequence.sizes["time"])
    return len(sequence)


def _slice_time(sequence: Any, start: int, stop: int) -> Any:
    if isinstance(sequence, xr.DataArray):
        return sequence.isel(time=slice(start, stop))
    return sequence[start:stop]


def split_sequences(
    sequences: Sequence[SequenceT],
    fractions: Sequence[float] = (0.8, 0.2),
    *,
    seed: int = 0,
    by: Literal["auto", "sequence", "time"] = "auto",
    gap: int = 0,
) -> tuple[list[SequenceT], ...]:
    """Splits sequences into train/validation(/test) parts before any windowing.

    ``by="sequence"`` shuffles whole sequences (with ``seed``) and deals them to the parts in
    proportion to ``fractions``, at least one each, so windows of one video never land on two
    sides. ``by="time"`` cuts every sequence into contiguous blocks in time, in order (train
    first), of lengths in proportion to ``fractions``, with ``gap`` frames left out between
    consecutive blocks; a block's windows use only its own frames, and a gap of about the
    context length also keeps the first validation contexts from directly continuing the
    training frames. ``by="auto"`` splits by sequence when there are at least as many
    sequences as parts and by time otherwise, which is what the few bundled videos need.

    Args:
        sequences: Arrays ``Array[T, ...]``, tensors, or DataArrays with a ``time`` dimension.
        fractions: ``(train, val)`` or ``(train, val, test)``, positive, summing to 1.
        seed: Seed of the shuffle for ``by="sequence"``.
        by: ``"auto"``, ``"sequence"`` or ``"time"``.
        gap: Frames dropped between consecutive time blocks.

    Returns:
        One list per part, of whole sequences or of time blocks (one per sequence, in the
        input order).

    Example:
        >>> import numpy as np
        >>> train, val = split_sequences([np.zeros((100, 4))], (0.8, 0.2), gap=10)
        >>> [len(x) for x in train], [len(x) for x in val]
        ([72], [18])
    """
    parts = _check_fractions(fractions)
    if by not in ("auto", "sequence", "time"):
        raise ValueError(f"by must be 'auto', 'sequence' or 'time', got {by!r}")
    if int(gap) != gap or gap < 0:
        raise ValueError(f"gap must be an integer >= 0, got {gap}")
    if len(sequences) == 0:
        raise ValueError("no sequences given")
    if by == "auto":
        by = "sequence" if len(sequences) >= len(parts) else "time"
    if by == "sequence":
        if len(sequences) < len(parts):
            raise ValueError(
                f"cannot split {len(sequences)} sequences into {len(parts)} parts by sequence; "
                "use by='time'"
            )
        order = np.random.default_rng(seed).permutation(len(sequences))
        bounds = np.concatenate([[0], np.cumsum(_sequence_counts(parts, len(sequences)))])
        return tuple(
            [sequences[i] for i in order[bounds[k] : bounds[k + 1]]] for k in range(len(parts))
        )
    result: tuple[list[SequenceT], ...] = tuple([] for _ in parts)
    for index, sequence in enumerate(sequences):
        length = _length(sequence)
        usable = length - int(gap) * (len(parts) - 1)
        ends = np.round(np.cumsum(parts) * usable).astype(int)
        sizes = np.diff(np.concatenate([[0], ends]))
        if usable < len(parts) or (sizes < 1).any():
            raise ValueError(
                f"sequence {index} has {length} frames, too few for {len(parts)} time blocks "
                f"with gap {gap}"
            )
        start = 0
        for part, size in enumerate(sizes):
            result[part].append(_slice_time(sequence, start, start + int(size)))
            start += int(size) + int(gap)
    return result
