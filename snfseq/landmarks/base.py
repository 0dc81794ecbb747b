"""The :class:`Layout` interface of compact face-mesh layouts, and the checks they share.

Example:
    >>> from snfseq.landmarks.layouts import get_layout
    >>> isinstance(get_layout("mesh10"), Layout)
    True
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["Layout"]

FloatArray = NDArray[np.floating[Any]]


def _as_float(array: ArrayLike) -> FloatArray:
    """Returns a float array, keeping float32/float64 and promoting anything else to float64."""
    out = np.asarray(array)
    if out.dtype not in (np.float32, np.float64):
        out = out.astype(np.float64)
    return out


def _check_points(array: FloatArray, what: str) -> None:
    if array.ndim < 2:
        raise ValueError(f"{what} must have shape [..., points, coords], got shape {array.shape}")


def _training_frames(mesh: ArrayLike, what: str) -> NDArray[np.float64]:
    """Returns the frames of ``mesh`` [T, N, C] without missing values, as float64."""
    frames = np.asarray(mesh, dtype=np.float64)
    if frames.ndim != 3:
        raise ValueError(f"{what} needs mesh frames of shape [T, N, C], got shape {frames.shape}")
    complete = ~np.isnan(frames).any(axis=(1, 2))
    if complete.sum() < 2:
        raise ValueError(
            f"{what} needs at least 2 frames without missing values, got {int(complete.sum())}"
        )
    return frames[complete]


class Layout(abc.ABC):
    """A compact representation of face-mesh frames and its map back to the mesh.

    ``reduce`` maps ``Array[..., N, C]`` (N mesh points, C coordinates) to ``Array[..., K, C']``;
    ``expand`` maps back. Layouts that learn anything from data (the map back to the mesh, the
    principal components) must be fitted first with ``fit(mesh_frames)``.

    Example:
        >>> import numpy as np
        >>> from snfseq.landmarks.layouts import get_layout
        >>> layout = get_layout("pca:4")
        >>> isinstance(layout, Layout), layout.is_fitted
        (True, False)
        >>> layout.fit(np.random.default_rng(0).normal(size=(20, 468, 2)))
        PCALayout(name='pca:4', keypoints=4, fitted)
    """

    name: str
    keypoint_names: list[str] | None = None

    @property
    @abc.abstractmethod
    def num_keypoints(self) -> int:
        """K, the number of (pseudo-)keypoints per frame after ``reduce``."""

    @property
    @abc.abstractmethod
    def is_fitted(self) -> bool:
        """Whether ``expand`` (and for PCA ``reduce``) can be used."""

    @abc.abstractmethod
    def fit(self, mesh: ArrayLike) -> Layout:
        """Learns from mesh frames ``Array[T, N, C]``; frames with NaN are ignored. Returns self."""

    @abc.abstractmethod
    def reduce(self, mesh: ArrayLike) -> FloatArray:
        """Maps ``Array[..., N, C]`` mesh frames to ``Array[..., K, C']``."""

    @abc.abstractmethod
    def expand(self, reduced: ArrayLike) -> FloatArray:
        """Maps ``Array[..., K, C']`` back to mesh frames ``Array[..., N, C]``."""

    @abc.abstractmethod
    def output_coords(self, coords: Sequence[str]) -> list[str]:
        """Labels of the last axis of ``reduce``'s output, given the input's coordinate labels."""

    #: Learned attributes saved by :meth:`state_dict`, by their name in the saved state.
    _learned: dict[str, str] = {}

    def state_dict(self) -> dict[str, NDArray[np.float64]]:
        """What the layout learned, as named arrays (empty when nothing was learned), so that
        a checkpoint can carry it; :func:`layout_from_state` rebuilds the layout.

        Example:
            >>> import numpy as np
            >>> from snfseq.landmarks.layouts import get_layout
            >>> frames = np.random.default_rng(0).normal(size=(9, 468, 2))
            >>> layout = get_layout("pca:2").fit(frames)
            >>> sorted(layout.state_dict())
            ['components', 'explained', 'mean', 'mesh_shape']
        """
        return {
            key: np.array(getattr(self, attribute), dtype=np.float64)
            for key, attribute in self._learned.items()
            if getattr(self, attribute) is not None
        }

    def load_state_dict(self, state: dict[str, ArrayLike]) -> Layout:
        """Restores what :meth:`state_dict` returned; returns self."""
        missing = sorted(set(self._learned) - set(state))
        if missing:
            raise ValueError(f"layout {self.name!r}: saved state lacks {missing}")
        for key, attribute in self._learned.items():
            value = np.asarray(state[key], dtype=np.float64)
            setattr(self, attribute, tuple(int(v) for v in value) if key == "mesh_shape" else value)
        return self

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise RuntimeError(f"layout {self.name!r} is not fitted; call fit(mesh_frames) first")

    def __repr__(self) -> str:
        state = "fitted" if self.is_fitted else "not fitted"
        return f"{type(self).__name__}(name={self.name!r}, keypoints={self.num_keypoints}, {state})"
