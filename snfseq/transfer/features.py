"""What a model reads: landmarks turned into the model's keypoints through its layout, and back.

:func:`snfseq.landmarks.extract` gives the full face mesh (468 points, x, y, z); a model reads
the few keypoints it was trained on. :func:`training_keypoints` reduces training meshes through
a layout fitted on them (the layout then travels in the checkpoint as ``model.layout``),
:func:`model_keypoints` reduces any later mesh the same way (or checks that keypoints already
fit the model), and :func:`to_mesh` maps the model's frames and forecasts back to the mesh
that rendering needs.

A model's frames hold the first ``C`` coordinates of x, y, z per keypoint, ``C`` being what the
training files were cut to (x, y by default); the layout records ``C`` for meshes.

Example:
    >>> import numpy as np, xarray as xr
    >>> from snfseq import SequenceFlow
    >>> mesh = xr.DataArray(np.random.default_rng(0).random((30, 468, 3)),
    ...                     dims=("time", "keypoint", "coord"), coords={"coord": ["x", "y", "z"]})
    >>> [train], layout = training_keypoints([mesh])  # mesh10 on x, y, fitted on the mesh
    >>> dict(train.sizes), layout.name
    ({'time': 30, 'keypoint': 10, 'coord': 2}, 'mesh10')
    >>> model = SequenceFlow(features=20, hidden=8, layers=1, transforms=2)
    >>> model.layout = layout
    >>> model_keypoints(model, mesh).shape, to_mesh(model, train.values[:2]).shape
    ((30, 10, 2), (2, 468, 2))
"""

from __future__ import annotations

__all__ = [
    "describe_keypoints",
    "is_face_mesh",
    "model_keypoints",
    "reduce_keypoints",
    "to_mesh",
    "training_keypoints",
]

from collections.abc import Sequence

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from snfseq.data.io import as_keypoints
from snfseq.landmarks import FACE_MESH_POINTS, Layout, get_layout, reduce_mesh
from snfseq.model import SequenceFlow

_XYZ = ("x", "y", "z")
_REFINED_MESH_POINTS = 478


def is_face_mesh(keypoints: xr.DataArray) -> bool:
    """Whether keypoints ``DataArray[T, K, C]`` start with a MediaPipe face mesh.

    True for 468 or 478 points, and for longer sets whose first 468 points have ``part``
    ``"face"`` (``landmarks="face+pose"``).

    Example:
        >>> import numpy as np, xarray as xr
        >>> dims = ("time", "keypoint", "coord")
        >>> is_face_mesh(xr.DataArray(np.zeros((2, 468, 3)), dims=dims))
        True
        >>> is_face_mesh(xr.DataArray(np.zeros((2, 33, 3)), dims=dims))
        False
    """
    count = keypoints.sizes["keypoint"]
    if count < FACE_MESH_POINTS:
        return False
    if "part" in keypoints.coords:
        return bool((keypoints.coords["part"].values[:FACE_MESH_POINTS] == "face").all())
    return count in (FACE_MESH_POINTS, _REFINED_MESH_POINTS)


def describe_keypoints(keypoints: xr.DataArray) -> str:
    """Says what keypoints are, for error messages: "33 pose keypoints x 3 coords", ...

    Example:
        >>> import numpy as np, xarray as xr
        >>> dims = ("time", "keypoint", "coord")
        >>> describe_keypoints(xr.DataArray(np.zeros((2, 468, 3)), dims=dims))
        'a 468-point face mesh x 3 coords'
    """
    count, coords = keypoints.sizes["keypoint"], keypoints.sizes["coord"]
    if is_face_mesh(keypoints):
        return f"a {count}-point face mesh x {coords} coords"
    parts = keypoints.coords["part"].values if "part" in keypoints.coords else []
    kind = f"{parts[0]} " if len(set(parts)) == 1 else ""
    layout = keypoints.attrs.get("layout")
    named = f" ({layout})" if isinstance(layout, str) else ""
    return f"{count} {kind}keypoints{named} x {coords} coords"


def _labelled(keypoints: xr.DataArray) -> xr.DataArray:
    """Checked keypoints with frame numbers as ``time`` and x, y, z as ``coord`` where unlabelled,
    so that results can name frames and coordinates."""
    keypoints = as_keypoints(keypoints)
    if "time" not in keypoints.coords:
        keypoints = keypoints.assign_coords(time=np.arange(keypoints.sizes["time"]))
    if "coord" not in keypoints.coords and keypoints.sizes["coord"] <= len(_XYZ):
        keypoints = keypoints.assign_coords(coord=list(_XYZ[: keypoints.sizes["coord"]]))
    return keypoints


def _first_coords(keypoints: xr.DataArray, count: int) -> xr.DataArray:
    """The first ``count`` coordinates, in x, y, z order where the labels are those."""
    labels = [str(label) for label in keypoints.coords["coord"].values]
    if set(labels) <= set(_XYZ):
        return keypoints.sel(coord=[c for c in _XYZ if c in labels][:count])
    return keypoints.isel(coord=slice(0, count))


def reduce_keypoints(layout: Layout, mesh: xr.DataArray) -> xr.DataArray:
    """Reduces mesh frames ``DataArray[T, N, C]`` through a layout, keeping the time coordinates.

    Args:
        layout: The layout (fitted, for PCA).
        mesh: Face-mesh frames with dims ``(time, keypoint, coord)``.

    Returns:
        ``DataArray[T, K, C']`` (float32), with the layout's keypoint names and coordinate
        labels, the ``time`` coordinates of ``mesh`` and its attributes plus ``layout``.

    Example:
        >>> import numpy as np, xarray as xr
        >>> mesh = xr.DataArray(np.ones((4, 468, 2)), dims=("time", "keypoint", "coord"),
        ...                     coords={"time": [5, 6, 7, 8], "coord": ["x", "y"]})
        >>> reduced = reduce_keypoints(get_layout("mesh10"), mesh)
        >>> reduced.time.values.tolist(), str(reduced.keypoint_name.values[0])
        ([5, 6, 7, 8], 'right_eye_outer')
    """
    return reduce_mesh(layout, as_keypoints(mesh))


def training_keypoints(
    sequences: Sequence[xr.DataArray],
    layout: str | Layout | None = "auto",
    coords: Sequence[str] = ("x", "y"),
) -> tuple[list[xr.DataArray], Layout | None]:
    """Keypoint sequences ready for training, and the layout fitted for them.

    Face meshes (as :func:`snfseq.landmarks.extract` writes them) are cut to ``coords`` and
    reduced through ``layout``, fitted on the frames of all of them; other keypoints (a body
    pose, keypoints already reduced) are only cut to ``coords`` and train without a layout.

    Args:
        sequences: Keypoints ``DataArray[T, K, C]`` with dims ``(time, keypoint, coord)``.
        layout: ``"auto"`` (``"mesh10"`` for face meshes, no layout otherwise), ``None`` or
            ``"none"`` (no layout: a mesh trains on all of its points), a layout name
            (``"mesh"``, ``"mesh68"``, ``"mesh10"``, ``"pca:N"``) or a :class:`Layout`.
        coords: The coordinates to keep, among the files' (x, y, z).

    Returns:
        The sequences ``DataArray[T, K', C']``, and the fitted layout (None without one):
        set it as ``model.layout`` so that the checkpoint carries it.

    Raises:
        ValueError: No sequences, missing coordinates, a mix of meshes and other keypoints,
            or a layout asked for keypoints that are not a face mesh.

    Example:
        >>> import numpy as np, xarray as xr
        >>> pose = xr.DataArray(np.zeros((9, 33, 3)), dims=("time", "keypoint", "coord"),
        ...                     coords={"coord": ["x", "y", "z"]})
        >>> [cut], layout = training_keypoints([pose])
        >>> dict(cut.sizes), layout
        ({'time': 9, 'keypoint': 33, 'coord': 2}, None)
    """
    if len(sequences) == 0:
        raise ValueError("no keypoint sequences given")
    chosen = [str(c) for c in coords]
    cut = []
    for index, sequence in enumerate(sequences):
        keypoints = _labelled(sequence)
        labels = [str(c) for c in keypoints.coord.values]
        missing = [c for c in chosen if c not in labels]
        if not chosen or missing:
            raise ValueError(f"sequence {index} has coords {labels}; cannot keep {chosen}")
        cut.append(keypoints.sel(coord=chosen))
    meshes = [is_face_mesh(keypoints) for keypoints in cut]
    if any(meshes) and not all(meshes):
        odd = describe_keypoints(cut[meshes.index(not meshes[0])])
        raise ValueError(f"cannot train on face meshes and {odd} together")
    if isinstance(layout, str) and layout in ("auto", "none"):
        layout = "mesh10" if layout == "auto" and meshes[0] else None
    if layout is None:
        return cut, None
    fitted = get_layout(layout)
    if not meshes[0]:
        raise ValueError(
            f"layout {fitted.name!r} reduces face meshes; got {describe_keypoints(cut[0])} "
            "(train without a layout: --layout none)"
        )
    faces = [k.isel(keypoint=slice(0, FACE_MESH_POINTS)) for k in cut]
    if not (isinstance(layout, Layout) and layout.is_fitted):
        fitted.fit(np.concatenate([face.values for face in faces]))
    return [reduce_keypoints(fitted, face) for face in faces], fitted


def _mesh_coords(layout: Layout, features: int) -> int:
    """How many coordinates per mesh point the layout was fitted on (``C`` of the mesh)."""
    shape = layout.state_dict().get("mesh_shape")
    return int(shape[1]) if shape is not None else features // layout.num_keypoints


def _model_name(model: SequenceFlow) -> str:
    if model.layout is None:
        return f"a model of {model.features} features without a layout"
    return f"a model trained on {model.layout.name} ({model.features} features)"


def model_keypoints(model: SequenceFlow, keypoints: xr.DataArray) -> xr.DataArray:
    """The keypoints a model reads, ``DataArray[T, K, C]``: meshes reduced through its layout.

    A model with a layout reads face meshes (their first ``C`` coordinates, reduced) and
    keypoints already in its layout; a model without one reads keypoints whose count times
    the first ``C`` coordinates makes its features. ``data.to_array`` of the result gives the
    model's frames ``Array[T, D]``.

    Args:
        model: The model.
        keypoints: ``DataArray[T, K, C]`` with dims ``(time, keypoint, coord)``, e.g. what
            :func:`snfseq.landmarks.extract` returned.

    Returns:
        ``DataArray[T, K', C']`` with ``K' * C' = model.features``, the time coordinates kept
        (frame numbers 0, 1, ... as ``time``, and x, y, z as ``coord``, where the input had no
        labels).

    Raises:
        ValueError: The keypoints do not fit the model, e.g. "a model trained on mesh10
            (20 features) cannot read 33 pose keypoints x 3 coords".

    Example:
        >>> import numpy as np, xarray as xr
        >>> from snfseq import SequenceFlow
        >>> model = SequenceFlow(features=20, hidden=8, layers=1, transforms=2)
        >>> pose = xr.DataArray(np.zeros((4, 33, 3)), dims=("time", "keypoint", "coord"))
        >>> model_keypoints(model, pose)
        Traceback (most recent call last):
        ...
        ValueError: a model of 20 features without a layout cannot read 33 keypoints x 3 coords
    """
    keypoints = _labelled(keypoints)
    features, layout = model.features, model.layout
    count, coords = keypoints.sizes["keypoint"], keypoints.sizes["coord"]
    mesh = is_face_mesh(keypoints)
    if layout is not None:
        per_point = _mesh_coords(layout, features)
        if mesh and coords >= per_point:
            face = keypoints.isel(keypoint=slice(0, FACE_MESH_POINTS))
            return reduce_keypoints(layout, _first_coords(face, per_point))
        if count == layout.num_keypoints and coords >= features // count:
            return _first_coords(keypoints, features // count)
        reads = f"it reads face meshes and its {layout.num_keypoints} {layout.name} keypoints"
        raise ValueError(
            f"{_model_name(model)} cannot read {describe_keypoints(keypoints)}; {reads}"
        )
    if mesh and features % FACE_MESH_POINTS == 0 and features // FACE_MESH_POINTS <= coords:
        keypoints, count = keypoints.isel(keypoint=slice(0, FACE_MESH_POINTS)), FACE_MESH_POINTS
    if features % count == 0 and features // count <= coords:
        return _first_coords(keypoints, features // count)
    hint = "; train it with a layout (snfseq train --layout) to read meshes" if mesh else ""
    raise ValueError(f"{_model_name(model)} cannot read {describe_keypoints(keypoints)}{hint}")


def to_mesh(model: SequenceFlow, frames: ArrayLike | xr.DataArray) -> NDArray[np.floating]:
    """Face-mesh points ``Array[..., 468, C]`` of a model's frames, for rendering.

    Through the model's layout, or as they are for a model trained on the mesh itself.

    Args:
        model: The model.
        frames: ``Array[..., D]`` (the model's features), ``Array[..., K, C]``, or a
            DataArray whose last dims are ``(keypoint, coord)``, e.g. a forecast.

    Raises:
        ValueError: The model's keypoints are not a face mesh and it has no layout.

    Example:
        >>> import numpy as np
        >>> from snfseq import SequenceFlow
        >>> model = SequenceFlow(features=936, hidden=8, layers=1, transforms=2)
        >>> to_mesh(model, np.zeros((3, 936))).shape
        (3, 468, 2)
    """
    if isinstance(frames, xr.DataArray):
        frames = frames.transpose(..., "keypoint", "coord").values
    array = np.asarray(frames)
    if array.shape[-1] != model.features:
        array = array.reshape(*array.shape[:-2], -1)
    if array.shape[-1] != model.features:
        raise ValueError(
            f"frames of shape {np.shape(frames)} do not hold {model.features} features"
        )
    if model.layout is not None:
        return model.to_mesh(array)
    if model.features % FACE_MESH_POINTS:
        raise ValueError(f"{_model_name(model)} cannot be rendered: its keypoints are no face mesh")
    return array.reshape(*array.shape[:-1], FACE_MESH_POINTS, -1)
