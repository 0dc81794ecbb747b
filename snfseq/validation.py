"""Checks of user input that fail early with one line naming the problem.

Example:
    >>> import torch
    >>> as_windows(torch.zeros(5, 3), "context", features=3, min_frames=2).shape
    torch.Size([1, 5, 3])
    >>> as_windows(torch.zeros(5, 4), "context", features=3, min_frames=2)
    Traceback (most recent call last):
    ...
    ValueError: context has 4 features but the model was built for 3
"""

from __future__ import annotations

__all__ = ["as_windows", "is_count"]

import numpy as np
import torch
from torch import Tensor


def as_windows(x: Tensor | np.ndarray, name: str, features: int, min_frames: int) -> Tensor:
    """``x`` as a float32 ``Tensor[B, T, D]`` of finite values (a ``[T, D]`` input is one series).

    Args:
        x: The frames, ``Tensor[B, T, D]`` or ``[T, D]`` (tensor or array).
        name: What ``x`` is, for the error messages.
        features: The ``D`` the model was built for.
        min_frames: Fewest frames ``T`` accepted.

    Raises:
        TypeError: For anything but real numbers (strings, objects, complex, bool).
        ValueError: For a wrong shape, too few frames, no series, or NaN/inf (naming where).

    Example:
        >>> import numpy as np
        >>> as_windows(np.zeros((2, 6, 3)), "windows", features=3, min_frames=4).dtype
        torch.float32
        >>> as_windows(torch.tensor([[0.0, float("nan")]]), "context", features=2, min_frames=1)
        Traceback (most recent call last):
        ...
        ValueError: context contains NaN or inf (first at series 0, frame 0, feature 1); ...
        >>> as_windows(np.array([["a", "b"]]), "context", features=2, min_frames=1)
        Traceback (most recent call last):
        ...
        TypeError: context must be a tensor or array of numbers, got ndarray of dtype <U1
    """
    try:
        tensor = torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(
            f"{name} must be a tensor or array of numbers, got {_described(x)}"
        ) from None
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {tensor.dtype}")
    tensor = tensor.to(torch.float32)
    if tensor.dim() == 2:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 3:
        raise ValueError(
            f"{name} must be Tensor[B, T, D] (or [T, D]), got shape {tuple(tensor.shape)}"
        )
    if tensor.shape[-1] != features:
        raise ValueError(
            f"{name} has {tensor.shape[-1]} features but the model was built for {features}"
        )
    if tensor.shape[0] == 0:
        raise ValueError(f"{name} is empty (no series)")
    if tensor.shape[1] < min_frames:
        raise ValueError(f"{name} has {tensor.shape[1]} frames; at least {min_frames} are needed")
    bad = ~torch.isfinite(tensor)
    if bool(bad.any()):
        series, frame, feature = (int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"{name} contains NaN or inf (first at series {series}, frame {frame}, "
            f"feature {feature}); fill or drop missing frames first"
        )
    return tensor


def is_count(value: object) -> bool:
    """Whether ``value`` is a whole number >= 1, as a length or a count must be.

    Example:
        >>> is_count(3), is_count(3.0), is_count(2.5), is_count(float("nan")), is_count("3")
        (True, True, False, False, False)
    """
    try:
        return bool(float(value).is_integer() and value >= 1)  # type: ignore[arg-type,operator]
    except (TypeError, ValueError, OverflowError):
        return False


def _described(x: object) -> str:
    """What ``x`` is, for an error message: its type, and its dtype when it has one."""
    dtype = getattr(x, "dtype", None)
    return type(x).__name__ + ("" if dtype is None else f" of dtype {dtype}")
