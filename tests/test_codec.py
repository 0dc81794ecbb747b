"""Keypoint codec: lossless on the quantisation grid, resynchronising, and smaller than raw."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from snfseq.motion.codec import DesyncError, KeypointCodec, bitrate


@pytest.fixture(scope="module", params=["mesh10", "mesh"])
def face(request: pytest.FixtureRequest) -> np.ndarray:
    """Real carphone landmarks, ``Array[T, D]`` float64, in the compact or the full layout."""
    pytest.importorskip("mediapipe", reason="real face landmarks need the landmark extractor")
    from snfseq.data.datasets import load_face

    array = load_face("carphone", layout=request.param, progress=False).values
    return array.reshape(len(array), -1).astype(np.float64)


@pytest.mark.parametrize("step", [1 / 256, 1 / 4096])
def test_round_trip_on_real_faces_is_exact_on_the_grid(face: np.ndarray, step: float) -> None:
    codec = KeypointCodec(face.shape[1], step=step)
    decoded = codec.decode_sequence(codec.encode_sequence(face))
    # Exactly the quantised values, not merely close to the input.
    np.testing.assert_array_equal(np.rint(decoded / step), np.rint(face / step))
    assert np.abs(decoded - face).max() <= step / 2 + 1e-9


def test_decoder_resynchronises_at_the_next_keyframe(face: np.ndarray) -> None:
    codec = KeypointCodec(face.shape[1], step=1 / 1024, keyframe_interval=30)
    packets = codec.encode_sequence(face)
    reference = codec.decode_sequence(packets)
    decoder = codec.decoder()
    for packet in packets[:10]:
        decoder.decode(packet)
    # Packets 10..19 are lost: the next predicted packet must be refused, not mis-decoded.
    with pytest.raises(DesyncError):
        decoder.decode(packets[20])
    assert not decoder.synchronised
    with pytest.raises(DesyncError):
        decoder.decode(packets[21])
    resumed = np.stack([decoder.decode(packet) for packet in packets[30:]])
    np.testing.assert_array_equal(resumed, reference[30:])
    # A receiver that joins late needs only the packets since the last keyframe.
    np.testing.assert_array_equal(codec.decode_sequence(packets[60:]), reference[60:])


def test_prediction_saves_bytes_on_real_faces(face: np.ndarray) -> None:
    features = face.shape[1]
    predicted = bitrate(KeypointCodec(features).encode_sequence(face))
    intra = bitrate(KeypointCodec(features, keyframe_interval=1).encode_sequence(face))
    assert predicted.bits_per_frame < 0.6 * intra.bits_per_frame
    # And far below the raw quantised frame as int16, which zlib makes no smaller here.
    raw_bits = 16 * features
    assert predicted.bits_per_frame < 0.5 * raw_bits
    assert 30 * predicted.bits_per_frame / 1000 == pytest.approx(predicted.kbit_per_second)


def test_zlib_makes_a_small_frame_larger() -> None:
    # The point of entropy coding with a model: a 20-number frame has no repeats to exploit.
    frame = np.rint(np.linspace(0.25, 0.75, 20) * 1024).astype("<i2").tobytes()
    assert len(zlib.compress(frame, 9)) > len(frame)


def test_adaptive_scale_follows_the_residuals() -> None:
    # A still feature next to a jittery one: the adaptive model spends less on the still one.
    rng = np.random.default_rng(1)
    frames = np.zeros((30, 2))
    frames[:, 1] = rng.integers(-40, 41, 30) / 1024
    still = KeypointCodec(2).encoder()
    codec = KeypointCodec(2, adaptation=1e-9)  # effectively frozen at the initial scale
    frozen = codec.encoder()
    adaptive_bytes = sum(len(still.encode(frame)) for frame in frames)
    frozen_bytes = sum(len(frozen.encode(frame)) for frame in frames)
    assert adaptive_bytes < frozen_bytes


def test_random_walks_round_trip() -> None:
    rng = np.random.default_rng(0)
    for trial in range(60):
        features = int(rng.integers(1, 40))
        length = int(rng.integers(1, 50))
        step = float(2.0 ** -rng.integers(4, 14))
        jump = float(10 ** rng.uniform(-5, -0.5))
        walk = rng.standard_t(2, size=(length, features)) * jump
        frames = np.clip(rng.uniform(-1, 1, features) + np.cumsum(walk, axis=0), -3.9, 3.9)
        codec = KeypointCodec(features, step=step, keyframe_interval=int(rng.integers(1, 12)))
        packets = codec.encode_sequence(frames)
        decoded = codec.decode_sequence(packets)
        assert np.abs(decoded - frames).max() <= step / 2 + 1e-9, trial
        np.testing.assert_array_equal(np.rint(decoded / step), np.rint(frames / step))
        assert all(len(packet) >= 1 for packet in packets)


def test_rejects_bad_input() -> None:
    codec = KeypointCodec(3, bound=1.0)
    with pytest.raises(ValueError, match="shape"):
        codec.encoder().encode(np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        codec.encoder().encode([0.0, np.nan, 0.0])
    with pytest.raises(ValueError, match="bound"):
        codec.encoder().encode([0.0, 2.0, 0.0])
    with pytest.raises(ValueError, match="not both"):
        KeypointCodec(3, step=0.1, bits=4)
    with pytest.raises(DesyncError):
        codec.decoder().decode(codec.encode_sequence(np.zeros((2, 3)))[1])
