"""Checkpoint files: a versioned payload of configuration and tensors, written atomically and
read with ``torch.load(weights_only=True)``.

Example:
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = write(Path(tmp) / "m.pt", "demo.Model", {"width": 3}, {"w": torch.ones(3)})
    ...     config, state = read(path, "demo.Model")
    >>> config, state["w"]
    ({'width': 3}, tensor([1., 1., 1.]))
"""

from __future__ import annotations

__all__ = ["FORMAT_VERSION", "load_state", "read", "read_all", "write"]

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from snfseq.files import atomic_write
from snfseq.version import __version__

#: Version of the payload layout; a reader refuses files from a newer layout.
FORMAT_VERSION = 1


def write(
    path: str | os.PathLike[str],
    kind: str,
    config: Mapping[str, Any],
    state_dict: Mapping[str, Tensor],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Writes a checkpoint atomically: an interrupted save never leaves a half-written file
    (or destroys the previous one).

    Args:
        path: Where to write; missing parent folders are created.
        kind: What the file holds (e.g. ``"snfseq.SequenceFlow"``); :func:`read` checks it.
        config: Plain values (numbers, strings, lists) that rebuild the object.
        state_dict: Its tensors (moved to the CPU).
        extra: Anything else the object carries, as nested dicts of plain values and tensors
            (:func:`read_all` returns it).

    Returns:
        The path written.

    Example:
        >>> import tempfile, torch
        >>> from pathlib import Path
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = write(Path(tmp) / "new" / "m.pt", "demo.Model", {}, {"w": torch.ones(2)})
        ...     path.name, path.is_file()
        ('m.pt', True)
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a file where a folder should be
        blocking = next((folder for folder in path.parents if folder.is_file()), path.parent)
        raise NotADirectoryError(
            f"{blocking} is a file, not a directory (writing {path})"
        ) from None
    payload = {
        "format": kind,
        "format_version": FORMAT_VERSION,
        "snfseq_version": __version__,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "extra": dict(extra or {}),
    }
    with atomic_write(path) as partial, open(partial, "wb") as file:
        torch.save(payload, file)
        file.flush()
        os.fsync(file.fileno())
    return path


def read(
    path: str | os.PathLike[str], kind: str, map_location: str | torch.device | None = None
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """``(config, state_dict)`` of a checkpoint: :func:`read_all` without the extras.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     read(write(Path(tmp) / "m.pt", "demo.Model", {"a": 1}, {}), "demo.Model")
        ({'a': 1}, {})
    """
    config, state, _ = read_all(path, kind, map_location)
    return config, state


def read_all(
    path: str | os.PathLike[str], kind: str, map_location: str | torch.device | None = None
) -> tuple[dict[str, Any], dict[str, Tensor], dict[str, Any]]:
    """Reads a checkpoint written by :func:`write` with ``torch.load(weights_only=True)``.

    Args:
        path: The file.
        kind: What the file must hold.
        map_location: Device for the tensors (default: CPU).

    Returns:
        ``(config, state_dict, extra)`` (``extra`` empty for files written without one).

    Raises:
        FileNotFoundError: When there is no file.
        ValueError: For an empty, corrupt, truncated, foreign or newer file, or one whose
            weights hold NaN or infinite values, with a message naming it.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = write(Path(tmp) / "m.pt", "demo.Model", {"hidden": (8, 8)}, {})
        ...     loaded = read_all(path, "demo.Model")
        ...     read_all(path, "other.Model")
        Traceback (most recent call last):
        ...
        ValueError: ...m.pt is not a checkpoint of other.Model
        >>> loaded  # tuples in the config come back as lists
        ({'hidden': [8, 8]}, {}, {})
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is not a readable snfseq checkpoint: the file is empty")
    try:
        payload = torch.load(path, map_location=map_location or "cpu", weights_only=True)
    except Exception as error:
        reason = (str(error).strip().splitlines() or [""])[0][:200]
        if isinstance(error, pickle.UnpicklingError):  # torch says it in a paragraph
            reason = "neither a torch zip archive nor tensors alone"
        raise ValueError(
            f"{path} is not a readable snfseq checkpoint (corrupt, truncated or foreign "
            f"file): {type(error).__name__}: {reason}"
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != kind:
        raise ValueError(f"{path} is not a checkpoint of {kind}")
    version = payload.get("format_version", 0)
    if not isinstance(version, int):
        raise ValueError(f"{path} has a format_version of {version!r}, not an integer")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written by a newer snfseq ({payload.get('snfseq_version')}); "
            f"upgrade snfseq to read it"
        )
    return _contents(payload, path)


def _contents(
    payload: dict[str, Any], path: Path
) -> tuple[dict[str, Any], dict[str, Tensor], dict[str, Any]]:
    """``(config, state_dict, extra)`` of a payload, checked to be what :func:`write` writes:
    a damaged or hand-edited file fails here, naming itself, not later in a constructor."""
    parts: dict[str, dict[str, Any]] = {}
    for name, default in (("config", None), ("state_dict", None), ("extra", {})):
        part = payload.get(name, default)
        if not isinstance(part, dict):
            raise ValueError(f"{path} is damaged: its {name} is {type(part).__name__}, not a dict")
        parts[name] = part
    state = parts["state_dict"]
    for key, value in state.items():
        if not isinstance(value, Tensor):
            raise ValueError(f"{path} is damaged: state {key!r} is {type(value).__name__}")
        # Training that diverged saves NaN weights; they would only give NaN forecasts.
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(
                f"{path} holds NaN or infinite values in {key!r} (did its training diverge?)"
            )
    return dict(parts["config"]), dict(state), dict(parts["extra"])


def load_state(
    module: nn.Module, state: Mapping[str, Tensor], path: str | os.PathLike[str]
) -> None:
    """Loads ``state`` into ``module`` after checking that every tensor matches in name and
    shape; the error names the file and the first mismatches.

    Args:
        module: The freshly built module.
        state: The tensors read from the file.
        path: The file, for the error message.

    Example:
        >>> import torch
        >>> net = torch.nn.Linear(2, 1)
        >>> load_state(net, {"weight": torch.ones(1, 2), "bias": torch.zeros(1)}, "m.pt")
        >>> net.weight.tolist()
        [[1.0, 1.0]]
        >>> load_state(net, {"weight": torch.ones(1, 3)}, "m.pt")
        Traceback (most recent call last):
        ...
        ValueError: m.pt does not match its own config (...; missing ['bias'])
    """
    mine = module.state_dict()
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in mine.items()
        if k in state and state[k].shape != v.shape
    ]
    missing, unexpected = sorted(set(mine) - set(state)), sorted(set(state) - set(mine))
    if mismatched or missing or unexpected:
        details = "; ".join(
            mismatched[:3]
            + ([f"missing {missing[:3]}"] if missing else [])
            + ([f"unexpected {unexpected[:3]}"] if unexpected else [])
        )
        raise ValueError(f"{path} does not match its own config ({details})")
    module.load_state_dict(state)
