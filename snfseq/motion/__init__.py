"""Motion transfer: the application above the model.

A sender extracts a few keypoints per frame from a driving video, the model forecasts them, and
a receiver renders frames from a source image and the keypoints. Rendering, video IO, the
keypoint codec and the streaming simulation will arrive in this package.

The landmark layer it stands on lives in :mod:`snfseq.landmarks`; its names are re-exported
here (``motion.extract``, ``motion.get_layout``, ``motion.layouts``, ...), and the module paths
``snfseq.motion.extract`` and ``snfseq.motion.layouts`` are aliases of
``snfseq.landmarks.extract`` and ``snfseq.landmarks.layouts`` (the same module objects).

Example:
    >>> from snfseq import landmarks, motion
    >>> motion.extract is landmarks.extract, motion.layouts is landmarks.layouts
    (True, True)
    >>> motion.layouts.get_layout("mesh10").num_keypoints, motion.get_layout("pca:3").name
    (10, 'pca:3')
    >>> from snfseq.motion.extract import apply_gap_policy
    >>> apply_gap_policy is landmarks.apply_gap_policy
    True
"""

import sys

from ..landmarks import (
    FACE_MESH_POINTS,
    MESH10_GROUPS,
    MESH10_NAMES,
    MESH68_GROUPS,
    GapPolicy,
    LandmarkSet,
    Layout,
    MeshLayout,
    PCALayout,
    SubsetLayout,
    apply_gap_policy,
    extract,
    get_layout,
    layouts,
)

# The module paths from before landmarks moved to snfseq.landmarks, as aliases, not copies.
sys.modules[f"{__name__}.extract"] = sys.modules["snfseq.landmarks.extract"]
sys.modules[f"{__name__}.layouts"] = layouts

__all__ = [
    "extract",
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
]
