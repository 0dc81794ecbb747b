"""Step-size adaptation by dual averaging, one step size per chain.

Hoffman and Gelman (2014), as in Stan and Pyro (``pyro/ops/dual_averaging.py``): the log step
size follows ``log eps_t = mu - sqrt(t) / gamma * mean(target - accept_prob)`` and the step
used after warmup is the weighted average of those iterates. Every leading index of the
state is its own chain with its own step size; nothing waits on the device.

Example:
    >>> import torch
    >>> adapt = DualAveraging(target_accept=0.5)
    >>> step = adapt.start(torch.full((3,), 0.1))
    >>> for _ in range(20):
    ...     step = adapt.update(torch.tensor([0.9, 0.5, 0.1]))
    >>> final = adapt.final_step()
    >>> bool(final[0] > final[1] > final[2])
    True
"""

from __future__ import annotations

__all__ = ["DualAveraging"]

import math

import torch
from torch import Tensor


class DualAveraging:
    """Per-chain dual-averaging adaptation of a step size towards an acceptance rate.

    Args:
        target_accept: The acceptance probability aimed at, in ``(0, 1)``.
        t0: Iteration offset that damps early updates (Stan: 10).
        kappa: Decay of the averaging weights (Stan: 0.75).
        gamma: Adaptation scale (Stan: 0.05).

    Example:
        >>> import torch
        >>> adapt = DualAveraging(target_accept=0.8)
        >>> adapt.start(torch.tensor([0.1, 0.1]))
        tensor([0.1000, 0.1000])
        >>> for _ in range(3):  # chain 0 accepts more often than aimed at, chain 1 less
        ...     step = adapt.update(torch.tensor([1.0, 0.2]))
        >>> adapt.final_step()  # the averaged step sizes to sample with
        tensor([3.0006, 0.0370])
    """

    def __init__(
        self, target_accept: float, *, t0: float = 10.0, kappa: float = 0.75, gamma: float = 0.05
    ) -> None:
        if not 0.0 < target_accept < 1.0:
            raise ValueError(f"target_accept must lie in (0, 1), got {target_accept}")
        self.target_accept = float(target_accept)
        self.t0, self.kappa, self.gamma = t0, kappa, gamma
        self.reset()

    def reset(self) -> None:
        """Forgets the run (no chain is adapting)."""
        self.t = 0
        self._center: Tensor | None = None
        self._log_step: Tensor | None = None
        self._log_step_avg: Tensor | None = None
        self._error_avg: Tensor | None = None

    @property
    def active(self) -> bool:
        """Whether :meth:`start` was called since the last :meth:`reset`."""
        return self._log_step is not None

    @property
    def chain_shape(self) -> torch.Size | None:
        """The shape of the chains being adapted (None when inactive)."""
        return None if self._log_step is None else self._log_step.shape

    def start(self, step_size: Tensor) -> Tensor:
        """Starts adapting from the per-chain ``step_size: Tensor[...]``; returns it."""
        log_step = torch.log(step_size)
        self.t = 0
        # Aim above the start, as Stan does: a larger step explored early is cheap to undo.
        self._center = log_step + math.log(10.0)
        self._log_step = log_step
        self._log_step_avg = torch.zeros_like(log_step)
        self._error_avg = torch.zeros_like(log_step)
        return log_step.exp()

    def update(self, accept_prob: Tensor) -> Tensor:
        """One update from each chain's acceptance probability ``Tensor[...]``.

        Returns:
            The step size to use next, ``Tensor[...]``.
        """
        if self._center is None or self._error_avg is None or self._log_step_avg is None:
            raise RuntimeError("call start() before update()")
        self.t += 1
        rate = 1.0 / (self.t + self.t0)
        self._error_avg = (1.0 - rate) * self._error_avg + rate * (self.target_accept - accept_prob)
        self._log_step = self._center - (math.sqrt(self.t) / self.gamma) * self._error_avg
        weight = self.t ** (-self.kappa)
        self._log_step_avg = weight * self._log_step + (1.0 - weight) * self._log_step_avg
        return self._log_step.exp()

    def final_step(self) -> Tensor | None:
        """The averaged step size ``Tensor[...]`` to sample with (None before any update)."""
        if self._log_step_avg is None or self.t == 0:
            return None
        return self._log_step_avg.exp()
