"""Compact keypoint layouts of the MediaPipe face mesh, with a learned way back to the mesh.

A layout turns a dense face mesh (468 points, 478 with iris refinement) into a few numbers per
frame, which is what travels in keypoint-based motion transfer, and maps those numbers back to
the full mesh for rendering:

- :class:`SubsetLayout` keeps named landmarks (each the mean of one or a few mesh points) and
  learns a ridge-regularised linear map, with a bias, from the subset back to the mesh.
- :class:`PCALayout` projects the whole mesh on its leading principal components.
- :class:`MeshLayout` keeps the 468 mesh points themselves.

:func:`get_layout` builds one from a short name: ``"mesh"``, ``"mesh68"``, ``"mesh10"`` or
``"pca:N"``. The index tables behind the subsets live in :mod:`snfseq.landmarks.mesh` (and are
re-exported here).

Example:
    >>> import numpy as np
    >>> frames = np.random.default_rng(0).normal(size=(30, 468, 2))
    >>> layout = get_layout("mesh10").fit(frames)
    >>> layout.reduce(frames).shape, layout.expand(layout.reduce(frames[:2])).shape
    ((30, 10, 2), (2, 468, 2))
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .mesh import FACE_MESH_POINTS, MESH10_GROUPS, MESH10_NAMES, MESH68_GROUPS

__all__ = [
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

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise RuntimeError(f"layout {self.name!r} is not fitted; call fit(mesh_frames) first")

    def __repr__(self) -> str:
        state = "fitted" if self.is_fitted else "not fitted"
        return f"{type(self).__name__}(name={self.name!r}, keypoints={self.num_keypoints}, {state})"


class MeshLayout(Layout):
    """The 468 face-mesh points themselves (iris points of a refined 478-point mesh dropped).

    Example:
        >>> import numpy as np
        >>> layout = MeshLayout()
        >>> layout.reduce(np.zeros((5, 478, 2))).shape
        (5, 468, 2)
    """

    def __init__(self) -> None:
        self.name = "mesh"

    @property
    def num_keypoints(self) -> int:
        return FACE_MESH_POINTS

    @property
    def is_fitted(self) -> bool:
        return True

    def fit(self, mesh: ArrayLike) -> MeshLayout:
        return self

    def reduce(self, mesh: ArrayLike) -> FloatArray:
        array = _as_float(mesh)
        _check_points(array, "mesh")
        if array.shape[-2] < FACE_MESH_POINTS:
            raise ValueError(
                f"mesh must have at least {FACE_MESH_POINTS} points, got {array.shape[-2]}"
            )
        return array[..., :FACE_MESH_POINTS, :].copy()

    def expand(self, reduced: ArrayLike) -> FloatArray:
        array = _as_float(reduced)
        _check_points(array, "reduced")
        if array.shape[-2] != FACE_MESH_POINTS:
            raise ValueError(f"expected {FACE_MESH_POINTS} points, got {array.shape[-2]}")
        return array.copy()

    def output_coords(self, coords: Sequence[str]) -> list[str]:
        return list(coords)


class SubsetLayout(Layout):
    """Landmarks that are each the mean of a group of mesh points, plus a learned way back.

    ``reduce`` needs no fitting. ``fit`` learns ``mesh ≈ subset @ W + b`` over flattened frames
    by ridge regression; the ridge strength is ``alpha`` times the mean variance of the subset
    features, so it does not depend on the units of the coordinates.

    Args:
        groups: For each of the K landmarks, the mesh indices whose mean it is.
        name: Short name of the layout.
        keypoint_names: Optional names of the K landmarks.
        alpha: Relative ridge strength of the map back to the mesh.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> frames = rng.normal(size=(50, 468, 2))
        >>> layout = get_layout("mesh68").fit(frames)
        >>> layout.reduce(frames).shape, layout.expand(layout.reduce(frames)).shape
        ((50, 68, 2), (50, 468, 2))
    """

    def __init__(
        self,
        groups: Sequence[Sequence[int]],
        *,
        name: str = "subset",
        keypoint_names: Sequence[str] | None = None,
        alpha: float = 1e-4,
    ) -> None:
        if len(groups) == 0 or any(len(group) == 0 for group in groups):
            raise ValueError("groups must be a non-empty list of non-empty index lists")
        if keypoint_names is not None and len(keypoint_names) != len(groups):
            raise ValueError(f"got {len(keypoint_names)} keypoint names for {len(groups)} groups")
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        width = max(len(group) for group in groups)
        # Groups are padded by repeating their first index with zero weight, so reduce is one
        # gather and one weighted sum whatever the group sizes.
        self._indices = np.array([list(g) + [g[0]] * (width - len(g)) for g in groups])
        self._weights = np.array(
            [[1.0 / len(g)] * len(g) + [0.0] * (width - len(g)) for g in groups]
        )
        if self._indices.min() < 0:
            raise ValueError("mesh indices must be >= 0")
        self.name = name
        self.keypoint_names = None if keypoint_names is None else list(keypoint_names)
        self.alpha = float(alpha)
        self._weight_matrix: NDArray[np.float64] | None = None
        self._bias: NDArray[np.float64] | None = None
        self._mesh_shape: tuple[int, int] | None = None

    @property
    def num_keypoints(self) -> int:
        return len(self._indices)

    @property
    def is_fitted(self) -> bool:
        return self._weight_matrix is not None

    def reduce(self, mesh: ArrayLike) -> FloatArray:
        array = _as_float(mesh)
        _check_points(array, "mesh")
        needed = int(self._indices.max()) + 1
        if array.shape[-2] < needed:
            raise ValueError(
                f"layout {self.name!r} needs at least {needed} mesh points, got {array.shape[-2]}"
            )
        gathered = array[..., self._indices, :]  # [..., K, G, C]
        return np.einsum("...kgc,kg->...kc", gathered, self._weights.astype(array.dtype))

    def fit(self, mesh: ArrayLike) -> SubsetLayout:
        frames = _training_frames(mesh, f"fitting layout {self.name!r}")
        count, points, coords = frames.shape
        features = self.reduce(frames).reshape(count, -1)
        targets = frames.reshape(count, -1)
        feature_mean = features.mean(axis=0)
        target_mean = targets.mean(axis=0)
        centred = features - feature_mean
        gram = centred.T @ centred
        ridge = self.alpha * np.trace(gram) / len(gram)
        # A floor keeps the system solvable when all training frames are identical.
        ridge = max(ridge, np.finfo(np.float64).tiny)
        weight = np.linalg.solve(
            gram + ridge * np.eye(len(gram)), centred.T @ (targets - target_mean)
        )
        self._weight_matrix = weight
        self._bias = target_mean - feature_mean @ weight
        self._mesh_shape = (points, coords)
        return self

    def expand(self, reduced: ArrayLike) -> FloatArray:
        self._require_fitted()
        assert self._weight_matrix is not None and self._bias is not None
        assert self._mesh_shape is not None
        array = _as_float(reduced)
        points, coords = self._mesh_shape
        expected = (self.num_keypoints, coords)
        if array.ndim < 2 or array.shape[-2:] != expected:
            raise ValueError(
                f"expected reduced frames [..., {expected[0]}, {expected[1]}], "
                f"got shape {array.shape}"
            )
        flat = array.reshape(*array.shape[:-2], -1).astype(np.float64)
        mesh = flat @ self._weight_matrix + self._bias
        return mesh.reshape(*array.shape[:-2], points, coords).astype(array.dtype)

    def output_coords(self, coords: Sequence[str]) -> list[str]:
        return list(coords)


class PCALayout(Layout):
    """Principal components of the flattened mesh.

    ``reduce`` gives the component scores as ``Array[..., K, 1]`` (K pseudo-keypoints with one
    coordinate, so that every layout yields ``[..., K, C']``); ``expand`` maps scores back to the
    mesh. With as many components as numbers per frame (N * C) the reconstruction is exact.

    Args:
        n_components: K, the number of principal components kept.

    Example:
        >>> import numpy as np
        >>> frames = np.random.default_rng(0).normal(size=(40, 468, 2))
        >>> layout = PCALayout(8).fit(frames)
        >>> scores = layout.reduce(frames)
        >>> scores.shape, layout.expand(scores).shape
        ((40, 8, 1), (40, 468, 2))
    """

    def __init__(self, n_components: int) -> None:
        if int(n_components) != n_components or n_components < 1:
            raise ValueError(f"n_components must be a positive integer, got {n_components}")
        self.n_components = int(n_components)
        self.name = f"pca:{self.n_components}"
        self._mean: NDArray[np.float64] | None = None
        self._components: NDArray[np.float64] | None = None
        self._explained: NDArray[np.float64] | None = None
        self._mesh_shape: tuple[int, int] | None = None

    @property
    def num_keypoints(self) -> int:
        return self.n_components

    @property
    def is_fitted(self) -> bool:
        return self._components is not None

    @property
    def explained_variance_ratio(self) -> NDArray[np.float64]:
        """Fraction of the training variance along each kept component, ``Array[K]``.

        Example:
            >>> import numpy as np
            >>> frames = np.random.default_rng(0).normal(size=(10, 468, 2))
            >>> ratios = PCALayout(3).fit(frames).explained_variance_ratio
            >>> ratios.shape, bool((ratios[:-1] >= ratios[1:]).all())
            ((3,), True)
        """
        self._require_fitted()
        assert self._explained is not None
        return self._explained.copy()

    def fit(self, mesh: ArrayLike) -> PCALayout:
        frames = _training_frames(mesh, f"fitting layout {self.name!r}")
        count, points, coords = frames.shape
        features = points * coords
        if self.n_components > features:
            raise ValueError(
                f"n_components={self.n_components} exceeds the {features} numbers per frame"
            )
        flat = frames.reshape(count, -1)
        mean = flat.mean(axis=0)
        # With more components than frames the thin SVD has too few right singular vectors;
        # the full one completes them to an orthonormal basis of the whole frame space.
        full = self.n_components > min(count, features)
        _, singular, right = np.linalg.svd(flat - mean, full_matrices=full)
        variance = np.zeros(features)
        variance[: len(singular)] = singular**2
        total = variance.sum()
        self._mean = mean
        self._components = right[: self.n_components]
        kept = variance[: self.n_components]
        self._explained = kept / total if total > 0 else kept
        self._mesh_shape = (points, coords)
        return self

    def _check_mesh(self, array: FloatArray) -> None:
        assert self._mesh_shape is not None
        if array.ndim < 2 or array.shape[-2:] != self._mesh_shape:
            raise ValueError(
                f"layout {self.name!r} was fitted on frames [..., {self._mesh_shape[0]}, "
                f"{self._mesh_shape[1]}], got shape {array.shape}"
            )

    def reduce(self, mesh: ArrayLike) -> FloatArray:
        self._require_fitted()
        assert self._mean is not None and self._components is not None
        array = _as_float(mesh)
        self._check_mesh(array)
        flat = array.reshape(*array.shape[:-2], -1).astype(np.float64)
        scores = (flat - self._mean) @ self._components.T
        return scores[..., None].astype(array.dtype)

    def expand(self, reduced: ArrayLike) -> FloatArray:
        self._require_fitted()
        assert self._mean is not None and self._components is not None
        assert self._mesh_shape is not None
        array = _as_float(reduced)
        if array.ndim < 2 or array.shape[-2:] != (self.n_components, 1):
            raise ValueError(
                f"expected scores [..., {self.n_components}, 1], got shape {array.shape}"
            )
        flat = array[..., 0].astype(np.float64) @ self._components + self._mean
        return flat.reshape(*array.shape[:-2], *self._mesh_shape).astype(array.dtype)

    def output_coords(self, coords: Sequence[str]) -> list[str]:
        return ["pc"]


def get_layout(spec: str | Layout) -> Layout:
    """Builds a layout from its short name (a :class:`Layout` is returned as it is).

    Args:
        spec: ``"mesh"`` (468 points), ``"mesh68"`` (iBUG 68 points), ``"mesh10"`` (10 points)
            or ``"pca:N"`` (N principal components of the mesh).

    Returns:
        A new, unfitted layout.

    Example:
        >>> get_layout("mesh10").num_keypoints, get_layout("pca:16").num_keypoints
        (10, 16)
    """
    if isinstance(spec, Layout):
        return spec
    if spec == "mesh":
        return MeshLayout()
    if spec == "mesh68":
        return SubsetLayout(MESH68_GROUPS, name="mesh68")
    if spec == "mesh10":
        return SubsetLayout(MESH10_GROUPS, name="mesh10", keypoint_names=MESH10_NAMES)
    if isinstance(spec, str) and spec.startswith("pca:"):
        count = spec.removeprefix("pca:")
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"layout {spec!r}: expected 'pca:N' with N a positive integer")
        return PCALayout(int(count))
    raise ValueError(f"unknown layout {spec!r}; expected 'mesh', 'mesh68', 'mesh10' or 'pca:N'")
