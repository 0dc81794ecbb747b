"""Keypoint data: bundled real datasets, user keypoint files, windows and splits.

Face datasets are built with :mod:`snfseq.landmarks` (extraction and layouts), the layer below
this one. Importing this package is cheap: MediaPipe, OpenCV and pybullet are imported only
when a dataset is first built.

Example:
    >>> import numpy as np
    >>> from snfseq import data
    >>> train, val = data.split_sequences([np.zeros((100, 10, 2))], (0.8, 0.2))
    >>> tuple(data.make_windows(train, context=8, horizon=8, stride=4).shape)
    (17, 16, 20)
"""

from .cache import cache_dir
from .datasets import (
    FACE_VIDEOS,
    MOCAP_BONES,
    MOCAP_JOINTS,
    face_sequences,
    face_video,
    load_face,
    load_mocap,
    mocap_clips,
    mocap_sequences,
)
from .io import load_keypoints, save_keypoints
from .series import SERIES_DATASETS, SeriesData, load_series
from .windows import make_windows, split_sequences, to_array

__all__ = [
    "cache_dir",
    "load_face",
    "face_sequences",
    "face_video",
    "FACE_VIDEOS",
    "load_mocap",
    "mocap_clips",
    "mocap_sequences",
    "MOCAP_BONES",
    "MOCAP_JOINTS",
    "load_keypoints",
    "save_keypoints",
    "load_series",
    "SeriesData",
    "SERIES_DATASETS",
    "to_array",
    "make_windows",
    "split_sequences",
]
