"""Bandwidth of a stream of packets (keypoint packets, or any encoded frames).

Example:
    >>> bitrate([b"abc"] * 30, fps=30).kbit_per_second
    0.72
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Bitrate", "bitrate"]


@dataclass(frozen=True)
class Bitrate:
    """Bandwidth of a packet stream.

    Attributes:
        num_frames: T, the number of packets.
        total_bytes: Bytes over all packets.
        bits_per_frame: Mean bits per packet.
        kbit_per_second: Mean rate at ``fps`` frames per second, in kbit/s (1000 bit/s).
        fps: The frame rate it assumes.
    """

    num_frames: int
    total_bytes: int
    bits_per_frame: float
    kbit_per_second: float
    fps: float


def bitrate(packets: Sequence[bytes], fps: float = 30.0) -> Bitrate:
    """Measures the bandwidth of packets sent at ``fps`` frames per second.

    Args:
        packets: One packet per frame.
        fps: Frames per second.

    Returns:
        A :class:`Bitrate`.

    Raises:
        ValueError: If there are no packets or ``fps`` is not positive.

    Example:
        >>> bitrate([b"ab", b"abcd"], fps=25)
        Bitrate(num_frames=2, total_bytes=6, bits_per_frame=24.0, kbit_per_second=0.6, fps=25)
    """
    if not packets or fps <= 0:
        raise ValueError("need at least one packet and fps > 0")
    total = sum(len(packet) for packet in packets)
    bits = 8 * total / len(packets)
    return Bitrate(len(packets), total, bits, bits * fps / 1000, fps)
