"""Motion from video: landmark extraction and compact keypoint layouts.

``snfseq.motion.extract`` is the extraction function (the module of the same name holds it and
the gap policies); ``snfseq.motion.layouts`` holds the compact layouts of the face mesh.
"""

from . import layouts
from .extract import GapPolicy, LandmarkSet, apply_gap_policy, extract
from .layouts import (
    FACE_MESH_POINTS,
    MESH10_GROUPS,
    MESH10_NAMES,
    MESH68_GROUPS,
    Layout,
    MeshLayout,
    PCALayout,
    SubsetLayout,
    get_layout,
)

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
