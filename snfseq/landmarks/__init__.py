"""Landmarks from video and compact keypoint layouts, with the way back to the full face mesh.

This package sits below :mod:`snfseq.data` (which builds its face datasets from it) and below
the motion-transfer application :mod:`snfseq.motion` (which re-exports these names):

- :func:`extract` (module :mod:`snfseq.landmarks.extract`) runs MediaPipe on every frame of a
  video; frames without a detection are marked, and :func:`apply_gap_policy` (module
  :mod:`snfseq.landmarks.gaps`) decides what happens to them.
- :mod:`snfseq.landmarks.layouts` turns the 468-point mesh into a few keypoints per frame
  (:func:`get_layout`: ``"mesh"``, ``"mesh68"``, ``"mesh10"``, ``"pca:N"``) and maps them
  back; :mod:`snfseq.landmarks.mesh` holds the index tables of the subsets.

Importing this package is cheap: MediaPipe, OpenCV and PyAV are imported on first extraction.

Example:
    >>> import numpy as np
    >>> from snfseq import landmarks
    >>> frames = np.random.default_rng(0).normal(size=(40, landmarks.FACE_MESH_POINTS, 2))
    >>> layout = landmarks.get_layout("mesh68").fit(frames)
    >>> layout.reduce(frames).shape, layout.expand(layout.reduce(frames)).shape
    ((40, 68, 2), (40, 468, 2))
"""

from . import layouts
from .extract import LandmarkSet, extract, to_pixels
from .gaps import GapPolicy, apply_gap_policy
from .layouts import (
    Layout,
    MeshLayout,
    PCALayout,
    SubsetLayout,
    get_layout,
    layout_from_state,
    reduce_mesh,
)
from .mesh import FACE_MESH_POINTS, MESH10_GROUPS, MESH10_NAMES, MESH68_GROUPS

__all__ = [
    "extract",
    "to_pixels",
    "apply_gap_policy",
    "GapPolicy",
    "LandmarkSet",
    "layouts",
    "FACE_MESH_POINTS",
    "MESH68_GROUPS",
    "MESH10_GROUPS",
    "MESH10_NAMES",
    "Layout",
    "MeshLayout",
    "SubsetLayout",
    "PCALayout",
    "get_layout",
    "layout_from_state",
    "reduce_mesh",
]
