"""Predictive entropy coding of keypoint frames, one packet per frame.

The sender of a motion-transfer stream sends a few keypoints per frame; this module turns each
frame into the fewest bytes it can while keeping the receiver in lockstep:

1. The frame ``x_t`` (``Array[D]``, D features) is quantised to integers ``q_t`` on a uniform
   grid of ``step`` (reconstruction error at most ``step / 2`` per coordinate).
2. A predicted frame codes the residual ``q_t - q_{t-1}`` against the previous *decoded* frame,
   which the receiver has too (the integers are coded losslessly, so both sides agree exactly).
   Every ``keyframe_interval``-th frame is a keyframe, coded without prediction, so that a
   receiver that lost packets resynchronises at the next keyframe.
3. The integers are range coded (``constriction``) under a quantised Laplace per feature whose
   scale follows a running mean of that feature's absolute residuals (the Laplace maximum-
   likelihood scale), updated identically by encoder and decoder after every frame and reset at
   every keyframe, so decoding a packet needs only the packets since the last keyframe.

Packet layout: one header byte (bit 7: keyframe; bits 0-6: frame number modulo 128, so the
decoder notices a gap), then the range coder's output, big-endian, cut short as far as decoding
allows (see :func:`_shortest_payload`). ``len(packet)`` is the exact payload size; transport headers
(UDP/RTP) are not counted.

Example:
    >>> import numpy as np
    >>> frames = 0.5 + np.cumsum(np.random.default_rng(0).normal(0, 2e-3, (60, 20)), axis=0)
    >>> codec = KeypointCodec(20, step=1 / 1024)
    >>> packets = codec.encode_sequence(frames)
    >>> decoded = codec.decode_sequence(packets)
    >>> bool(np.abs(decoded - frames).max() <= codec.step / 2 + 1e-9)
    True
    >>> rate = bitrate(packets, fps=30)
    >>> rate.bits_per_frame < 20 * 8, rate.num_frames
    (True, 60)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import constriction
import numpy as np
from numpy.typing import ArrayLike, NDArray

from .bandwidth import Bitrate, bitrate

__all__ = [
    "Bitrate",
    "DesyncError",
    "KeypointCodec",
    "KeypointDecoder",
    "KeypointEncoder",
    "bitrate",
]

_KEYFRAME_FLAG = 0x80
_SEQUENCE_MASK = 0x7F


class DesyncError(ValueError):
    """A predicted packet reached a decoder that lacks the frame it was predicted from."""


class KeypointCodec:
    """Settings shared by a keypoint encoder and its decoder.

    Args:
        features: D, the number of numbers per frame (e.g. 20 for ``mesh10`` with x, y).
        step: Quantisation step, in the keypoints' units.
        bits: Alternatively, ``step = 2 ** -bits``; give ``step`` or ``bits``, not both.
        keyframe_interval: A keyframe every this many frames (the first frame is one).
        bound: Largest absolute value a feature may take, in the keypoints' units.
        reference: ``Array[D]`` around which keyframes are coded (e.g. a mean pose); zeros
            when omitted.
        keyframe_scale: Scale of the Laplace that codes a keyframe around ``reference``, in
            the keypoints' units.
        initial_scale: Residual scale, in steps, that each feature starts from after a keyframe.
        adaptation: Weight of the newest absolute residual in the running scale, in (0, 1].
        min_scale: Floor of the residual scale, in steps.

    Raises:
        ValueError: If an argument is out of range or both ``step`` and ``bits`` are given.

    Example:
        >>> codec = KeypointCodec(20, bits=10)
        >>> codec.step, codec.keyframe_interval
        (0.0009765625, 30)
    """

    def __init__(
        self,
        features: int,
        *,
        step: float | None = None,
        bits: int | None = None,
        keyframe_interval: int = 30,
        bound: float = 4.0,
        reference: ArrayLike | None = None,
        keyframe_scale: float = 0.25,
        initial_scale: float = 2.0,
        adaptation: float = 0.25,
        min_scale: float = 0.2,
    ) -> None:
        if step is not None and bits is not None:
            raise ValueError("give step or bits, not both")
        if bits is not None:
            step = 2.0**-bits
        step = 1 / 1024 if step is None else float(step)
        positive = [float(v) for v in (step, bound, keyframe_scale, initial_scale, min_scale)]
        counts = (features, keyframe_interval)
        if any(int(n) != n or n < 1 for n in counts) or not 0 < adaptation <= 1:
            raise ValueError(
                "need integer features, keyframe_interval >= 1 and 0 < adaptation <= 1"
            )
        # NaN passes no comparison, and an infinite step would leave no symbol to code.
        if not all(math.isfinite(v) and v > 0 for v in positive):
            raise ValueError(
                f"need the scales, step and bound finite and positive, got step={step}, "
                f"bound={bound}, keyframe_scale={keyframe_scale}, "
                f"initial_scale={initial_scale}, min_scale={min_scale}"
            )
        self.features = int(features)
        self.step = step
        self.keyframe_interval = int(keyframe_interval)
        self.max_symbol = int(np.ceil(bound / step))
        if 4 * self.max_symbol >= 2**24:
            raise ValueError(f"bound / step = {bound / step:g} is too many steps to code")
        ref = np.zeros(features) if reference is None else np.asarray(reference, np.float64)
        if ref.shape != (features,):
            raise ValueError(f"reference must have shape ({features},), got {ref.shape}")
        if not np.isfinite(ref).all():
            raise ValueError("reference has NaN or infinite values")
        self.reference = ref / step
        self.keyframe_scale = keyframe_scale / step
        self.initial_scale = float(initial_scale)
        self.adaptation = float(adaptation)
        self.min_scale = float(min_scale)
        laplace = constriction.stream.model.QuantizedLaplace
        self._keyframe_model = laplace(-self.max_symbol, self.max_symbol)
        self._residual_model = laplace(-2 * self.max_symbol, 2 * self.max_symbol)

    def encoder(self) -> KeypointEncoder:
        """A fresh :class:`KeypointEncoder` with these settings; its first packet is a keyframe.

        Example:
            >>> KeypointCodec(2).encoder().encode([0.5, 0.25])[0]  # keyframe flag, frame 0
            128
        """
        return KeypointEncoder(self)

    def decoder(self) -> KeypointDecoder:
        """A fresh :class:`KeypointDecoder` with these settings; it waits for a keyframe.

        Example:
            >>> codec = KeypointCodec(2, step=0.25)
            >>> codec.decoder().decode(codec.encoder().encode([0.5, -1.0]))
            array([ 0.5, -1. ])
        """
        return KeypointDecoder(self)

    def encode_sequence(self, frames: ArrayLike) -> list[bytes]:
        """Encodes ``Array[T, D]`` frames with a fresh encoder, one packet per frame.

        Args:
            frames: ``Array[T, D]``, T frames of D features.

        Returns:
            T packets.

        Raises:
            ValueError: If ``frames`` is not ``[T, D]`` or a value is NaN or out of bounds.

        Example:
            >>> codec = KeypointCodec(3, keyframe_interval=2)
            >>> [p[0] >> 7 for p in codec.encode_sequence(np.zeros((5, 3)))]
            [1, 0, 1, 0, 1]
        """
        array = np.asarray(frames, dtype=np.float64)
        if array.ndim != 2 or array.shape[1] != self.features:
            raise ValueError(f"frames must have shape [T, {self.features}], got {array.shape}")
        encoder = self.encoder()
        return [encoder.encode(frame) for frame in array]

    def decode_sequence(self, packets: Sequence[bytes]) -> NDArray[np.float64]:
        """Decodes consecutive packets with a fresh decoder; the first must be a keyframe.

        Args:
            packets: Packets of consecutive frames, starting at a keyframe.

        Returns:
            ``Array[T, D]``, the decoded frames.

        Raises:
            DesyncError: If the packets do not start at a keyframe or skip a frame.

        Example:
            >>> codec = KeypointCodec(2, step=0.5)
            >>> codec.decode_sequence(codec.encode_sequence([[1.0, 2.2], [1.4, 2.0]]))
            array([[1. , 2. ],
                   [1.5, 2. ]])
        """
        decoder = self.decoder()
        decoded = [decoder.decode(packet) for packet in packets]
        return np.stack(decoded) if decoded else np.zeros((0, self.features))


class _CoderState:
    """What encoder and decoder both track: the last decoded frame and the residual scales."""

    def __init__(self, codec: KeypointCodec) -> None:
        self.codec = codec
        self.frame_number = 0
        self.previous: NDArray[np.int64] | None = None
        self.scale = np.full(codec.features, codec.initial_scale)

    def keyframe_params(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        codec = self.codec
        return codec.reference, np.full(codec.features, codec.keyframe_scale)

    def residual_params(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        return np.zeros(self.codec.features), self.scale

    def update(self, symbols: NDArray[np.int64], keyframe: bool) -> None:
        """Advances by one frame whose integers are ``symbols``, on both sides alike."""
        codec = self.codec
        if keyframe:
            self.scale = np.full(codec.features, codec.initial_scale)
        else:
            assert self.previous is not None
            residual = np.abs(symbols - self.previous).astype(np.float64)
            blended = (1 - codec.adaptation) * self.scale + codec.adaptation * residual
            self.scale = np.maximum(blended, codec.min_scale)
        self.previous = symbols
        self.frame_number += 1


class KeypointEncoder:
    """Turns frames into packets, one per frame, keeping the state the decoder mirrors.

    Args:
        codec: The shared settings.

    Example:
        >>> encoder = KeypointCodec(4).encoder()
        >>> [len(encoder.encode(np.full(4, 0.5))) for _ in range(3)]
        [7, 2, 2]
    """

    def __init__(self, codec: KeypointCodec) -> None:
        self.codec = codec
        self._state = _CoderState(codec)

    def quantise(self, frame: ArrayLike) -> NDArray[np.int64]:
        """Rounds a frame to the nearest multiples of the step, as integers.

        Args:
            frame: ``Array[D]``.

        Returns:
            ``Array[D]`` of integers, ``frame / step`` rounded.

        Raises:
            ValueError: If ``frame`` is not ``[D]``, has NaN, or leaves ``[-bound, bound]``.

        Example:
            >>> KeypointCodec(2, step=0.5).encoder().quantise([0.7, -1.3])
            array([ 1, -3])
        """
        codec = self.codec
        array = np.asarray(frame, dtype=np.float64)
        if array.shape != (codec.features,):
            raise ValueError(f"frame must have shape ({codec.features},), got {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError("frame has NaN or infinite values")
        symbols = np.rint(array / codec.step).astype(np.int64)
        if np.abs(symbols).max() > codec.max_symbol:
            raise ValueError(f"frame leaves [-bound, bound] = +-{codec.max_symbol * codec.step:g}")
        return symbols

    def encode(self, frame: ArrayLike) -> bytes:
        """Encodes the next frame into its packet.

        Args:
            frame: ``Array[D]``, the next frame.

        Returns:
            The packet; its length is the frame's bandwidth in bytes.

        Raises:
            ValueError: As for :meth:`quantise`.

        Example:
            >>> encoder = KeypointCodec(2).encoder()
            >>> encoder.encode([0.5, 0.5])[0], encoder.encode([0.5, 0.5])[0]
            (128, 1)
        """
        symbols = self.quantise(frame)
        state = self._state
        keyframe = state.frame_number % self.codec.keyframe_interval == 0
        coder = constriction.stream.queue.RangeEncoder()
        if keyframe:
            model = self.codec._keyframe_model
            mean, scale = state.keyframe_params()
            coded = symbols.astype(np.int32)
        else:
            assert state.previous is not None
            model = self.codec._residual_model
            mean, scale = state.residual_params()
            coded = (symbols - state.previous).astype(np.int32)
        coder.encode(coded, model, mean, scale)
        payload = _shortest_payload(
            coder.get_compressed(),
            lambda data: np.array_equal(_decode_payload(data, model, mean, scale, None), coded),
        )
        header = (_KEYFRAME_FLAG if keyframe else 0) | (state.frame_number & _SEQUENCE_MASK)
        state.update(symbols, keyframe)
        return bytes([header]) + payload


class KeypointDecoder:
    """Turns packets back into frames; after a lost packet it waits for the next keyframe.

    Args:
        codec: The shared settings, as given to the encoder.

    Example:
        >>> codec = KeypointCodec(2, step=0.5, keyframe_interval=2)
        >>> packets = codec.encode_sequence([[0, 0], [1, 1], [2, 2], [3, 3]])
        >>> decoder = codec.decoder()
        >>> decoder.decode(packets[0]), decoder.decode(packets[2])  # packet 1 lost
        (array([0., 0.]), array([2., 2.]))
    """

    def __init__(self, codec: KeypointCodec) -> None:
        self.codec = codec
        self._state: _CoderState | None = None

    @property
    def synchronised(self) -> bool:
        """Whether the decoder can decode the next predicted packet."""
        return self._state is not None

    def decode(self, packet: bytes) -> NDArray[np.float64]:
        """Decodes one packet into its frame.

        Args:
            packet: A packet from :meth:`KeypointEncoder.encode`.

        Returns:
            ``Array[D]``, the frame on the quantisation grid.

        Raises:
            DesyncError: If a predicted packet does not follow the last decoded frame (a
                packet was lost, or no keyframe came yet); the decoder then waits for the next
                keyframe.
            ValueError: If the packet is empty, or corrupt in a way the range coder notices.
                Packets carry no checksum: most damaged payloads decode to wrong values
                without an error, so the transport must drop damaged packets (UDP and RTP
                checksums do), which then count as lost.
            TypeError: If ``packet`` is not bytes.

        Example:
            >>> codec = KeypointCodec(2)
            >>> packets = codec.encode_sequence([[0.5, 0.5], [0.5, 0.5]])
            >>> codec.decoder().decode(packets[1])
            Traceback (most recent call last):
            ...
            snfseq.motion.codec.DesyncError: predicted frame 1 reached a decoder without frame 0
        """
        if not isinstance(packet, bytes | bytearray | memoryview):
            raise TypeError(f"packet must be bytes, got {type(packet).__name__}")
        packet = bytes(packet)
        if not packet:
            raise ValueError("empty packet")
        codec = self.codec
        keyframe = bool(packet[0] & _KEYFRAME_FLAG)
        number = packet[0] & _SEQUENCE_MASK
        state = self._state
        if keyframe:
            state = _CoderState(codec)
            state.frame_number = number
            mean, scale = state.keyframe_params()
            symbols = _decode_payload(packet[1:], codec._keyframe_model, mean, scale)
        else:
            if state is None or state.frame_number & _SEQUENCE_MASK != number:
                self._state = None
                raise DesyncError(
                    f"predicted frame {number} reached a decoder without frame "
                    f"{(number - 1) & _SEQUENCE_MASK}"
                )
            assert state.previous is not None
            mean, scale = state.residual_params()
            residual = _decode_payload(packet[1:], codec._residual_model, mean, scale)
            symbols = state.previous + residual
        state.update(symbols, keyframe)
        self._state = state
        return symbols.astype(np.float64) * codec.step


def _decode_payload(
    data: bytes, model: Any, mean: NDArray[np.float64], scale: NDArray[np.float64], *invalid: Any
) -> Any:
    """Range-decodes ``len(mean)`` integers from ``data`` (``invalid[0]`` if it cannot)."""
    padded = data + b"\0" * (-len(data) % 4)
    words = np.frombuffer(padded, dtype=">u4").astype(np.uint32)
    decoder = constriction.stream.queue.RangeDecoder(words)
    try:
        return decoder.decode(model, mean, scale).astype(np.int64)
    except AssertionError:  # constriction's signal for data the model cannot produce
        if invalid:
            return invalid[0]
        raise ValueError("corrupt packet") from None


def _shortest_payload(words: NDArray[np.uint32], decodes: Callable[[bytes], bool]) -> bytes:
    """The shortest cut of the coder's big-endian words (the decoder reads zeros past it).

    The range coder flushes whole 32-bit words, though any number in its final interval would
    do. A cut prefix, or the prefix plus one when plain truncation falls below the interval, is
    kept only if it decodes, exactly as the receiver will, to the same symbols.
    """
    best = words.astype(">u4").tobytes()
    for length in range(len(best) - 1, -1, -1):
        prefix = int.from_bytes(best[:length], "big") if length else 0
        candidates = [best[:length]]
        if length and prefix + 1 < 256**length:
            candidates.append((prefix + 1).to_bytes(length, "big"))
        found = next((c for c in candidates if decodes(c)), None)
        if found is None:
            break
        best = found
    return best
