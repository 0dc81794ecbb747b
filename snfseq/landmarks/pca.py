"""Principal components of the face mesh as a compact layout.

Example:
    >>> import numpy as np
    >>> PCALayout(3).fit(np.random.default_rng(0).normal(size=(10, 468, 2))).num_keypoints
    3
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .base import FloatArray, Layout, _as_float, _training_frames

__all__ = ["PCALayout"]


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

    _learned = {
        "mean": "_mean",
        "components": "_components",
        "explained": "_explained",
        "mesh_shape": "_mesh_shape",
    }

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
