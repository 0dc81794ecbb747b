"""Video files in and out: RGB frames as ``uint8`` arrays, decoded and encoded by FFmpeg.

:func:`read_video` returns ``uint8[T, H, W, 3]`` (frames, rows, columns, RGB) and the frame rate;
:func:`iter_frames` streams ``uint8[H, W, 3]`` frames; :func:`write_video` encodes frames as they
come and puts the file in place only when complete. PyAV does the work, OpenCV stands in where
PyAV is missing or cannot decode a file; both are optional (``snfseq[video]``), imported lazily;
the encoders live in :mod:`snfseq.video_encoders`.

Frames are read as they are meant to be shown: upright where the stream's display matrix says
to turn them (a phone video shot in portrait), at the first frame's size where the resolution
changes midway, each with its time from its timestamp (:attr:`VideoReader.seconds`), so that
variable frame rates keep their timing.

Example:
    >>> import tempfile
    >>> clip = np.full((6, 32, 48, 3), (200, 40, 40), np.uint8)  # 6 red frames, 32x48
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = write_video(Path(tmp) / "clip.mp4", clip, fps=25, crf=18)
    ...     frames, fps = read_video(path)
    >>> frames.shape, frames.dtype, fps
    ((6, 32, 48, 3), dtype('uint8'), 25.0)
"""

from __future__ import annotations

import importlib
import itertools
import math
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from snfseq.files import atomic_write
from snfseq.video_encoders import opencv_encoder, pyav_encoder

__all__ = ["VideoReader", "iter_frames", "read_video", "write_video"]

Frame = NDArray[np.uint8]
"""One RGB frame, ``uint8[H, W, 3]``."""

_INSTALL = "pip install snfseq[video]"


def _optional(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


@dataclass(frozen=True)
class _Source:
    """A video opened by one backend: what its header says and its frames with their times."""

    fps: float
    frame_count: int
    size: tuple[int, int]
    frames: Iterator[tuple[Frame, float]]
    close: Callable[[], None]


def _source(
    path: Path, decoded: Iterator[tuple[Frame, float | None]], fps: float, expected: int
) -> tuple[tuple[int, int], Iterator[tuple[Frame, float]]]:
    """The frame size and the frames with their times in seconds from the first frame's.

    A frame without a timestamp gets ``index / fps``. The first frame is decoded here, so a
    broken file fails on opening; a file that stops well short of the ``expected`` frames its
    header counts (a truncated download, say) warns at its end.
    """

    def timed() -> Iterator[tuple[Frame, float]]:
        origin, count = math.nan, 0
        for count, (frame, time) in enumerate(decoded, start=1):
            seconds = (count - 1) / fps if time is None else float(time)
            origin = seconds if count == 1 else origin
            yield frame, seconds - origin
        # Edit lists can hide a frame or two that the header counts; more is a damaged file.
        if count < expected - 2:
            message = f"{path} ends after {count} of its {expected} frames; truncated?"
            warnings.warn(message, stacklevel=3)

    frames = timed()
    first = next(frames, None)
    if first is None:
        raise ValueError(f"cannot decode {path} as a video: no frame decodes")
    return first[0].shape[:2], itertools.chain([first], frames)


def _open_pyav(path: Path, av: Any) -> _Source:
    def decode() -> Iterator[tuple[Frame, float | None]]:
        size: dict[str, int] = {}
        try:
            for frame in container.decode(stream):
                # A stream that changes resolution midway is scaled to its first size, as
                # FFmpeg and OpenCV do; then turned counterclockwise by its display matrix's
                # rotation (a phone video shot upright stores its frames sideways).
                size = size or {"width": frame.width, "height": frame.height}
                turns = round(getattr(frame, "rotation", 0) / 90) % 4
                pixels = np.rot90(frame.to_ndarray(format="rgb24", **size), turns)
                yield np.ascontiguousarray(pixels), frame.time
        except av.error.FFmpegError as error:
            reason = error.strerror or error
            raise ValueError(f"cannot decode {path} as a video: {reason}") from error

    try:
        container = av.open(str(path))
    except av.error.FFmpegError as error:
        reason = error.strerror or error
        raise ValueError(f"cannot decode {path} as a video: {reason}") from error
    try:
        if not container.streams.video:
            raise ValueError(f"cannot decode {path} as a video: it has no video frames")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        fps, frame_count = float(rate) if rate else math.nan, int(stream.frames or 0)
        size, frames = _source(path, decode(), fps, frame_count)
    except BaseException:
        container.close()
        raise
    return _Source(fps, frame_count, size, frames, container.close)


def _open_opencv(path: Path, cv2: Any) -> _Source:
    # OpenCV turns frames by the display matrix itself (CAP_PROP_ORIENTATION_AUTO); its frame
    # count may be an estimate from the duration, too rough to call a file short.
    capture = cv2.VideoCapture(str(path))

    def decode() -> Iterator[tuple[Frame, float | None]]:
        ok, frame = capture.read() if capture.isOpened() else (False, None)
        while ok and frame is not None:
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), capture.get(cv2.CAP_PROP_POS_MSEC) / 1e3
            ok, frame = capture.read()

    fps = float(capture.get(cv2.CAP_PROP_FPS))
    fps = fps if fps > 0 else math.nan
    frame_count = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
    try:
        size, frames = _source(path, decode(), fps, expected=0)
    except ValueError as error:
        capture.release()
        raise ValueError(f"{error} (OpenCV cannot read it)") from error
    return _Source(fps, frame_count, size, frames, capture.release)


def _open(path: Path) -> tuple[_Source, str]:
    """Opens ``path`` with PyAV, or with OpenCV where PyAV is missing or cannot decode it."""
    if path.is_dir():
        raise ValueError(f"cannot decode {path} as a video: it is a directory")
    if path.stat().st_size == 0:
        raise ValueError(f"cannot decode {path} as a video: the file is empty")
    failures: list[str] = []
    for backend, open_with in (("av", _open_pyav), ("cv2", _open_opencv)):
        module = _optional(backend)
        try:
            if module is not None:
                return open_with(path, module), backend
        except ValueError as error:
            failures.append(str(error))
    if not failures:
        raise ImportError(f"reading video needs PyAV or OpenCV: {_INSTALL}")
    raise ValueError(failures[0])


class VideoReader:
    """An iterator of the ``uint8[H, W, 3]`` RGB frames of a video; made by :func:`iter_frames`.

    It closes the file once exhausted, or on leaving a ``with`` block; it iterates once.
    Frames come upright: a rotation in the stream's display matrix (a phone video shot in
    portrait) is applied, and ``width``/``height`` are those of the turned frames.

    Attributes:
        path: The video file.
        fps: Frames per second from the container, ``nan`` where it states none; for a
            variable frame rate, its average (or nominal) rate: ``seconds`` has each frame's own.
        width: Frame width in pixels (W).
        height: Frame height in pixels (H).
        frame_count: Frames in the whole file as its header states (0 where unknown); the
            frames decoded may differ by a few, and ``start``/``max_frames`` do not change it.
        backend: The module that decodes: ``"av"`` (PyAV) or ``"cv2"`` (OpenCV).
        seconds: Seconds from the file's first frame to the frame last returned, from its
            timestamp (``index / fps`` where it has none); ``nan`` before the first.

    Example:
        >>> from snfseq.data import face_video
        >>> with iter_frames(face_video("carphone"), max_frames=3) as reader:
        ...     sizes = [frame.shape for frame in reader]
        >>> reader.width, reader.height, reader.frame_count, round(reader.fps, 2), sizes[-1]
        (176, 144, 120, 29.97, (144, 176, 3))
        >>> round(reader.seconds, 4)  # the third frame, 2 / 29.97 s after the first
        0.0667
    """

    def __init__(
        self, path: Path, source: _Source, backend: str, start: int, max_frames: int | None
    ) -> None:
        self.path = path
        self.fps = source.fps
        self.height, self.width = source.size
        self.frame_count = source.frame_count
        self.backend = backend
        self.seconds = math.nan
        stop = None if max_frames is None else start + max_frames
        self._frames: Iterator[tuple[Frame, float]] = itertools.islice(source.frames, start, stop)
        self._close = source.close

    def __iter__(self) -> VideoReader:
        return self

    def __next__(self) -> Frame:
        try:
            frame, self.seconds = next(self._frames)
        except StopIteration:
            self.close()
            raise
        return frame

    def close(self) -> None:
        """Closes the file; iteration then stops."""
        self._frames = iter(())
        self._close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def iter_frames(
    path: str | PathLike[str], *, start: int = 0, max_frames: int | None = None
) -> VideoReader:
    """Streams the RGB frames of a video one at a time, without holding the video in memory.

    The first frame is decoded before this returns, so a broken file fails here; a file that
    ends well short of the frames its header counts (truncated) warns when it ends.

    Args:
        path: Any video FFmpeg can decode (through PyAV, else OpenCV).
        start: Index of the first frame to yield; the frames before it are decoded and
            dropped, which is exact where seeking to a keyframe would not be.
        max_frames: Yield at most this many frames; ``None`` for all.

    Returns:
        A :class:`VideoReader` of ``uint8[H, W, 3]`` frames, with ``fps``, ``width``, ...

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is a directory, an empty file or one no frame of which decodes
            (truncated, not a video, ...); or ``start``/``max_frames`` out of range.
        ImportError: Neither PyAV nor OpenCV is installed.

    Example:
        >>> from snfseq.data import face_video
        >>> reader = iter_frames(face_video("carphone"), start=100)
        >>> sum(1 for _ in reader), reader.frame_count
        (20, 120)
    """
    if int(start) != start or start < 0:
        raise ValueError(f"start must be an integer >= 0, got {start}")
    if max_frames is not None and (int(max_frames) != max_frames or max_frames < 1):
        raise ValueError(f"max_frames must be a positive integer or None, got {max_frames}")
    video = Path(path)
    if not video.exists():
        raise FileNotFoundError(f"video not found: {video}")
    source, backend = _open(video)
    return VideoReader(video, source, backend, int(start), max_frames)


def read_video(
    path: str | PathLike[str], *, max_frames: int | None = None, start: int = 0
) -> tuple[NDArray[np.uint8], float]:
    """Reads the RGB frames of a video into one array.

    Built on :func:`iter_frames`; the frames are collected and then stacked, so the peak memory
    is about twice the result. Stream long videos with :func:`iter_frames` instead.

    Args:
        path: Any video FFmpeg can decode (through PyAV, else OpenCV).
        max_frames: Read at most this many frames; ``None`` for all.
        start: Index of the first frame to read (the frames before it are decoded and dropped).

    Returns:
        ``(frames, fps)``: ``uint8[T, H, W, 3]`` RGB frames (T is 0 where ``start`` is past the
        end) and the frames per second the container states (``nan`` where it states none).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: As :func:`iter_frames`.
        ImportError: Neither PyAV nor OpenCV is installed.

    Example:
        >>> from snfseq.data import face_video
        >>> frames, fps = read_video(face_video("carphone"), max_frames=10)
        >>> frames.shape, frames.dtype, round(fps, 2)
        ((10, 144, 176, 3), dtype('uint8'), 29.97)
    """
    with iter_frames(path, start=start, max_frames=max_frames) as reader:
        frames = list(reader)
    empty = np.zeros((0, reader.height, reader.width, 3), np.uint8)
    return (np.stack(frames) if frames else empty), reader.fps


def _checked(frame: Any, index: int, size: tuple[int, int] | None) -> Frame:
    array = np.asarray(frame)
    wrong_size = 0 in array.shape or (size is not None and array.shape[:2] != size)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3 or wrong_size:
        expected = "[H, W, 3], H, W > 0" if size is None else str((*size, 3))
        raise ValueError(f"frame {index} is {array.dtype} {array.shape}; expected uint8 {expected}")
    return array


def _checked_frames(first: Frame, rest: Iterator[Any]) -> Iterator[Frame]:
    size = first.shape[:2]
    yield first
    del first  # not to hold the first frame for the whole write
    for index, frame in enumerate(rest, start=1):
        yield _checked(frame, index, size)


def _frames_to_write(
    frames: Iterable[Frame], steps: tuple[int, int]
) -> tuple[Iterator[Frame], tuple[int, int]]:
    """The frames, each checked as read and padded to multiples of ``steps``, and their size."""
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise ValueError("no frames to write")
    first = _checked(first, 0, None)
    rows, columns = -first.shape[0] % steps[0], -first.shape[1] % steps[1]
    padding = ((0, rows), (0, columns), (0, 0))
    padded = (
        np.ascontiguousarray(np.pad(frame, padding, mode="edge") if rows or columns else frame)
        for frame in _checked_frames(first, iterator)
    )
    return padded, (first.shape[0] + rows, first.shape[1] + columns)


def write_video(
    path: str | PathLike[str],
    frames: NDArray[np.uint8] | Iterable[NDArray[np.uint8]],
    fps: float,
    *,
    codec: str = "libx264",
    crf: float | None = None,
    bitrate: int | None = None,
    pixel_format: str = "yuv420p",
) -> Path:
    """Encodes RGB frames into a video file, atomically.

    Frames are encoded as they are read (a generator is never held whole) into a file beside
    ``path`` that replaces it only when complete: an error or interrupt midway leaves no partial
    file under ``path`` and keeps the one there. The suffix picks the container (``.mp4``, ...).

    Pixel formats with subsampled chroma need even sizes (``yuv420p``: width and height): an odd
    one gets one more column or row, a copy of its last, so the video reads back a pixel larger.

    Args:
        path: The video file to write (its directory must exist).
        frames: ``uint8[T, H, W, 3]`` RGB frames, or any iterable of ``uint8[H, W, 3]`` ones.
        fps: Frames per second, > 0.
        codec: An FFmpeg video encoder: ``"libx264"``, ``"libx265"``, ``"libvpx-vp9"``,
            ``"libsvtav1"``, ``"mpeg4"``, ... Without PyAV, OpenCV writes ``mp4v`` whatever
            this says, and ``crf``/``bitrate``/``pixel_format`` do not apply.
        crf: Constant quality, lower is better (libx264/libx265: 0-51, default 23; libvpx-vp9
            and libsvtav1: 0-63); for the encoders that have one.
        bitrate: Target bits per second instead of ``crf``.
        pixel_format: The encoded pixel format.

    Returns:
        ``path``, as a :class:`~pathlib.Path`.

    Raises:
        FileNotFoundError: The directory of ``path`` does not exist.
        ValueError: Frames not uint8 ``[H, W, 3]`` or of unequal sizes, or none; ``fps <= 0``;
            unknown codec; pixel format or ``crf`` the codec lacks; no container for the suffix.
        ImportError: Neither PyAV nor OpenCV is installed.

    Example:
        >>> import tempfile
        >>> clip = np.full((4, 15, 21, 3), 90, np.uint8)  # odd height and width
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = write_video(Path(tmp) / "clip.mkv", iter(clip), fps=12, codec="mpeg4")
        ...     with iter_frames(path) as reader:
        ...         (path.name, reader.width, reader.height, reader.fps)
        ('clip.mkv', 22, 16, 12.0)
    """
    target = Path(path)
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a finite number > 0, got {fps}")
    if crf is not None and bitrate is not None:
        raise ValueError("give crf or bitrate, not both")
    if (crf is not None and not crf >= 0) or (bitrate is not None and not bitrate > 0):
        raise ValueError(f"crf must be >= 0 and bitrate > 0, got crf={crf}, bitrate={bitrate}")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"directory not found: {target.parent} (writing {target.name})")
    if (av := _optional("av")) is not None:
        encode, steps = pyav_encoder(av, codec, crf, bitrate, pixel_format)
    elif (cv2 := _optional("cv2")) is not None:
        encode, steps = opencv_encoder(cv2)
    else:
        raise ImportError(f"writing video needs PyAV or OpenCV: {_INSTALL}")
    padded, size = _frames_to_write(frames, steps)
    with atomic_write(target) as partial:
        # FFmpeg and OpenCV choose the container by the file's suffix, which partial lacks.
        named = partial.with_name(partial.name + target.suffix)
        try:
            encode(named, target, padded, fps, size)
            os.replace(named, partial)
        finally:
            named.unlink(missing_ok=True)
    return target
