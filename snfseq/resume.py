"""Resumable training: everything a killed run needs to continue to the same result.

A training checkpoint holds the weights, the optimizer's and the schedule's states, every
rank's random states, the data position (the shuffled order, the position in it, the epoch
and step), the history so far and the early-stopping state. It is written atomically by rank
0 (:mod:`snfseq.checkpoint`: ``torch.load(weights_only=True)`` reads it back), so a kill
during a write leaves the previous checkpoint whole, and a killed run loses at most the
work since the last one.

Example:
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> net = torch.nn.Linear(2, 1)
    >>> state = {"epoch": 3, "order": torch.arange(4), "history": {"train_loss": [1.0]}}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save(Path(tmp) / "run.pt", net, state)
    ...     weights, loaded = load(path)
    >>> loaded["epoch"], loaded["order"].tolist(), sorted(weights)
    (3, [0, 1, 2, 3], ['bias', 'weight'])
"""

from __future__ import annotations

__all__ = ["KIND", "load", "random_states", "restore_random_states", "save"]

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from snfseq import checkpoint

#: What :func:`snfseq.checkpoint.read_all` checks a training checkpoint holds.
KIND = "snfseq.training"


def save(path: str | os.PathLike[str], module: nn.Module, state: dict[str, Any]) -> Path:
    """Writes the weights of ``module`` and the loop's ``state`` (plain values and tensors)."""
    return checkpoint.write(path, KIND, {}, module.state_dict(), extra=state)


def load(path: str | os.PathLike[str]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """``(weights, state)`` of a training checkpoint (on the CPU)."""
    _, weights, state = checkpoint.read_all(path, KIND)
    return weights, state


def random_states(generator: torch.Generator | None) -> dict[str, Any]:
    """This process's random states: torch's CPU and CUDA streams and the shuffling
    generator's."""
    states: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        states["generator"] = generator.get_state()
    return states


def restore_random_states(states: dict[str, Any], generator: torch.Generator | None) -> None:
    """Puts back what :func:`random_states` took."""
    torch.set_rng_state(states["cpu"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if generator is not None and "generator" in states:
        generator.set_state(states["generator"])
