"""The on-disk cache of derived datasets.

Derived data (landmarks extracted from a bundled video, joint positions from motion capture)
is computed once and kept as ``.npz`` files under :func:`cache_dir`. A cache file records a
fingerprint of what it was built from; a missing, corrupt or stale file is rebuilt.
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from snfseq.files import atomic_write

__all__ = ["atomic_write", "cache_dir", "cached_arrays"]

_FINGERPRINT_KEY = "__fingerprint__"


def cache_dir() -> Path:
    """Returns the cache directory, creating it if needed.

    It is ``$SNFSEQ_CACHE_DIR`` when that is set, else ``~/.cache/snfseq``.

    Example:
        >>> import os, tempfile
        >>> from unittest import mock
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     with mock.patch.dict(os.environ, {"SNFSEQ_CACHE_DIR": tmp}):
        ...         cache_dir() == Path(tmp)
        True
    """
    configured = os.environ.get("SNFSEQ_CACHE_DIR")
    path = Path(configured).expanduser() if configured else Path.home() / ".cache" / "snfseq"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _read(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def cached_arrays(
    name: str,
    build: Callable[[], Mapping[str, np.ndarray]],
    *,
    fingerprint: Mapping[str, str | int | float],
    refresh: bool = False,
) -> dict[str, np.ndarray]:
    """Loads the arrays cached as ``<cache_dir>/<name>.npz``, building and saving them if needed.

    Args:
        name: File name of the cache entry, without suffix.
        build: Computes the arrays when the cache cannot be used.
        fingerprint: What the arrays are derived from (source file, size, format version); an
            entry with a different fingerprint is rebuilt.
        refresh: Rebuild even when the cached entry is valid.

    Returns:
        The arrays by name.

    Example:
        >>> import os, tempfile
        >>> from unittest import mock
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     with mock.patch.dict(os.environ, {"SNFSEQ_CACHE_DIR": tmp}):
        ...         first = cached_arrays("demo", lambda: {"x": np.arange(3)}, fingerprint={"v": 1})
        ...         again = cached_arrays("demo", lambda: {"x": np.zeros(3)}, fingerprint={"v": 1})
        >>> again["x"]
        array([0, 1, 2])
    """
    path = cache_dir() / f"{name}.npz"
    expected = json.dumps(dict(fingerprint), sort_keys=True)
    if path.exists() and not refresh:
        try:
            arrays = _read(path)
            stored = str(arrays.pop(_FINGERPRINT_KEY))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            warnings.warn(f"cache file {path} is unreadable ({error}); rebuilding it", stacklevel=2)
        else:
            if stored == expected:
                return arrays
    arrays = {key: np.asarray(value) for key, value in build().items()}
    if _FINGERPRINT_KEY in arrays:
        raise ValueError(f"{_FINGERPRINT_KEY!r} is reserved in cache entries")
    payload: dict[str, Any] = {**arrays, _FINGERPRINT_KEY: np.array(expected)}
    with atomic_write(path) as partial, open(partial, "wb") as handle:
        np.savez(handle, **payload)
    return arrays
