"""Pixel metrics of rendered frames: MAE, PSNR, SSIM, pixel APD, best-of-k, face masks.

The GRU-SNF paper scores rendered video: MAE of the best 20 of 100 samples for fidelity, the
mean absolute pairwise difference between samples (APD) for diversity. Here with PSNR and SSIM,
on uint8 RGB frames ``NDArray[..., H, W, 3]``, samples first: ``NDArray[S, ..., H, W, 3]``. A
reference (ground truth) ``[..., H, W, 3]`` matches the trailing axes of the frames and
broadcasts over the rest: ``samples [S, T, H, W, 3]`` are scored against ``truth [T, H, W, 3]``.

Every metric is computed per frame and returns ``float64`` with the frames' leading shape
``[...]``; ``mask=`` (bool ``[H, W]``, or ``[..., H, W]`` broadcasting per frame, such as
:func:`face_mask`) restricts it to the selected pixels, all three channels counted. Errors are
in 8-bit units (``0..255``), computed in exact integer arithmetic.

Example:
    >>> import numpy as np
    >>> truth = np.zeros((2, 16, 16, 3), np.uint8)
    >>> samples = np.stack([truth, truth + 2, truth + 6])
    >>> mae(samples, truth)
    array([[0., 0.], [2., 2.], [6., 6.]])
    >>> best_of(samples, truth, metric="mae", k=2), best_of(samples, truth, k=None)
    (1.0, 2.666...)
    >>> pixel_apd(samples)  # pairs differ by 2, 6 and 4
    array([4., 4.])
"""

from __future__ import annotations

__all__ = ["FrameMetric", "best_of", "face_mask", "mae", "pixel_apd", "psnr", "ssim"]

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from snfseq.landmarks import to_pixels

FrameMetric = Literal["mae", "psnr", "ssim"]

# skimage's default uniform SSIM window; its mean SSIM ignores a (7 - 1) // 2 pixel border.
_SSIM_WINDOW = 7
_SSIM_BORDER = (_SSIM_WINDOW - 1) // 2
# Elements of the sorted block (and its int64 product) in pixel_apd: memory stays bounded.
_APD_BUDGET = 1 << 22
# Pixel centres this close to a hull edge count as on it: normalised landmarks round off edges.
_EDGE_TOLERANCE = 1e-6

_Frames = NDArray[np.uint8]
_Mask = NDArray[np.bool_]
_Scores = NDArray[np.float64]
_FrameScore = Callable[[_Frames, _Frames, _Mask | None], float]


# ----------------------------------------------------------------------------- checks


def _check_frames(name: str, value: object, min_ndim: int = 3) -> _Frames:
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(value).__name__}")
    if value.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 RGB frames, got dtype {value.dtype}")
    if value.ndim < min_ndim or value.shape[-1] != 3 or 0 in value.shape:
        axes = "[S, ..., H, W, 3]" if min_ndim > 3 else "[..., H, W, 3]"
        raise ValueError(f"{name} must have non-empty shape {axes}, got {value.shape}")
    return value


def _check_reference(reference: object, frames: _Frames) -> _Frames:
    reference = _check_frames("reference", reference)
    if reference.shape != frames.shape[-reference.ndim :]:
        raise ValueError(f"reference {reference.shape} must end the frames' shape {frames.shape}")
    return reference


def _check_mask(mask: object, shape: tuple[int, ...], border: int = 0) -> _Mask | None:
    """``mask`` as a read-only view of ``shape = [..., H, W]``, less a ``border``-pixel strip."""
    if mask is None:
        return None
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
        dtype = getattr(mask, "dtype", type(mask).__name__)
        raise ValueError(f"mask must be a bool numpy array, got {dtype}")
    if mask.ndim < 2 or mask.shape[-2:] != shape[-2:]:
        raise ValueError(
            f"mask must have shape [..., H, W], (H, W) = {shape[-2:]}, got {mask.shape}"
        )
    if border:
        interior = np.zeros(shape[-2:], dtype=bool)
        interior[border:-border, border:-border] = True
        mask = mask & interior
    try:
        broadcast = np.broadcast_to(mask, shape)
    except ValueError:
        raise ValueError(f"mask of shape {mask.shape} does not broadcast to {shape}") from None
    if not mask.any(axis=(-2, -1)).all():
        where = f" outside the {border}-pixel border that SSIM ignores" if border else ""
        raise ValueError(f"mask selects no pixels{where} in some frame")
    return broadcast


def _check_number(name: str, value: object, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    if not (0 < float(value) < np.inf if positive else 0 <= float(value) < np.inf):
        raise ValueError(f"{name} must be finite and {'> 0' if positive else '>= 0'}, got {value}")
    return float(value)


# ----------------------------------------------------------------------------- core


def _per_frame(
    score: _FrameScore, frames: _Frames, reference: _Frames, mask: _Mask | None
) -> _Scores:
    """``score`` of every frame ``[H, W, 3]``, one at a time so temporaries stay one frame."""
    lead = frames.shape[:-3]
    reference = np.broadcast_to(reference, frames.shape)
    out = np.empty(lead, dtype=np.float64)
    for index in np.ndindex(lead):
        out[index] = score(frames[index], reference[index], None if mask is None else mask[index])
    return out


def _select(values: NDArray, mask: _Mask | None) -> NDArray:
    """The ``[H, W, 3]`` values of the masked pixels (all of them without a mask)."""
    return values if mask is None else values[mask]


def _abs_error(frame: NDArray, reference: NDArray, mask: _Mask | None) -> float:
    return float(_select(np.abs(frame.astype(np.int16) - reference), mask).mean())


def _squared_error(frame: NDArray, reference: NDArray, mask: _Mask | None) -> float:
    diff = frame.astype(np.int32) - reference
    return float(_select(diff * diff, mask).mean())


def _ssim_score(frame: NDArray, reference: NDArray, mask: _Mask | None) -> float:
    # Imported on first use: scikit-image belongs to the optional "video" extra.
    from skimage.metrics import structural_similarity

    kwargs = {"win_size": _SSIM_WINDOW, "channel_axis": -1, "data_range": 255}
    if mask is None:
        return float(structural_similarity(frame, reference, **kwargs))
    _, ssim_map = structural_similarity(frame, reference, full=True, **kwargs)
    return float(ssim_map[mask].mean())


def _sorted_pair_sums(stack: _Frames) -> NDArray[np.int64]:
    """``sum_{i<j} |x_i - x_j|`` per column of ``stack [S, F]``, exactly, in ``O(S log S)``."""
    num = stack.shape[0]
    # In sorted order x_(k) is the larger of k pairs and the smaller of S - 1 - k pairs.
    coefficients = 2 * np.arange(num, dtype=np.int64) - (num - 1)
    out = np.empty(stack.shape[1], dtype=np.int64)
    block = max(1, _APD_BUDGET // num)
    for start in range(0, stack.shape[1], block):
        ordered = np.sort(stack[:, start : start + block], axis=0)
        out[start : start + block] = coefficients @ ordered.astype(np.int64)
    return out


# ----------------------------------------------------------------------------- per frame


def mae(frames: _Frames, reference: _Frames, *, mask: _Mask | None = None) -> _Scores:
    r"""Mean absolute error per frame, over the (masked) pixels and the three channels.

    Args:
        frames: ``NDArray[..., H, W, 3]`` uint8 rendered frames (samples first, if any).
        reference: ``NDArray[..., H, W, 3]`` uint8 ground truth, matching the trailing axes of
            ``frames`` and broadcast over the others.
        mask: bool ``[H, W]`` (or ``[..., H, W]``, broadcast per frame) pixels to score.

    Returns:
        ``NDArray[...]`` float64, in 8-bit units (0 to 255); lower is better.

    Example:
        >>> import numpy as np
        >>> reference = np.zeros((4, 4, 3), np.uint8)
        >>> frames = np.stack([reference, reference + 3])
        >>> frames[1, 0, 0] = 99
        >>> mae(frames, reference)
        array([0., 9.])
        >>> mask = np.ones((4, 4), bool)
        >>> mask[0, 0] = False
        >>> mae(frames, reference, mask=mask)
        array([0., 3.])
    """
    frames = _check_frames("frames", frames)
    reference = _check_reference(reference, frames)
    mask = _check_mask(mask, frames.shape[:-1])
    return _per_frame(_abs_error, frames, reference, mask)


def psnr(
    frames: _Frames, reference: _Frames, *, mask: _Mask | None = None, data_range: float = 255
) -> _Scores:
    r"""Peak signal-to-noise ratio per frame, ``10 log10(data_range**2 / MSE)`` in dB.

    The MSE is taken over the (masked) pixels and the three channels; identical frames give
    ``inf``, so a mean over frames or samples that includes one is ``inf`` too.

    Args:
        frames: ``NDArray[..., H, W, 3]`` uint8 rendered frames (samples first, if any).
        reference: ``NDArray[..., H, W, 3]`` uint8 ground truth, matching the trailing axes of
            ``frames`` and broadcast over the others.
        mask: bool ``[H, W]`` (or ``[..., H, W]``, broadcast per frame) pixels to score.
        data_range: The peak value, 255 for 8-bit frames.

    Returns:
        ``NDArray[...]`` float64 decibels; higher is better.

    Example:
        >>> import numpy as np
        >>> reference = np.zeros((2, 4, 4, 3), np.uint8)
        >>> psnr(reference + 255, reference), psnr(reference, reference)
        (array([0., 0.]), array([inf, inf]))
        >>> psnr(reference + 51, reference, data_range=255)
        array([13.979..., 13.979...])
    """
    frames = _check_frames("frames", frames)
    reference = _check_reference(reference, frames)
    mask = _check_mask(mask, frames.shape[:-1])
    peak = _check_number("data_range", data_range, positive=True)
    mse = _per_frame(_squared_error, frames, reference, mask)
    with np.errstate(divide="ignore"):  # identical frames: MSE 0, PSNR inf
        return np.asarray(10.0 * np.log10(peak**2 / mse))


def ssim(frames: _Frames, reference: _Frames, *, mask: _Mask | None = None) -> _Scores:
    r"""Structural similarity per frame, by ``skimage.metrics.structural_similarity``.

    skimage's defaults (a 7 x 7 uniform window, sample covariances, ``K1 = 0.01``,
    ``K2 = 0.03``) on each RGB channel (``channel_axis=-1``, ``data_range=255``), averaged.
    With a mask the SSIM map (``full=True``) is averaged over the masked pixels; like the
    unmasked mean, it leaves out the 3-pixel border where the window reaches past the frame,
    so an all-true mask gives the unmasked value.

    Args:
        frames: ``NDArray[..., H, W, 3]`` uint8 rendered frames (samples first, if any),
            ``H, W >= 7``.
        reference: ``NDArray[..., H, W, 3]`` uint8 ground truth, matching the trailing axes of
            ``frames`` and broadcast over the others.
        mask: bool ``[H, W]`` (or ``[..., H, W]``, broadcast per frame) pixels to score.

    Returns:
        ``NDArray[...]`` float64 in ``[-1, 1]``, 1 for identical frames; higher is better.

    Example:
        >>> import numpy as np
        >>> reference = np.tile(np.arange(0, 240, 15, dtype=np.uint8), (16, 1))
        >>> reference = np.repeat(reference[..., None], 3, axis=-1)
        >>> ssim(reference, reference), ssim(reference // 2, reference)
        (array(1.), array(0.645...))
    """
    frames = _check_frames("frames", frames)
    reference = _check_reference(reference, frames)
    if min(frames.shape[-3:-1]) < _SSIM_WINDOW:
        raise ValueError(f"SSIM needs frames of at least 7 x 7 pixels, got {frames.shape[-3:-1]}")
    mask = _check_mask(mask, frames.shape[:-1], border=_SSIM_BORDER)
    return _per_frame(_ssim_score, frames, reference, mask)


_METRICS = {"mae": mae, "psnr": psnr, "ssim": ssim}


# ----------------------------------------------------------------------------- samples


def pixel_apd(samples: _Frames, *, mask: _Mask | None = None) -> _Scores:
    r"""Mean absolute pairwise difference between rendered samples, per frame (diversity).

    The paper's APD on pixels: ``|x_i - x_j|`` averaged over the distinct pairs ``i < j`` of
    samples and over the (masked) pixels and channels of each frame. Computed exactly from
    the sorted samples of every pixel in ``O(S log S)``, over blocks of pixels of bounded
    size; no ``[S, S, ...]`` array is formed. Average the result over frames for the video's
    figure (frames with equal mask sizes weigh the same either way).

    Args:
        samples: ``NDArray[S, ..., H, W, 3]`` uint8 rendered samples, ``S >= 2``.
        mask: bool ``[H, W]`` (or ``[..., H, W]``, broadcast per frame) pixels to score.

    Returns:
        ``NDArray[...]`` float64 in 8-bit units, 0 when all samples are identical.

    Example:
        >>> import numpy as np
        >>> frame = np.zeros((4, 4, 3), np.uint8)
        >>> pixel_apd(np.stack([frame, frame + 1, frame + 3]))
        array(2.)
    """
    samples = _check_frames("samples", samples, min_ndim=4)
    num = samples.shape[0]
    if num < 2:
        raise ValueError(f"pixel_apd needs at least 2 samples, got S={num}")
    mask = _check_mask(mask, samples.shape[1:-1])
    lead, frame_shape = samples.shape[1:-3], samples.shape[-3:]
    pairs = num * (num - 1) // 2
    out = np.empty(lead, dtype=np.float64)
    for index in np.ndindex(lead):
        stack = samples[(slice(None), *index)].reshape(num, -1)
        pair_sums = _sorted_pair_sums(stack).reshape(frame_shape)
        out[index] = _select(pair_sums, None if mask is None else mask[index]).mean() / pairs
    return out


def best_of(
    samples: _Frames,
    reference: _Frames,
    *,
    metric: FrameMetric = "mae",
    k: int | None = 20,
    mask: _Mask | None = None,
) -> float:
    r"""Mean score of the ``k`` best samples (``k=None``: of all samples).

    A sample's score is its per-frame ``metric`` (:func:`mae`, :func:`psnr` or :func:`ssim`)
    averaged over all of its frames, i.e. over every axis between ``S`` and ``[H, W, 3]``.
    The best samples are those of lowest MAE or of highest PSNR / SSIM, so ``best_of`` is
    the mean of the ``k`` smallest MAEs or of the ``k`` largest PSNRs / SSIMs. The paper
    reports MAE with ``k=20`` of 100 samples; best-of-k rewards spread, so report the
    all-sample figure (``k=None``) beside it.

    Args:
        samples: ``NDArray[S, ..., H, W, 3]`` uint8 rendered samples of one forecast.
        reference: ``NDArray[..., H, W, 3]`` uint8 ground truth, usually
            ``samples.shape[1:]``, broadcast over the leading axes.
        metric: ``"mae"``, ``"psnr"`` or ``"ssim"``.
        k: How many of the best samples to average, ``1 <= k <= S``; ``None`` for all.
        mask: bool ``[H, W]`` (or ``[..., H, W]``, broadcast per frame) pixels to score.

    Returns:
        The mean score, a float.

    Example:
        >>> import numpy as np
        >>> truth = np.zeros((3, 8, 8, 3), np.uint8)
        >>> samples = np.stack([truth + 10, truth, truth + 4, truth + 1])
        >>> best_of(samples, truth, k=2), best_of(samples, truth, k=None)
        (0.5, 3.75)
        >>> best_of(samples, truth, metric="psnr", k=1)
        inf
    """
    samples = _check_frames("samples", samples, min_ndim=4)
    if metric not in _METRICS:
        raise ValueError(f"metric must be 'mae', 'psnr' or 'ssim', got {metric!r}")
    num = samples.shape[0]
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= num):
        raise ValueError(f"k must be an int in [1, S={num}] or None, got {k!r}")
    scores = _METRICS[metric](samples, reference, mask=mask)
    per_sample = np.sort(scores.reshape(num, -1).mean(axis=1))
    if k is None:
        return float(per_sample.mean())
    best = per_sample[:k] if metric == "mae" else per_sample[num - k :]
    return float(best.mean())


# ----------------------------------------------------------------------------- masks


def _convex_hull(points: NDArray[np.float64]) -> NDArray[np.float64]:
    """Hull vertices ``[V, 2]`` in counter-clockwise order (monotone chain); ``V < 3`` if flat."""
    unique = np.unique(points, axis=0)  # sorted by x, then y
    if len(unique) < 3:
        return unique

    def chain(ordered: NDArray[np.float64]) -> list[NDArray[np.float64]]:
        out: list[NDArray[np.float64]] = []
        for point in ordered:
            while len(out) >= 2:
                (ax, ay), (bx, by) = out[-1] - out[-2], point - out[-2]
                if ax * by - ay * bx > 0:
                    break
                out.pop()
            out.append(point)
        return out[:-1]

    return np.array(chain(unique) + chain(unique[::-1]))


def _hull_mask(hull: NDArray[np.float64], shape: tuple[int, int], margin: float) -> _Mask:
    """Pixels whose centre lies in the closed hull or within ``margin`` of it."""
    ys = np.arange(shape[0], dtype=np.float64)[:, None]
    xs = np.arange(shape[1], dtype=np.float64)[None, :]
    inside = np.full(shape, len(hull) >= 3)
    distance = np.full(shape, np.inf)
    for start, end in zip(hull, np.roll(hull, -1, axis=0), strict=True):
        (ex, ey), dx, dy = end - start, xs - start[0], ys - start[1]
        if len(hull) >= 3:
            # Left of every counter-clockwise edge, to within the tolerance (in pixels).
            inside &= ex * dy - ey * dx >= -_EDGE_TOLERANCE * np.hypot(ex, ey)
        if margin > 0 or len(hull) < 3:
            length = ex * ex + ey * ey
            t = np.clip((dx * ex + dy * ey) / length, 0.0, 1.0) if length else 0.0
            distance = np.minimum(distance, np.hypot(dx - t * ex, dy - t * ey))
    return inside | (distance <= margin + _EDGE_TOLERANCE)


def face_mask(
    landmarks: ArrayLike,
    shape: Sequence[int],
    *,
    margin: float = 0.0,
    normalized: bool = True,
) -> _Mask:
    r"""Pixels inside the convex hull of face landmarks, optionally dilated by a margin.

    A pixel is selected when its centre lies in the closed convex hull of the landmarks'
    ``(x, y)``, or within ``margin`` pixels of it (a disk dilation), to within 1e-6 pixel so
    that rounding does not drop the pixels on an edge. Fewer than three
    non-collinear landmarks give a point or a segment, which only a margin widens.

    Args:
        landmarks: ``[P, 2|3]`` or ``[N, P, 2|3]`` landmarks ``(x, y[, z])``, x right, y down;
            ``z`` is ignored. With ``normalized=True`` they are fractions of the image width
            and height (the mediapipe convention: 0 and 1 are the image edges), otherwise
            pixel coordinates with pixel centres at integers (column ``x``, row ``y``).
        shape: ``(H, W)`` of the frames.
        margin: Dilation radius in pixels, ``>= 0``.
        normalized: Whether ``landmarks`` are normalised to ``[0, 1]``.

    Returns:
        bool ``NDArray[H, W]``, or ``NDArray[N, H, W]`` for ``N`` frames of landmarks.

    Example:
        >>> import numpy as np
        >>> triangle = np.array([[1.0, 1.0], [4.0, 1.0], [1.0, 4.0]])
        >>> face_mask(triangle, (5, 6), normalized=False).astype(int)
        array([[0, 0, 0, 0, 0, 0],
               [0, 1, 1, 1, 1, 0],
               [0, 1, 1, 1, 0, 0],
               [0, 1, 1, 0, 0, 0],
               [0, 1, 0, 0, 0, 0]])
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim not in (2, 3) or points.shape[-1] not in (2, 3) or points.shape[-2] == 0:
        raise ValueError(f"landmarks must have shape [P, 2|3] or [N, P, 2|3], got {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("landmarks contain NaN or infinite values")
    size = tuple(shape)
    if len(size) != 2 or not all(isinstance(n, (int, np.integer)) and n > 0 for n in size):
        raise ValueError(f"shape must be (H, W) with positive ints, got {shape!r}")
    height, width = int(size[0]), int(size[1])
    margin = _check_number("margin", margin, positive=False)
    xy = points[..., :2]
    if normalized:
        xy = to_pixels(xy, width, height)
    frames = xy.reshape(-1, *xy.shape[-2:])
    masks = np.stack([_hull_mask(_convex_hull(f), (height, width), margin) for f in frames])
    return masks.reshape(points.shape[:-2] + (height, width))
