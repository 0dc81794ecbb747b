"""The encoders behind :func:`snfseq.video.write_video`: FFmpeg through PyAV, or OpenCV's mp4v.

Each builder checks its settings up front and returns an :data:`Encode` function, which writes
checked ``uint8[H, W, 3]`` RGB frames of one size to a path, and the multiples that frame
height and width must be (chroma subsampling); ``write_video`` pads the frames to those and
makes the write atomic. The modules ``av`` and ``cv2`` are passed in, not imported here.

Example:
    >>> import av, tempfile
    >>> encode, steps = pyav_encoder(av, "mpeg4", crf=None, bitrate=None, pixel_format="yuv420p")
    >>> frames = iter(np.full((3, 16, 16, 3), 128, np.uint8))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "gray.avi"
    ...     encode(path, path, frames, 10.0, (16, 16))
    ...     path.stat().st_size > 0, steps
    (True, (2, 2))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["Encode", "opencv_encoder", "pyav_encoder"]

_COMMON_CODECS = ("libx264", "libx265", "libvpx-vp9", "libsvtav1", "mpeg4")
# FFmpeg encoders with a constant-quality "crf" option; others silently ignore one.
_CRF_CODECS = frozenset(
    {"libx264", "libx264rgb", "libx265", "libvpx", "libvpx-vp9", "libsvtav1", "libaom-av1"}
)
# x265 otherwise prints its whole configuration to stderr.
_QUIET_OPTIONS = {"libx265": {"x265-params": "log-level=error"}}

Encode = Callable[[Path, Path, Iterator[NDArray[np.uint8]], float, tuple[int, int]], None]
"""``encode(path, target, frames, fps, (H, W))`` writes the frames to ``path`` and names
``target`` (the file the caller is making) in its errors."""


def pyav_encoder(
    av: Any, codec: str, crf: float | None, bitrate: int | None, pixel_format: str
) -> tuple[Encode, tuple[int, int]]:
    """An FFmpeg encoder through PyAV, its settings checked, and the multiples of H and W.

    Args:
        av: The imported PyAV module.
        codec: An FFmpeg video encoder (``"libx264"``, ``"mpeg4"``, ...).
        crf: Constant quality, for the encoders that have one; ``None`` for their default.
        bitrate: Target bits per second; ``None`` for the encoder's default.
        pixel_format: The encoded pixel format (``"yuv420p"``, ...).

    Returns:
        ``(encode, (row_step, column_step))``: frame height and width must be multiples of
        the steps, 2 for 4:2:0 formats and 1 for 4:4:4.

    Raises:
        ValueError: Unknown codec (naming the common ones available), a pixel format or
            ``crf`` the codec lacks; from ``encode``: no container for the suffix, a stream
            or frame the encoder refuses.

    Example:
        >>> import av
        >>> pyav_encoder(av, "libx264", crf=20, bitrate=None, pixel_format="yuv444p")[1]
        (1, 1)
    """

    def video_encoder(name: str) -> Any | None:
        try:
            encoder = av.Codec(name, "w")
        except ValueError:
            return None
        return encoder if encoder.type == "video" else None

    encoder = video_encoder(codec)
    if encoder is None:
        choices = ", ".join(name for name in _COMMON_CODECS if video_encoder(name) is not None)
        raise ValueError(f"unknown video codec {codec!r}; available: {choices}, ...")
    formats = [pixel.name for pixel in encoder.video_formats or ()]
    if formats and pixel_format not in formats:
        choices = ", ".join(formats)
        raise ValueError(f"codec {codec!r} has no pixel format {pixel_format!r}; only {choices}")
    if crf is not None and encoder.name not in _CRF_CODECS:
        raise ValueError(f"codec {codec!r} has no crf setting; give bitrate instead")
    options = dict(_QUIET_OPTIONS.get(encoder.name, {}))
    if crf is not None:
        options["crf"] = f"{crf:g}"
    pixel = av.VideoFormat(pixel_format)

    def encode(
        path: Path,
        target: Path,
        frames: Iterator[NDArray[np.uint8]],
        fps: float,
        size: tuple[int, int],
    ) -> None:
        try:
            container = av.open(str(path), mode="w")
        except ValueError as error:
            raise ValueError(f"no video format for the suffix of {target} ({error})") from error
        with container:
            # Rates like 30000/1001 (NTSC) survive the trip through float exactly.
            rate = Fraction(float(fps)).limit_denominator(1001)
            try:
                stream = container.add_stream(encoder.name, rate=rate, options=options)
            except ValueError as error:
                raise ValueError(f"cannot write {target}: {error}") from error
            stream.height, stream.width = size
            stream.pix_fmt = pixel_format
            if bitrate is not None:
                stream.bit_rate = int(bitrate)
            try:
                for frame in frames:
                    video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
                    container.mux(stream.encode(video_frame))
                container.mux(stream.encode(None))
            except av.error.FFmpegError as error:
                raise ValueError(f"cannot encode {target} with {codec}: {error}") from error

    return encode, (1024 // pixel.chroma_height(1024), 1024 // pixel.chroma_width(1024))


def opencv_encoder(cv2: Any) -> tuple[Encode, tuple[int, int]]:
    """OpenCV's MPEG-4 (``mp4v``) encoder, in 4:2:0, so of even height and width.

    Args:
        cv2: The imported OpenCV module.

    Returns:
        ``(encode, (2, 2))``; ``encode`` raises a ValueError where OpenCV cannot open the file.

    Example:
        >>> import cv2
        >>> opencv_encoder(cv2)[1]
        (2, 2)
    """

    def encode(
        path: Path,
        target: Path,
        frames: Iterator[NDArray[np.uint8]],
        fps: float,
        size: tuple[int, int],
    ) -> None:
        fourcc = cv2.VideoWriter_fourcc(*"mp4v")
        writer = cv2.VideoWriter(str(path), fourcc, float(fps), (size[1], size[0]))
        if not writer.isOpened():
            raise ValueError(f"OpenCV cannot write {target} as mp4v video")
        try:
            for frame in frames:
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()

    return encode, (2, 2)
