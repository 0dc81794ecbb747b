"""Pictures for a person to judge: landmarks drawn on frames, captions, and labelled grids.

Rendered frames and forecast samples are judged by eye next to the ground truth. This module
draws landmarks on a frame (:func:`draw_landmarks`), puts a caption bar on top of a frame so that
every picture says what it shows (:func:`label`), lays equal-size frames out on a grid
(:func:`tile`), and composes, per time step, the ground truth beside the samples of every model
variant (:func:`side_by_side`), a stream of frames :func:`snfseq.video.write_video` encodes as it
goes. Frames are ``uint8[H, W, 3]`` RGB throughout; landmarks are MediaPipe's normalised
coordinates (pixel ``x * width - 0.5``, likewise for y, as :class:`snfseq.motion.Renderer` reads
them) unless ``normalized=False``. OpenCV draws (``snfseq[video]``), imported lazily.

Example:
    >>> import numpy as np
    >>> from snfseq.motion.overlay import side_by_side
    >>> truth = np.zeros((4, 48, 64, 3), np.uint8)  # Array[T, H, W, 3]
    >>> samples = np.full((3, 4, 48, 64, 3), 128, np.uint8)  # Array[S, T, H, W, 3]
    >>> frames = list(side_by_side(truth, {"GRU-NF": samples, "GRU-SNF": samples}))
    >>> len(frames), frames[0].shape  # 3 rows (truth, GRU-NF, GRU-SNF) of 3 labelled tiles
    (4, (192, 192, 3))
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from snfseq.landmarks import to_pixels

__all__ = ["draw_landmarks", "label", "side_by_side", "tile"]

Frame = NDArray[np.uint8]
"""One RGB frame, ``uint8[H, W, 3]``."""

_FONT_SCALE = 0.4
_BAR_COLOR = (0, 0, 0)
_TEXT_COLOR = (255, 255, 255)


def _cv2() -> Any:
    try:
        return importlib.import_module("cv2")
    except ImportError as error:
        raise ImportError("drawing needs OpenCV: pip install snfseq[video]") from error


def _checked_frame(frame: ArrayLike, what: str = "frame") -> Frame:
    array = np.asarray(frame)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3 or 0 in array.shape:
        raise ValueError(f"{what} must be uint8 [H, W, 3], got {array.dtype} {array.shape}")
    return array


def draw_landmarks(
    frame: ArrayLike,
    landmarks: ArrayLike,
    *,
    color: tuple[int, int, int] = (0, 255, 0),
    radius: int = 1,
    normalized: bool = True,
) -> Frame:
    """Draws landmarks as filled dots on a copy of a frame.

    Each point is rounded to the nearest pixel and drawn as ``cv2.circle`` fills it: radius 0
    marks one pixel, radius 1 the pixel and its four neighbours. Points with a NaN coordinate
    (no detection) are skipped, and points off the frame draw only their part inside it.

    Args:
        frame: ``Array[H, W, 3]`` (uint8), RGB; left unchanged.
        landmarks: ``Array[P, 2|3]``, (x, y) per point; a z column is ignored.
        color: RGB of the dots.
        radius: Dot radius in pixels, >= 0.
        normalized: Landmarks are MediaPipe-normalised (pixel ``x * W - 0.5``, ``y * H - 0.5``);
            ``False`` for pixel coordinates.

    Returns:
        ``Array[H, W, 3]`` (uint8), the frame with the dots.

    Raises:
        ValueError: Wrong frame or landmark shape, or a negative radius.

    Example:
        >>> import numpy as np
        >>> frame = np.zeros((4, 6, 3), np.uint8)
        >>> marked = draw_landmarks(frame, [[2.0, 1.0], [np.nan, 0.0]], radius=0, normalized=False)
        >>> marked[..., 1].nonzero(), int(frame.max())  # pixel (x=2, y=1); the input unchanged
        ((array([1]), array([2])), 0)
    """
    cv2 = _cv2()
    canvas = np.array(_checked_frame(frame), order="C")  # a copy, contiguous for OpenCV
    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] not in (2, 3):
        raise ValueError(f"landmarks must have shape [points, 2 or 3], got {points.shape}")
    if int(radius) != radius or radius < 0:
        raise ValueError(f"radius must be an integer >= 0, got {radius}")
    xy = points[:, :2]
    if normalized:
        height, width = canvas.shape[:2]
        xy = to_pixels(xy, width, height)
    xy = xy[np.isfinite(xy).all(axis=1)]
    # Far-off points would overflow OpenCV's int coordinates; clipped, they still fall outside.
    limit = max(canvas.shape) + int(radius) + 1
    centres = np.clip(np.rint(xy), -limit, limit).astype(int)
    rgb = tuple(int(channel) for channel in color)
    for x, y in centres:
        cv2.circle(canvas, (int(x), int(y)), int(radius), rgb, -1, cv2.LINE_8)
    return canvas


def label(frame: ArrayLike, text: str, *, bar_height: int = 16) -> Frame:
    """Puts a caption bar, white text on black, on top of a frame.

    The bar is added above the frame, hiding none of it; text too wide for the frame is drawn
    smaller until it fits (and clipped at the right edge only if it cannot).

    Args:
        frame: ``Array[H, W, 3]`` (uint8), RGB.
        text: The caption: what the frame shows ("ground truth", "GRU-SNF sample 3", ...).
        bar_height: Height of the bar in pixels, >= 1.

    Returns:
        ``Array[bar_height + H, W, 3]`` (uint8): the bar, then the frame unchanged.

    Raises:
        ValueError: Wrong frame shape or bar height.

    Example:
        >>> import numpy as np
        >>> frame = np.full((30, 80, 3), 200, np.uint8)
        >>> captioned = label(frame, "ground truth")
        >>> captioned.shape, bool((captioned[16:] == frame).all()), bool(captioned[:16].any())
        ((46, 80, 3), True, True)
    """
    cv2 = _cv2()
    image = _checked_frame(frame)
    if int(bar_height) != bar_height or bar_height < 1:
        raise ValueError(f"bar_height must be a positive integer, got {bar_height}")
    width = image.shape[1]
    bar = np.zeros((int(bar_height), width, 3), np.uint8)
    bar[:] = _BAR_COLOR
    font = cv2.FONT_HERSHEY_SIMPLEX
    margin = 3
    scale = _FONT_SCALE * bar_height / 16
    (text_width, text_height), _ = cv2.getTextSize(text, font, scale, 1)
    if text_width > width - 2 * margin:
        scale *= max(width - 2 * margin, 1) / text_width
        (text_width, text_height), _ = cv2.getTextSize(text, font, scale, 1)
    baseline_y = (int(bar_height) + text_height) // 2
    cv2.putText(bar, text, (margin, baseline_y), font, scale, _TEXT_COLOR, 1, cv2.LINE_AA)
    return np.concatenate([bar, image], axis=0)


def tile(frames: Sequence[ArrayLike], columns: int, *, fill: int = 0) -> Frame:
    """Lays equal-size frames out on a grid, row by row; empty cells at the end are filled.

    Args:
        frames: ``N`` frames, each ``Array[H, W, 3]`` (uint8), all of one size.
        columns: Cells per row, >= 1; the grid has ``ceil(N / columns)`` rows.
        fill: Grey level (0-255) of the empty cells.

    Returns:
        ``Array[rows * H, columns * W, 3]`` (uint8).

    Raises:
        ValueError: No frames, frames of unequal size or wrong shape, or bad ``columns``.

    Example:
        >>> import numpy as np
        >>> cells = [np.full((2, 3, 3), value, np.uint8) for value in (10, 20, 30)]
        >>> grid = tile(cells, columns=2)
        >>> grid.shape, grid[0, ::3, 0].tolist(), grid[2, ::3, 0].tolist()  # 2 x 2, one empty
        ((4, 6, 3), [10, 20], [30, 0])
    """
    if len(frames) == 0:
        raise ValueError("no frames to tile")
    if int(columns) != columns or columns < 1:
        raise ValueError(f"columns must be a positive integer, got {columns}")
    if not 0 <= fill <= 255:
        raise ValueError(f"fill must lie in [0, 255], got {fill}")
    cells = [_checked_frame(frame, f"frame {index}") for index, frame in enumerate(frames)]
    size = cells[0].shape
    for index, cell in enumerate(cells):
        if cell.shape != size:
            raise ValueError(f"frame {index} is {cell.shape}, frame 0 is {size}")
    columns = int(columns)
    rows = math.ceil(len(cells) / columns)
    height, width = size[:2]
    grid = np.full((rows * height, columns * width, 3), fill, np.uint8)
    for index, cell in enumerate(cells):
        row, column = divmod(index, columns)
        grid[row * height : (row + 1) * height, column * width : (column + 1) * width] = cell
    return grid


def _as_samples(name: str, frames: ArrayLike, shape: tuple[int, ...]) -> NDArray[np.uint8]:
    """A panel as ``Array[S, T, H, W, 3]``, checked against the truth's ``(T, H, W, 3)``."""
    array = np.asarray(frames)
    if array.ndim == 4:
        array = array[None]
    if array.dtype != np.uint8 or array.ndim != 5 or array.shape[1:] != shape:
        raise ValueError(
            f"panel {name!r} must be uint8 [T, H, W, 3] or [S, T, H, W, 3] with "
            f"(T, H, W, 3) = {shape} as the truth, got {array.dtype} {array.shape}"
        )
    return array


def side_by_side(
    truth_frames: ArrayLike,
    panels: Mapping[str, ArrayLike],
    *,
    samples: int = 3,
    columns: int | None = None,
    truth_label: str = "ground truth",
    bar_height: int = 16,
) -> Iterator[Frame]:
    """One labelled grid per time step: the ground truth beside every variant's samples.

    Each panel is one variant's frames: ``Array[T, H, W, 3]`` (one video, captioned with the
    variant's name) or ``Array[S, T, H, W, 3]`` (``S`` sampled videos, of which the first
    ``samples`` are shown, captioned "<name> sample 1", "<name> sample 2", ...). The layout:

    - ``columns=None``: one row per variant, truth alone in the first row: the truth on top,
      each variant's samples in a row below it, rows as wide as the most samples shown;
    - ``columns=n``: the tiles in order (truth, then each variant's in the order of
      ``panels``), ``n`` to a row (:func:`tile`).

    Checks run when called; the frames are composed lazily, one per step, so that a long video
    streams into :func:`snfseq.video.write_video` without being held whole.

    Args:
        truth_frames: ``Array[T, H, W, 3]`` (uint8), the ground-truth video.
        panels: Variant name to its frames, ``Array[T, H, W, 3]`` or ``Array[S, T, H, W, 3]``
            (uint8), of the truth's ``T, H, W``.
        samples: Most samples shown per variant, >= 1.
        columns: Tiles per row, or ``None`` for one row per variant as above.
        truth_label: Caption of the ground-truth tile.
        bar_height: Height of each caption bar, see :func:`label`.

    Returns:
        An iterator of ``T`` frames ``Array[rows * (bar_height + H), columns * W, 3]`` (uint8);
        empty cells are black. ``np.stack(list(...))`` makes it an ``Array[T, H2, W2, 3]``.

    Raises:
        ValueError: Wrong shapes or dtypes, no panels, or bad ``samples``/``columns``.

    Example:
        >>> import numpy as np
        >>> truth = np.zeros((2, 20, 30, 3), np.uint8)
        >>> panels = {"copy": truth, "GRU-SNF": np.ones((5, 2, 20, 30, 3), np.uint8)}
        >>> frames = np.stack(list(side_by_side(truth, panels, samples=2, columns=4)))
        >>> frames.shape  # 1 truth + 1 + 2 tiles in one row of 4 (one empty), each 16 + 20 high
        (2, 36, 120, 3)
    """
    truth = np.asarray(truth_frames)
    if truth.dtype != np.uint8 or truth.ndim != 4 or truth.shape[3] != 3 or 0 in truth.shape:
        raise ValueError(
            f"truth_frames must be uint8 [T, H, W, 3], got {truth.dtype} {truth.shape}"
        )
    if not panels:
        raise ValueError("no panels to show beside the truth")
    if int(samples) != samples or samples < 1:
        raise ValueError(f"samples must be a positive integer, got {samples}")
    if columns is not None and (int(columns) != columns or columns < 1):
        raise ValueError(f"columns must be a positive integer or None, got {columns}")
    rows: list[tuple[list[str], NDArray[np.uint8]]] = []
    for name, frames in panels.items():
        ndim = np.ndim(frames)
        shown = _as_samples(name, frames, truth.shape)[: int(samples)]
        if ndim == 4:
            captions = [name]
        else:
            captions = [f"{name} sample {index + 1}" for index in range(len(shown))]
        rows.append((captions, shown))
    if int(bar_height) != bar_height or bar_height < 1:
        raise ValueError(f"bar_height must be a positive integer, got {bar_height}")
    return _compose(truth, truth_label, rows, columns, int(bar_height))


def _compose(
    truth: NDArray[np.uint8],
    truth_label: str,
    rows: list[tuple[list[str], NDArray[np.uint8]]],
    columns: int | None,
    bar_height: int,
) -> Iterator[Frame]:
    """The generator behind :func:`side_by_side`, its arguments checked."""
    blank = np.zeros((bar_height + truth.shape[1], truth.shape[2], 3), np.uint8)
    width = max(len(captions) for captions, _ in rows)
    for step in range(len(truth)):
        first = label(truth[step], truth_label, bar_height=bar_height)
        if columns is None:
            cells = [first] + [blank] * (width - 1)
            for captions, shown in rows:
                tiles = [
                    label(shown[index, step], caption, bar_height=bar_height)
                    for index, caption in enumerate(captions)
                ]
                cells += tiles + [blank] * (width - len(tiles))
            yield tile(cells, width)
        else:
            cells = [first]
            for captions, shown in rows:
                cells += [
                    label(shown[index, step], caption, bar_height=bar_height)
                    for index, caption in enumerate(captions)
                ]
            yield tile(cells, columns)
