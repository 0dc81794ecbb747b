"""Atomic file writes: a file (or directory) appears complete or not at all.

Example:
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     target = Path(tmp) / "values.txt"
    ...     with atomic_write(target) as partial:
    ...         _ = partial.write_text("done")
    ...     target.read_text()
    'done'
"""

from __future__ import annotations

__all__ = ["atomic_write", "json_ready"]

import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yields a temporary path beside ``path`` that replaces ``path`` when the block succeeds.

    Readers never see a half-written file, and a failed write leaves the old file untouched.
    The temporary path may become a file or a directory (e.g. a zarr store); a directory
    replaces an existing one by moving the old one aside first (and back, if the move fails).

    Raises:
        FileNotFoundError: The folder of ``path`` does not exist, or the block wrote nothing.
        NotADirectoryError: The folder of ``path`` is a file.
        IsADirectoryError: ``path`` is a directory and the block wrote a file.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     target = Path(tmp) / "values.txt"
        ...     with atomic_write(target) as partial:
        ...         _ = partial.write_text("done")
        ...     target.read_text()
        'done'
    """
    target = Path(path)
    if not target.parent.is_dir():
        if target.parent.exists():
            raise NotADirectoryError(
                f"{target.parent} is a file, not a directory (writing {target.name})"
            )
        raise FileNotFoundError(f"directory not found: {target.parent} (writing {target.name})")
    descriptor, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(descriptor)
    partial = Path(name)
    partial.unlink()  # writers that create directories need the name free
    try:
        yield partial
        if not partial.exists():
            raise FileNotFoundError(f"nothing was written to {partial} for {target}")
        if target.is_dir() and not partial.is_dir():
            raise IsADirectoryError(f"{target} is a directory; a file cannot replace it")
        if partial.is_dir() and target.exists():
            aside = target.with_name(f".{target.name}.{partial.name}.old")
            os.replace(target, aside)
            try:
                os.replace(partial, target)
            except BaseException:
                os.replace(aside, target)  # the old directory goes back where it was
                raise
            _remove(aside)
        else:
            os.replace(partial, target)
    finally:
        _remove(partial)


def json_ready(value: Any) -> Any:
    """``value`` as JSON can hold it: numpy scalars and arrays to Python numbers and lists,
    NaN and infinities to None, dict keys to strings, recursively.

    Example:
        >>> import numpy as np
        >>> json_ready({1: np.float32(0.5), "b": [np.nan, np.int64(3)], "c": np.arange(2)})
        {'1': 0.5, 'b': [None, 3], 'c': [0, 1]}
    """
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
