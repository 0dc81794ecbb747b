"""Scoped changes of global state: a seeded random stream and evaluation mode.

Both restore what they changed when the block ends, normally or by an exception.

Example:
    >>> import torch
    >>> with seeded(0):
    ...     first = torch.rand(2)
    >>> with seeded(0):
    ...     bool(torch.equal(first, torch.rand(2)))
    True
    >>> net = torch.nn.Dropout(0.5)
    >>> with evaluating(net):
    ...     net.training
    False
    >>> net.training
    True
"""

from __future__ import annotations

__all__ = ["evaluating", "seeded"]

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def seeded(seed: int | None, devices: Sequence[torch.device | str] = ()) -> Iterator[None]:
    """Runs the block on a random stream seeded with ``seed``; the global stream is restored.

    Args:
        seed: The seed; None runs the block on the global stream, untouched.
        devices: Devices whose random state is forked too (CUDA devices; the CPU always is).

    Example:
        >>> import torch
        >>> state = torch.get_rng_state()
        >>> with seeded(1):
        ...     a = torch.rand(2)
        >>> with seeded(1):
        ...     b = torch.rand(2)
        >>> bool(torch.equal(a, b)), bool(torch.equal(torch.get_rng_state(), state))
        (True, True)
    """
    cuda = [torch.device(d) for d in devices if torch.device(d).type == "cuda"]
    with torch.random.fork_rng(devices=cuda, enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        yield


@contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    """Puts ``module`` in evaluation mode for the block and restores its former mode.

    Args:
        module: Any torch module.

    Example:
        >>> import torch
        >>> net = torch.nn.Dropout(0.5)
        >>> with evaluating(net) as same:
        ...     same is net, net.training
        (True, False)
        >>> net.training
        True
    """
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
