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

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from .base import FloatArray, Layout, _as_float, _check_points, _training_frames
from .mesh import FACE_MESH_POINTS, MESH10_GROUPS, MESH10_NAMES, MESH68_GROUPS
from .pca import PCALayout

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
    "layout_from_state",
    "reduce_mesh",
]


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

    _learned = {"weight": "_weight_matrix", "bias": "_bias", "mesh_shape": "_mesh_shape"}

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


def layout_from_state(name: str, state: dict[str, ArrayLike]) -> Layout:
    """Rebuilds a fitted layout from its short name and :meth:`Layout.state_dict`.

    Example:
        >>> import numpy as np
        >>> frames = np.random.default_rng(0).normal(size=(12, 468, 2))
        >>> layout = get_layout("mesh10").fit(frames)
        >>> again = layout_from_state("mesh10", layout.state_dict())
        >>> reduced = layout.reduce(frames)
        >>> bool(np.allclose(again.expand(reduced), layout.expand(reduced)))
        True
    """
    layout = get_layout(name)
    return layout.load_state_dict(state) if layout._learned else layout


def reduce_mesh(layout: Layout, mesh: xr.DataArray) -> xr.DataArray:
    """Reduces labelled mesh frames ``DataArray[T, N, C]`` through ``layout``, keeping labels.

    Returns:
        ``DataArray[T, K, C']`` (float32) with dims ``(time, keypoint, coord)``: the ``time``
        coordinates of ``mesh``, the layout's keypoint names (``keypoint_name``) and
        coordinate labels, and ``mesh``'s attributes plus ``layout``.

    Example:
        >>> mesh = xr.DataArray(np.ones((3, 468, 2)), dims=("time", "keypoint", "coord"),
        ...                     coords={"time": [4, 5, 6], "coord": ["x", "y"]})
        >>> reduced = reduce_mesh(get_layout("mesh10"), mesh)
        >>> reduced.dims, reduced.time.values.tolist(), reduced.attrs["layout"]
        (('time', 'keypoint', 'coord'), [4, 5, 6], 'mesh10')
    """
    values = layout.reduce(mesh.values).astype(np.float32)
    coords: dict[str, Any] = {
        str(name): coord for name, coord in mesh.coords.items() if coord.dims == ("time",)
    }
    coords["keypoint"] = np.arange(values.shape[1])
    if layout.keypoint_names is not None:
        coords["keypoint_name"] = ("keypoint", list(layout.keypoint_names))
    coords["coord"] = layout.output_coords([str(c) for c in mesh.coord.values])
    return xr.DataArray(
        values,
        dims=("time", "keypoint", "coord"),
        coords=coords,
        name="keypoints",
        attrs={**mesh.attrs, "layout": layout.name},
    )
