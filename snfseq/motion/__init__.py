"""Motion transfer: the application above the model.

A sender extracts a few keypoints per frame from a driving video, the model forecasts them, and
a receiver renders frames from a source image and the keypoints. Here today: video files
(``read_video``, ``iter_frames``, ``write_video``, from :mod:`snfseq.video`), rendering a
source frame to target landmarks (:class:`Renderer`: a piecewise-affine warp over the face
mesh, :mod:`snfseq.motion.render`), overlays (:mod:`snfseq.motion.overlay`: landmarks drawn on
frames, captions, tiles, labelled side-by-side videos of truth and samples) and pixel quality
of rendered frames (:mod:`snfseq.motion.quality`: MAE, PSNR, SSIM, pixel APD, best-k-of-N,
face masks), and the keypoint codec (:mod:`snfseq.motion.codec`: quantised, predicted from the
previous decoded frame, range coded with an adaptive Laplace per feature, one packet per frame,
keyframes for resynchronisation; :func:`bitrate` measures a stream), and streaming over a lossy,
delayed link (:mod:`snfseq.motion.stream`: hold, linear and forecasting receivers side by side).

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

from snfseq.video import VideoReader, iter_frames, read_video, write_video

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
    layout_from_state,
    layouts,
    reduce_mesh,
    to_pixels,
)
from . import codec, overlay, quality
from .bandwidth import Bitrate, bitrate
from .codec import DesyncError, KeypointCodec, KeypointDecoder, KeypointEncoder
from .render import Renderer
from .stream import ForecastReceiver, HoldReceiver, LinearReceiver, Receiver, simulate_stream

# The module paths from before landmarks moved to snfseq.landmarks, as aliases, not copies.
sys.modules[f"{__name__}.extract"] = sys.modules["snfseq.landmarks.extract"]
sys.modules[f"{__name__}.layouts"] = layouts

__all__ = [
    "Bitrate",
    "DesyncError",
    "KeypointCodec",
    "KeypointDecoder",
    "KeypointEncoder",
    "bitrate",
    "codec",
    "Renderer",
    "VideoReader",
    "overlay",
    "iter_frames",
    "quality",
    "read_video",
    "write_video",
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
__all__ += ["ForecastReceiver", "HoldReceiver", "LinearReceiver", "Receiver", "simulate_stream"]
