"""Frames from a source image and face-mesh landmarks: a piecewise-affine warp.

The receiver of keypoint-based motion transfer holds one source frame and its face mesh, and
renders every later frame from forecast landmarks alone. :class:`Renderer` warps the source
frame piecewise-affinely over one triangulation of three sets of control points:

- the face mesh itself (468 points, 478 with iris refinement);
- a ring around the face: the mesh's convex hull scaled about the mesh centroid by
  ``1 + margin`` and resampled to 32 points, carrying hair, ears and chin. The ring follows
  the face's rigid motion (the least-squares similarity from source to target mesh), not its
  expression: the head moves as a whole and a mouth opening does not ripple outwards. A ring
  point within one face radius of the frame edge follows proportionally less, so that it is
  never pushed across the border points;
- points on the frame border, which never move: the background is pinned at the frame edges
  and absorbs the head's motion smoothly between them and the ring.

The triangulation is the Delaunay triangulation of the source's control points, made once:
its topology stays fixed, so the warp varies continuously from frame to frame, it covers the
whole frame in one piece, takes iris points when present, and needs no MediaPipe table
(MediaPipe's own tessellation leaves the eyes and mouth open and stops at the face oval).
Where a target folds triangles over one another, face triangles are drawn last, on top.

Per frame, the target-to-source map is evaluated only on a coarse grid (one sample every
``grid`` pixels, by a vectorised barycentric test over each triangle's bounding box),
upsampled bilinearly to full resolution with ``cv2.resize``, and applied with one
``cv2.remap`` (bilinear, edge pixels replicated). Inside a triangle the map is affine, so
upsampling is exact there; it errs only within a grid cell of a triangle edge. Landmarks are
MediaPipe's normalised coordinates, as :func:`snfseq.landmarks.extract` returns them: pixel
``x * width - 0.5`` (pixel centres at integers), likewise for y; a z column is ignored.

Example:
    >>> import numpy as np
    >>> from snfseq.motion.render import Renderer
    >>> rng = np.random.default_rng(0)
    >>> frame = rng.integers(0, 256, size=(72, 96, 3), dtype=np.uint8)
    >>> face = 0.5 + rng.uniform(-0.2, 0.2, size=(468, 2))  # stands in for a face mesh
    >>> renderer = Renderer(frame, face)
    >>> moved = renderer.render(face + [0.05, 0.0])  # the face five percent to the right
    >>> moved.shape, moved.dtype
    ((72, 96, 3), dtype('uint8'))
    >>> bool(np.abs(renderer.render(face).astype(int) - frame).mean() < 1)
    True
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from snfseq.landmarks import to_pixels

__all__ = ["Renderer"]

Frame = NDArray[np.uint8]
Points = NDArray[np.float64]

_RING_POINTS = 32
# Barycentric slack, so that grid points on a shared edge count as inside a triangle despite
# float32 rounding; a sample that little outside gets the triangle's map, which is continuous.
_INSIDE_TOLERANCE = 1e-4


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise ImportError(f"rendering needs {name}: pip install snfseq[video]") from error


def _to_pixels(landmarks: ArrayLike, width: int, height: int, what: str) -> Points:
    """Normalised landmarks ``Array[P, 2|3]`` as pixel coordinates ``Array[P, 2]``."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] not in (2, 3):
        raise ValueError(f"{what} must have shape [points, 2 or 3], got {points.shape}")
    if not np.isfinite(points[:, :2]).all():
        raise ValueError(f"{what} contain NaN or inf (no face detected in that frame?)")
    return to_pixels(points, width, height)


def _similarity(source: Points, target: Points) -> tuple[Points, Points]:
    """Least-squares rotation-and-scale ``Array[2, 2]`` and shift ``Array[2]``: source to target."""
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    s, t = source - source_mean, target - target_mean
    norm = float(np.square(s).sum())
    cos = float((s * t).sum()) / norm
    sin = float((s[:, 0] * t[:, 1] - s[:, 1] * t[:, 0]).sum()) / norm
    rotation = np.array([[cos, -sin], [sin, cos]])
    return rotation, target_mean - rotation @ source_mean


def _ring(face: Points, margin: float, width: int, height: int, spatial: Any) -> Points:
    """The face's convex hull scaled by ``1 + margin`` about the mesh centroid, resampled."""
    hull = face[spatial.ConvexHull(face).vertices]
    centre = face.mean(axis=0)
    scaled = centre + (1.0 + margin) * (hull - centre)
    closed = np.vstack([scaled, scaled[:1]])
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(closed, axis=0).T))])
    steps = np.linspace(0.0, arc[-1], _RING_POINTS, endpoint=False)
    ring = np.column_stack(
        [np.interp(steps, arc, closed[:, 0]), np.interp(steps, arc, closed[:, 1])]
    )
    return np.clip(ring, 0, (width - 1, height - 1))


def _border(count: int, width: int, height: int) -> Points:
    """``count`` evenly spaced points on each side of the frame (pixel centres), corners once."""
    xs, ys = np.linspace(0, width - 1, count), np.linspace(0, height - 1, count)
    sides = [
        np.column_stack([xs, np.zeros(count)]),
        np.column_stack([xs, np.full(count, height - 1.0)]),
        np.column_stack([np.zeros(count - 2), ys[1:-1]]),
        np.column_stack([np.full(count - 2, width - 1.0), ys[1:-1]]),
    ]
    return np.concatenate(sides)


class Renderer:
    """Renders frames from one source frame and target face-mesh landmarks.

    Everything that depends on the source only (control points, triangulation, the source
    corner of every triangle, the coarse sampling grid) is computed here, once.

    Args:
        source_frame: ``Array[H, W, 3]`` (uint8), the frame to animate (RGB or BGR: the
            output has the same channel order).
        source_landmarks: ``Array[P, 2]`` or ``Array[P, 3]``, the face mesh of that frame in
            MediaPipe's normalised coordinates (one time step of :func:`extract`'s output);
            ``P`` is 468 or 478 for MediaPipe, though any ``P >= 3`` points in general
            position work.
        grid: Spacing in pixels of the coarse grid the warp is evaluated on; 1 is exact.
        border: Fixed control points on each side of the frame, corners included.
        margin: Distance of the ring from the face, as a fraction of the distance of the
            face's hull from the mesh centroid.
        follow: Fraction of the face's rigid motion the ring follows: 0 pins it, 1 moves it
            rigidly with the head.

    Attributes:
        num_points: ``P``, the number of landmarks every target must have.
        triangles: ``Array[T, 3]`` (int), vertex indices into :meth:`control_points`.

    Raises:
        ValueError: The frame is not ``uint8 [H, W, 3]``, the landmarks have the wrong shape
            or contain NaN, or an option is out of range.
        ImportError: OpenCV or SciPy is not installed.

    Example:
        >>> import numpy as np
        >>> frame = np.zeros((48, 64, 3), np.uint8)
        >>> face = 0.5 + np.random.default_rng(1).uniform(-0.2, 0.2, size=(478, 3))
        >>> renderer = Renderer(frame, face, grid=8, border=4)
        >>> renderer.num_points, renderer.triangles.shape[1]
        (478, 3)
    """

    def __init__(
        self,
        source_frame: ArrayLike,
        source_landmarks: ArrayLike,
        *,
        grid: int = 4,
        border: int = 8,
        margin: float = 0.25,
        follow: float = 1.0,
    ) -> None:
        self._cv2 = _import("cv2")
        spatial = _import("scipy.spatial")
        frame = np.array(source_frame, order="C")  # a copy: later edits of it change nothing
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(
                f"source_frame must be uint8 [H, W, 3], got {frame.dtype} {frame.shape}"
            )
        if min(frame.shape[:2]) < 2:
            raise ValueError(f"source_frame must be at least 2x2 pixels, got {frame.shape}")
        if int(grid) != grid or grid < 1:
            raise ValueError(f"grid must be a positive integer, got {grid}")
        if int(border) != border or border < 2:
            raise ValueError(f"border must be an integer >= 2, got {border}")
        if not margin > 0:
            raise ValueError(f"margin must be positive, got {margin}")
        if not 0 <= follow <= 1:
            raise ValueError(f"follow must lie in [0, 1], got {follow}")
        self.source_frame = frame
        self.height, self.width = frame.shape[:2]
        self.grid = int(grid)
        self.follow = float(follow)
        face = _to_pixels(source_landmarks, self.width, self.height, "source_landmarks")
        self.num_points = len(face)
        self._source_face = face
        try:
            ring = _ring(face, margin, self.width, self.height, spatial)
        except (spatial.QhullError, ValueError) as error:
            raise ValueError(
                f"source_landmarks need 3 or more points not all on a line, got {len(face)}"
            ) from error
        # A ring point closer to the frame edge than the face's radius follows proportionally
        # less, so that it cannot be pushed across the fixed border points.
        edge_distance = np.minimum(ring, (self.width - 1, self.height - 1) - ring).min(axis=1)
        radius = float(np.hypot(*(ring - face.mean(axis=0)).T).mean())
        self._ring_weight = self.follow * np.clip(edge_distance / radius, 0, 1)[:, None]
        self._source_ring = ring
        self._border = _border(int(border), self.width, self.height)
        self._source_points = np.concatenate([face, ring, self._border])
        triangles = spatial.Delaunay(self._source_points).simplices.astype(np.intp)
        # Face triangles are written last, so where the face crosses the ring it lies on top.
        on_face = (triangles < self.num_points).all(axis=1)
        self.triangles = triangles[np.argsort(on_face, kind="stable")]
        self.triangles.flags.writeable = False
        self._source_points.flags.writeable = False
        corners = self._source_points[self.triangles]
        # Source position of barycentric (l1, l2): origin + l1 * edge1 + l2 * edge2.
        self._source_affine = np.concatenate(
            [corners[:, 0], corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]], axis=1
        ).astype(np.float32)
        # Sample u sits at pixel (u - 1) * grid + (grid - 1) / 2: cv2.resize to grid times the
        # size then puts pixel x exactly at output index x + grid, so cropping [grid, grid + W)
        # gives bilinear interpolation between samples with one spare sample on every side.
        g = self.grid
        self._samples = (math.ceil(self.width / g) + 2, math.ceil(self.height / g) + 2)
        self._origin = -g + (g - 1) / 2
        self._sample_x = (self._origin + g * np.arange(self._samples[0])).astype(np.float32)
        self._sample_y = (self._origin + g * np.arange(self._samples[1])).astype(np.float32)
        # Outside the frame's border points the map is the identity, continuing the border.
        self._identity = np.stack(np.meshgrid(self._sample_x, self._sample_y), axis=-1)

    def control_points(self, target_landmarks: ArrayLike) -> tuple[Points, Points]:
        """Target and source control points in pixels, in the order of :attr:`triangles`.

        Args:
            target_landmarks: ``Array[P, 2|3]``, the face mesh to render, normalised.

        Returns:
            ``(target, source)``, each ``Array[C, 2]`` of pixel (x, y): the ``P`` mesh points,
            then the 32 ring points, then the border points.

        Raises:
            ValueError: Wrong shape, a point count other than the source's, or NaN.

        Example:
            >>> import numpy as np
            >>> face = 0.5 + np.random.default_rng(2).uniform(-0.2, 0.2, size=(468, 2))
            >>> renderer = Renderer(np.zeros((40, 40, 3), np.uint8), face, border=3)
            >>> target, source = renderer.control_points(face)
            >>> target.shape, bool(np.allclose(target, source))
            ((508, 2), True)
        """
        face = _to_pixels(target_landmarks, self.width, self.height, "target_landmarks")
        if len(face) != self.num_points:
            raise ValueError(
                f"target_landmarks have {len(face)} points, the source has {self.num_points}"
            )
        rotation, shift = _similarity(self._source_face, face)
        ring = self._source_ring
        ring = ring + self._ring_weight * (ring @ rotation.T + shift - ring)
        ring = np.clip(ring, 0, (self.width - 1, self.height - 1))
        return np.concatenate([face, ring, self._border]), self._source_points

    def _coarse_map(self, target: Points) -> NDArray[np.float32]:
        """Source pixel of every grid sample, ``Array[ny, nx, 2]``: barycentric per triangle.

        Each triangle tests the samples in its bounding box; those inside get the source point
        with the same barycentric coordinates. Later triangles overwrite earlier ones.
        """
        g, (nx, ny) = self.grid, self._samples
        corners = target[self.triangles]
        a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
        e1, e2 = b - a, c - a
        det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
        flat = np.abs(det) < 1e-9
        inverse = 1.0 / np.where(flat, 1.0, det)
        # Barycentric coordinates (l1, l2) of a sample are linear in its offset from corner a.
        barycentric = np.column_stack(
            [a, e2[:, 1] * inverse, -e2[:, 0] * inverse, -e1[:, 1] * inverse, e1[:, 0] * inverse]
        ).astype(np.float32)
        lowest = (np.minimum(np.minimum(a, b), c) - self._origin) / g
        highest = (np.maximum(np.maximum(a, b), c) - self._origin) / g
        low = np.maximum(np.ceil(lowest), 0).astype(np.intp)
        high = np.minimum(np.floor(highest), (nx - 1, ny - 1)).astype(np.intp)
        span = np.maximum(high - low + 1, 0)
        count = np.where(flat, 0, span[:, 0] * span[:, 1])
        owner = np.repeat(np.arange(len(corners)), count)
        local = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
        row, column = np.divmod(local, span[owner, 0])
        u, v = low[owner, 0] + column, low[owner, 1] + row
        weights = barycentric[owner]
        dx = self._sample_x[u] - weights[:, 0]
        dy = self._sample_y[v] - weights[:, 1]
        l1 = weights[:, 2] * dx + weights[:, 3] * dy
        l2 = weights[:, 4] * dx + weights[:, 5] * dy
        inside = np.flatnonzero(
            (l1 >= -_INSIDE_TOLERANCE)
            & (l2 >= -_INSIDE_TOLERANCE)
            & (l1 + l2 <= 1 + _INSIDE_TOLERANCE)
        )
        source = self._source_affine[owner[inside]]
        l1, l2 = l1[inside], l2[inside]
        coarse = self._identity.copy()
        samples = coarse.reshape(-1, 2)
        index = v[inside] * nx + u[inside]
        samples[index, 0] = source[:, 0] + l1 * source[:, 2] + l2 * source[:, 4]
        samples[index, 1] = source[:, 1] + l1 * source[:, 3] + l2 * source[:, 5]
        return coarse

    def render(self, target_landmarks: ArrayLike) -> Frame:
        """Warps the source frame so that its face takes the target landmarks' shape.

        Args:
            target_landmarks: ``Array[P, 2|3]``, one frame's face mesh, normalised like the
                source's (a z column is ignored).

        Returns:
            ``Array[H, W, 3]`` (uint8), the rendered frame.

        Raises:
            ValueError: Wrong shape, a point count other than the source's, or NaN (a frame
                without a face: fill such gaps before rendering).

        Example:
            >>> import numpy as np
            >>> frame = np.random.default_rng(3).integers(0, 256, (60, 80, 3), dtype=np.uint8)
            >>> face = 0.5 + np.random.default_rng(4).uniform(-0.2, 0.2, size=(468, 2))
            >>> renderer = Renderer(frame, face)
            >>> renderer.render(face * 1.05 - 0.025).shape
            (60, 80, 3)
            >>> renderer.render(np.full((468, 2), np.nan))
            Traceback (most recent call last):
            ...
            ValueError: target_landmarks contain NaN or inf (no face detected in that frame?)
        """
        cv2, g = self._cv2, self.grid
        coarse = self._coarse_map(self.control_points(target_landmarks)[0])
        size = (self._samples[0] * g, self._samples[1] * g)
        full = cv2.resize(coarse, size, interpolation=cv2.INTER_LINEAR)
        full = full[g : g + self.height, g : g + self.width]
        return cv2.remap(
            self.source_frame, full, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )

    def render_many(self, targets: ArrayLike) -> NDArray[np.uint8]:
        """Renders a sequence of target meshes.

        Args:
            targets: ``Array[N, P, 2|3]``, N frames of normalised landmarks (e.g. the values
                of :func:`extract`'s ``DataArray[T, K, 3]``).

        Returns:
            ``Array[N, H, W, 3]`` (uint8), one rendered frame per target.

        Raises:
            ValueError: ``targets`` is not 3-D, or any frame fails :meth:`render`'s checks.

        Example:
            >>> import numpy as np
            >>> face = 0.5 + np.random.default_rng(5).uniform(-0.2, 0.2, size=(468, 2))
            >>> renderer = Renderer(np.zeros((32, 48, 3), np.uint8), face)
            >>> renderer.render_many(np.stack([face, face + 0.01, face - 0.01])).shape
            (3, 32, 48, 3)
        """
        frames = np.asarray(targets)
        if frames.ndim != 3:
            raise ValueError(f"targets must have shape [N, points, 2 or 3], got {frames.shape}")
        out = np.empty((len(frames), self.height, self.width, 3), np.uint8)
        for index, target in enumerate(frames):
            out[index] = self.render(target)
        return out
