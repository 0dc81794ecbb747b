"""Argument checks, dtype rules, event reduction and importance weights of the metrics.

Private to :mod:`snfseq.metrics`: every metric validates ``samples``/``obs`` here, computes
in ``_compute_dtype`` (at least float32), returns ``_output_dtype`` and turns
``weights``/``log_weights`` into self-normalised weights ``Tensor[S, *B]`` with
``_sample_weights`` (log-weights through :func:`snfseq.weights.normalize`).
"""

from __future__ import annotations

__all__ = [
    "Reduce",
    "_check_levels",
    "_check_obs",
    "_check_reduce",
    "_check_samples",
    "_check_tensor",
    "_compute_dtype",
    "_fair_denominator",
    "_output_dtype",
    "_reduce_event",
    "_sample_weights",
]

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from snfseq.weights import normalize

Reduce = Literal["sum", "mean"] | None


def _check_tensor(name: str, value: object) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"{name} must be a real-valued tensor, got dtype {value.dtype}")
    # A sum is one cheap pass and is finite whenever every entry is (barring overflow).
    if value.numel() and not bool(torch.isfinite(value.sum())):
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name} contains NaN or infinite values")
    return value


def _compute_dtype(*tensors: Tensor) -> torch.dtype:
    dtype = torch.float32
    for tensor in tensors:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype


def _output_dtype(*tensors: Tensor) -> torch.dtype:
    dtype = tensors[0].dtype
    for tensor in tensors[1:]:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype if dtype.is_floating_point else torch.get_default_dtype()


def _check_samples(samples: object, event_dims: int, min_samples: int = 1) -> Tensor:
    samples = _check_tensor("samples", samples)
    if event_dims < 0:
        raise ValueError(f"event_dims must be non-negative, got {event_dims}")
    if samples.ndim < 1 + event_dims:
        raise ValueError(
            f"samples must have a sample axis and {event_dims} event dims, "
            f"got shape {tuple(samples.shape)}"
        )
    if samples.shape[0] < min_samples:
        raise ValueError(
            f"this estimator needs at least {min_samples} samples, got S={samples.shape[0]}"
        )
    return samples


def _check_obs(obs: object, samples: Tensor) -> Tensor:
    obs = _check_tensor("obs", obs)
    if obs.shape != samples.shape[1:]:
        raise ValueError(
            f"obs must have shape samples.shape[1:] = {tuple(samples.shape[1:])}, "
            f"got {tuple(obs.shape)}"
        )
    if obs.device != samples.device:
        raise ValueError(f"obs is on {obs.device} but samples are on {samples.device}")
    return obs


def _check_levels(name: str, levels: object) -> Tensor:
    try:
        out = torch.as_tensor(levels, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a float or a sequence of floats, got {levels!r}") from None
    if out.ndim > 1 or out.numel() == 0:
        raise ValueError(f"{name} must be a scalar or a non-empty 1-D sequence, got {levels!r}")
    if bool(((out < 0) | (out > 1) | out.isnan()).any()):
        raise ValueError(f"{name} must lie in [0, 1], got {levels!r}")
    return out


def _check_reduce(reduce: Reduce) -> None:
    if reduce not in ("sum", "mean", None):
        raise ValueError(f"reduce must be 'sum', 'mean' or None, got {reduce!r}")


def _reduce_event(values: Tensor, reduce: Reduce, event_dims: int) -> Tensor:
    if reduce is None or event_dims == 0:
        return values
    dims = tuple(range(-event_dims, 0))
    return values.sum(dims) if reduce == "sum" else values.mean(dims)


def _sample_weights(
    weights: Tensor | None,
    log_weights: Tensor | None,
    shape: Sequence[int],
    device: torch.device,
    dtype: torch.dtype,
) -> Tensor:
    """Self-normalised weights of shape ``[S, *B]``, uniform when none are given."""
    shape = tuple(shape)
    if weights is None and log_weights is None:
        return torch.full(shape, 1.0 / shape[0], device=device, dtype=dtype)
    log_total: Tensor | None = None
    total: Tensor | None = None
    for name, value in (("weights", weights), ("log_weights", log_weights)):
        if value is None:
            continue
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if value.device != device:
            raise ValueError(f"{name} is on {value.device} but samples are on {device}")
        if value.ndim > len(shape) or value.ndim == 0 or value.shape[0] != shape[0]:
            raise ValueError(
                f"{name} must have shape [S, *B] = {list(shape)} (or broadcast to it), "
                f"got {list(value.shape)}"
            )
        value = value.to(dtype).reshape(value.shape + (1,) * (len(shape) - value.ndim))
        try:
            value = value.expand(shape)
        except RuntimeError:
            raise ValueError(
                f"{name} of shape {list(value.shape)} does not broadcast to [S, *B] = {list(shape)}"
            ) from None
        if name == "weights":
            if not bool(torch.isfinite(value).all()) or bool((value < 0).any()):
                raise ValueError("weights must be finite and non-negative")
            total = value
        else:
            if bool(torch.isnan(value).any()) or bool((value == float("inf")).any()):
                raise ValueError("log_weights must not contain NaN or +inf")
            log_total = value
    if log_total is None:
        assert total is not None
        norm = total.sum(0)
        if bool((norm <= 0).any()):
            raise ValueError("weights sum to zero over the samples of some series")
        return total / norm
    if total is not None:
        log_total = log_total + total.log()
    if bool((log_total == float("-inf")).all(0).any()):
        raise ValueError("all weights are zero for some series")
    return normalize(log_total)


def _fair_denominator(w: Tensor) -> Tensor:
    """``1 - sum(w**2)`` over dim 0: the pair mass of distinct samples under weights ``w``."""
    # sum_i w_i (1 - w_i) rather than 1 - sum_i w_i**2: exact subtraction for a dominant w_i.
    denom = (w * (1.0 - w)).sum(0)
    if bool((denom <= 4 * torch.finfo(w.dtype).eps).any()):
        raise ValueError(
            "fair/unbiased estimators need at least two samples with positive weight per series"
        )
    return denom
