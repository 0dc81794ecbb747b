"""Gradient kernels: Metropolis-adjusted (or unadjusted) Langevin, and Hamiltonian Monte Carlo.

Both take the energy and gradient at the current state from the previous transition when
given (``energy=``, ``grad=``), so a chain of ``M`` steps evaluates ``value_and_grad``
``M + 1`` times (MALA) or ``M * L + 1`` times (HMC with ``L`` leapfrog steps).

Example:
    >>> import torch
    >>> from snfseq.energy import StandardNormal
    >>> out = MALA(StandardNormal(), step_size=0.1).transition(torch.zeros(8, 3))
    >>> out.grad.shape
    torch.Size([8, 3])
"""

from __future__ import annotations

__all__ = ["HMC", "MALA"]

import math

import torch
from torch import Tensor

from snfseq.energy import Energy, EnergyLike
from snfseq.kernels.base import Kernel, Transition


def _plus(x: Tensor, y: Tensor, factor: Tensor | float) -> Tensor:
    """``x + factor * y`` (one operation for a float factor)."""
    if isinstance(factor, Tensor):
        return x + factor * y
    return torch.add(x, y, alpha=factor)


def _sqrt(step: Tensor | float) -> Tensor | float:
    return torch.sqrt(step) if isinstance(step, Tensor) else math.sqrt(step)


class MALA(Kernel):
    """Metropolis-adjusted Langevin: ``z' = z - eps * grad u(z) + sqrt(2 eps) * N(0, I)``.

    With ``adjusted=False`` this is the unadjusted Langevin algorithm (ULA): every proposal
    is taken and the path log-weight ``0.5 (|eta|^2 - |eta_back|^2)`` corrects for the bias.

    Args:
        potential: the energy; see :class:`Kernel`.
        step_size: the time step ``eps`` (default 0.1).
        adapt_step_size: see :class:`Kernel`.
        target_accept: default 0.574.
        adjusted: apply the Metropolis-Hastings correction.

    Example:
        >>> import torch
        >>> from snfseq.energy import StandardNormal
        >>> kernel = MALA(StandardNormal(), step_size=0.2, adjusted=False)
        >>> out = kernel.transition(torch.randn(50, 4))
        >>> bool(out.accepted.all()), out.log_weight.shape
        (True, torch.Size([50]))
    """

    default_step_size = 0.1
    default_target_accept = 0.574

    def __init__(
        self,
        potential: EnergyLike | None = None,
        step_size: Tensor | float | None = None,
        *,
        adapt_step_size: bool = True,
        target_accept: float | None = None,
        adjusted: bool = True,
    ) -> None:
        super().__init__(
            potential, step_size, adapt_step_size=adapt_step_size, target_accept=target_accept
        )
        self.adjusted = adjusted

    def _transition(
        self,
        z: Tensor,
        potential: Energy,
        step: Tensor | float,
        energy: Tensor | None,
        grad: Tensor | None,
        adjusted: bool,
    ) -> Transition:
        if energy is None or grad is None:
            energy, grad = potential.value_and_grad(z)
        noise_scale = _sqrt(2.0 * step)
        noise = torch.randn_like(z)
        proposal = _plus(_plus(z, grad, -step), noise, noise_scale)
        proposal_energy, proposal_grad = potential.value_and_grad(proposal)
        # The noise that proposes z back from the proposal is a - noise, a = sqrt(step / 2)
        # (grad + proposal_grad), so 0.5 (|noise|^2 - |a - noise|^2) = a . (noise - a / 2):
        # the path ratio in four operations.
        shift = (grad + proposal_grad) * (0.5 * noise_scale)
        log_path_ratio = torch.linalg.vecdot(shift, _plus(noise, shift, -0.5))
        return self._finish(
            z,
            energy,
            grad,
            proposal,
            proposal_energy,
            proposal_grad,
            log_path_ratio,
            adjusted,
        )


class HMC(Kernel):
    """Hamiltonian Monte Carlo with a unit mass matrix and fresh momentum every transition.

    ``num_steps`` leapfrog steps of size ``step_size`` per transition, one accept per chain
    on the change of total energy. With ``adjusted=False`` every trajectory end is taken and
    the path log-weight is the drop of kinetic energy ``0.5 |p_0|^2 - 0.5 |p_L|^2`` (leapfrog
    preserves volume).

    Args:
        potential: the energy; see :class:`Kernel`.
        step_size: leapfrog step (default 0.1).
        adapt_step_size: see :class:`Kernel`.
        target_accept: default 0.65.
        num_steps: leapfrog steps per transition (``L``).
        adjusted: apply the Metropolis correction.
        jitter: each transition draws every chain's step uniformly from
            ``step_size * [1 - jitter, 1 + jitter]``, which breaks the resonance of a fixed
            trajectory length with directions whose period divides it (Neal 2011). The draw
            ignores the state, so invariance and the path log-weights are unchanged.

    Example:
        >>> import torch
        >>> from snfseq.energy import StandardNormal
        >>> kernel = HMC(StandardNormal(), step_size=0.2, num_steps=5)
        >>> kernel.transition(torch.randn(20, 3, 2)).z.shape
        torch.Size([20, 3, 2])
    """

    default_step_size = 0.1
    default_target_accept = 0.65

    def __init__(
        self,
        potential: EnergyLike | None = None,
        step_size: Tensor | float | None = None,
        *,
        adapt_step_size: bool = True,
        target_accept: float | None = None,
        num_steps: int = 10,
        adjusted: bool = True,
        jitter: float = 0.0,
    ) -> None:
        super().__init__(
            potential, step_size, adapt_step_size=adapt_step_size, target_accept=target_accept
        )
        if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 1:
            raise ValueError(f"num_steps must be a positive int, got {num_steps!r}")
        if not 0.0 <= jitter < 1.0:
            raise ValueError(f"jitter must lie in [0, 1), got {jitter}")
        self.num_steps = num_steps
        self.adjusted = adjusted
        self.jitter = float(jitter)

    def _transition(
        self,
        z: Tensor,
        potential: Energy,
        step: Tensor | float,
        energy: Tensor | None,
        grad: Tensor | None,
        adjusted: bool,
    ) -> Transition:
        if self.jitter > 0.0:
            uniform = torch.rand(z.shape[:-1] + (1,), dtype=z.dtype, device=z.device)
            step = step * (1.0 + self.jitter * (2.0 * uniform - 1.0))
        transition, _, _ = self._trajectory(
            z, potential, step, energy, grad, adjusted, self.num_steps
        )
        return transition

    def _trajectory(
        self,
        z: Tensor,
        potential: Energy,
        step: Tensor | float,
        energy: Tensor | None,
        grad: Tensor | None,
        adjusted: bool,
        num_steps: int,
    ) -> tuple[Transition, Tensor, Tensor]:
        """``num_steps`` leapfrog steps from a fresh momentum, then the accept/reject.

        Returns:
            The transition, the proposal (the trajectory's end, ``Tensor[..., D]``) and its
            momentum (``Tensor[..., D]``, the velocity with a unit mass): trajectory-length
            adaptation reads those whether or not the proposal was accepted.
        """
        if energy is None or grad is None:
            energy, grad = potential.value_and_grad(z)
        momentum0 = torch.randn_like(z)
        momentum = momentum0 - (0.5 * step) * grad
        position = z
        for leap in range(num_steps):
            position = position + step * momentum
            proposal_energy, proposal_grad = potential.value_and_grad(position)
            kick = step if leap < num_steps - 1 else 0.5 * step
            momentum = momentum - kick * proposal_grad
        log_path_ratio = 0.5 * (momentum0.square().sum(-1) - momentum.square().sum(-1))
        transition = self._finish(
            z,
            energy,
            grad,
            position,
            proposal_energy,
            proposal_grad,
            log_path_ratio,
            adjusted,
        )
        return transition, position, momentum
