"""Reading and writing keypoint sequences: ``.npz``, ``.npy``, netCDF (``.nc``) and zarr.

Every reader returns ``DataArray[T, K, C]`` (float32) with dims ``(time, keypoint, coord)``,
whatever the file held, and every writer writes atomically (a failed write leaves the old file).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike

from .cache import atomic_write

__all__ = ["KEYPOINT_DIMS", "SUFFIXES", "as_keypoints", "load_keypoints", "save_keypoints"]

KEYPOINT_DIMS = ("time", "keypoint", "coord")
"""Dimension names of a keypoint sequence, in order."""
SUFFIXES = (".npz", ".npy", ".nc", ".zarr")
"""File suffixes :func:`load_keypoints` and :func:`save_keypoints` understand."""

_VALUES_KEY = "keypoints"
_META_KEY = "__meta__"
_COORD_PREFIX = "coord:"
# The first bytes of each file format: a zip archive, a NumPy array, classic or HDF5 netCDF.
# Without them numpy would take a stray file for a pickle and say so.
_MAGIC = {".npz": (b"PK",), ".npy": (b"\x93NUMPY",), ".nc": (b"CDF", b"\x89HDF")}


def as_keypoints(keypoints: xr.DataArray | ArrayLike) -> xr.DataArray:
    """Checks and converts keypoints to ``DataArray[T, K, C]`` (float32).

    A DataArray must have exactly the dims ``(time, keypoint, coord)``, in any order; a plain
    array must be 3-D and gets integer ``time`` and ``keypoint`` labels and ``coord`` labels
    ``x, y, z`` (for up to three coordinates).

    Example:
        >>> import numpy as np
        >>> as_keypoints(np.zeros((4, 10, 2))).coord.values.tolist()
        ['x', 'y']
    """
    if isinstance(keypoints, xr.DataArray):
        if set(keypoints.dims) != set(KEYPOINT_DIMS) or keypoints.ndim != 3:
            raise ValueError(
                f"keypoints must have dims {KEYPOINT_DIMS}, got {keypoints.dims}; "
                "rename them with DataArray.rename"
            )
        result = keypoints.transpose(*KEYPOINT_DIMS)
    else:
        values = np.asarray(keypoints)
        if values.ndim != 3:
            raise ValueError(
                f"keypoints must be a 3-D array [time, keypoint, coord], got shape {values.shape}"
            )
        count = values.shape[2]
        labels: Any = ["x", "y", "z"][:count] if count <= 3 else np.arange(count)
        result = xr.DataArray(
            values,
            dims=KEYPOINT_DIMS,
            coords={
                "time": np.arange(values.shape[0]),
                "keypoint": np.arange(values.shape[1]),
                "coord": labels,
            },
        )
    if not (np.issubdtype(result.dtype, np.integer) or np.issubdtype(result.dtype, np.floating)):
        raise ValueError(f"keypoints must be real numbers, got dtype {result.dtype}")
    result = result.astype(np.float32)
    result.name = result.name or _VALUES_KEY
    return result


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"unknown keypoint file type {path.suffix!r} for {path}; expected one of {SUFFIXES}"
        )
    return suffix


def _require_zarr() -> None:
    if importlib.util.find_spec("zarr") is None:
        raise ImportError("zarr keypoint files need the zarr package: pip install snfseq[data]")


def _write_npz(keypoints: xr.DataArray, path: Path) -> None:
    arrays: dict[str, Any] = {_VALUES_KEY: keypoints.values}
    dims = {}
    for name, coord in keypoints.coords.items():
        arrays[f"{_COORD_PREFIX}{name}"] = coord.values
        dims[str(name)] = list(coord.dims)
    meta = {"name": keypoints.name, "attrs": keypoints.attrs, "coords": dims}
    try:
        arrays[_META_KEY] = np.array(json.dumps(meta, default=_json_scalar))
    except TypeError as error:
        raise ValueError(f"attributes of the keypoints cannot be saved to .npz: {error}") from error
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _read_npz(path: Path) -> xr.DataArray:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    if _VALUES_KEY in arrays:
        values = arrays[_VALUES_KEY]
    else:
        plain = [key for key in arrays if key != _META_KEY and not key.startswith(_COORD_PREFIX)]
        if len(plain) != 1:
            raise ValueError(
                f"it holds arrays {sorted(plain)}; expected one named {_VALUES_KEY!r} "
                "or a single array"
            )
        values = arrays[plain[0]]
    if _META_KEY not in arrays:
        return as_keypoints(values)
    meta = json.loads(str(arrays[_META_KEY]))
    coords = {
        name: (tuple(dims), arrays[f"{_COORD_PREFIX}{name}"])
        for name, dims in meta["coords"].items()
    }
    stored = xr.DataArray(
        values, dims=KEYPOINT_DIMS, coords=coords, name=meta["name"], attrs=meta["attrs"]
    )
    return as_keypoints(stored)


def _pick_variable(dataset: xr.Dataset) -> xr.DataArray:
    names = list(dataset.data_vars)
    if _VALUES_KEY in names:
        return dataset[_VALUES_KEY]
    if len(names) == 1:
        return dataset[names[0]]
    raise ValueError(
        f"it holds variables {names}; expected one named {_VALUES_KEY!r} or a single one"
    )


def load_keypoints(path: str | os.PathLike[str]) -> xr.DataArray:
    """Loads a keypoint sequence from ``.npz``, ``.npy``, netCDF (``.nc``) or zarr (``.zarr``).

    ``.npz`` files hold the array under ``keypoints`` (or as their only array), shape
    ``(T, K, C)``; netCDF and zarr files hold a variable with dims ``(time, keypoint, coord)``
    (named ``keypoints``, or the only variable). The data are loaded into memory.

    Args:
        path: The file (a directory for zarr).

    Returns:
        ``DataArray[T, K, C]`` (float32) with dims ``(time, keypoint, coord)``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: Unknown suffix, or a file that cannot be read (corrupt, truncated, of
            another format) or does not hold one 3-D array of real numbers; the message
            names the file.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     np.savez(f"{tmp}/clip.npz", keypoints=np.zeros((30, 10, 2)))
        ...     loaded = load_keypoints(f"{tmp}/clip.npz")
        >>> loaded.dims, loaded.shape
        (('time', 'keypoint', 'coord'), (30, 10, 2))
    """
    file = Path(path)
    suffix = _suffix(file)
    if not file.exists():
        raise FileNotFoundError(f"keypoint file not found: {file}")
    if suffix == ".zarr":
        _require_zarr()
    elif file.is_dir():
        raise ValueError(f"cannot read keypoints from {file}: it is a directory")
    try:
        return _read(file, suffix)
    except (ImportError, MemoryError):
        raise
    except Exception as error:
        # numpy, zipfile, netCDF and zarr each fail on a damaged file in their own way; the
        # user needs to know which file, and why, on one line.
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise ValueError(f"cannot read keypoints from {file}: {reason}") from error


def _read(file: Path, suffix: str) -> xr.DataArray:
    if suffix in _MAGIC:
        with open(file, "rb") as handle:
            head = handle.read(8)
        if not head:
            raise ValueError("the file is empty")
        if not head.startswith(_MAGIC[suffix]):
            raise ValueError(f"it is not a {suffix} file (its first bytes are {head[:4]!r})")
    if suffix == ".npz":
        return _read_npz(file)
    if suffix == ".npy":
        return as_keypoints(np.load(file, allow_pickle=False))
    engine = "zarr" if suffix == ".zarr" else None
    with xr.open_dataset(file, engine=engine) as dataset:
        return as_keypoints(_pick_variable(dataset).load())


def save_keypoints(keypoints: xr.DataArray | ArrayLike, path: str | os.PathLike[str]) -> Path:
    """Saves a keypoint sequence atomically; the suffix of ``path`` picks the format.

    Coordinates and attributes are kept in every format but ``.npy``. zarr stores are
    written in zarr format 2, which every zarr reader understands.

    Args:
        keypoints: ``DataArray[T, K, C]`` with dims ``(time, keypoint, coord)``, or a 3-D array.
        path: Target ending in ``.npz``, ``.npy``, ``.nc`` or ``.zarr``.

    Returns:
        The path written.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     saved = save_keypoints(np.ones((5, 3, 2)), f"{tmp}/clip.nc")
        ...     float(load_keypoints(saved).sum())
        30.0
    """
    file = Path(path)
    suffix = _suffix(file)
    data = as_keypoints(keypoints)
    if suffix == ".zarr":
        _require_zarr()
    with atomic_write(file) as partial:
        if suffix == ".npz":
            _write_npz(data, partial)
        elif suffix == ".npy":
            with open(partial, "wb") as handle:
                np.save(handle, data.values)
        else:
            try:
                if suffix == ".nc":
                    data.to_netcdf(partial)
                else:
                    data.to_dataset(name=_VALUES_KEY).to_zarr(partial, mode="w", zarr_format=2)
            except TypeError as error:  # xarray's word for an attribute the format cannot hold
                raise ValueError(
                    f"attributes of the keypoints cannot be saved to {suffix}: {error}"
                ) from error
    return file
