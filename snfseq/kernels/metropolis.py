"""Random-walk kernels: Metropolis with one accept per chain, and the published walk.

Example:
    >>> import torch
    >>> from snfseq.energy import Gaussian
    >>> kernel = RandomWalkMetropolis(Gaussian(torch.ones(2)), step_size=0.5)
    >>> kernel.transition(torch.zeros(10, 2)).accepted.shape
    torch.Size([10])
"""

from __future__ import annotations

__all__ = ["PerCoordinateMetropolis", "RandomWalkMetropolis"]

import math

import torch
from torch import Tensor

from snfseq.energy import Energy
from snfseq.kernels.base import Kernel, Transition


class RandomWalkMetropolis(Kernel):
    """Random-walk Metropolis: ``z' = z + step_size * N(0, I)``, one accept per chain.

    Needs only energies, never gradients. The GRU-SNF paper's blocks are this kernel with
    step 0.35, two steps per block (but accepted per sample, unlike the published code).

    Args:
        potential: the energy; see :class:`Kernel`.
        step_size: proposal standard deviation (default 0.35).
        adapt_step_size: see :class:`Kernel`.
        target_accept: default 0.234.

    Example:
        >>> import torch
        >>> from snfseq.energy import paper_energy
        >>> kernel = RandomWalkMetropolis(step_size=0.35)
        >>> y = torch.randn(100, 60)
        >>> out = kernel.transition(y, paper_energy(torch.zeros(60), 0.25))
        >>> out.z.shape, out.accepted.dtype
        (torch.Size([100, 60]), torch.bool)
    """

    default_step_size = 0.35
    default_target_accept = 0.234

    def _transition(
        self,
        z: Tensor,
        potential: Energy,
        step: Tensor | float,
        energy: Tensor | None,
        grad: Tensor | None,
        adjusted: bool,
    ) -> Transition:
        energy, proposal, proposal_energy = self._propose(z, potential, step, energy)
        return self._finish(z, energy, None, proposal, proposal_energy, None, None, adjusted)

    def _propose(
        self, z: Tensor, potential: Energy, step: Tensor | float, energy: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(energy at z, proposal z + step * N(0, I), energy at the proposal)``."""
        if energy is None:
            energy = self._energy(potential, z)
        proposal = z + step * torch.randn_like(z)
        return energy, proposal, self._energy(potential, proposal)


class PerCoordinateMetropolis(RandomWalkMetropolis):
    """The published GRU-SNF code's random walk: accept/reject drawn per COORDINATE.

    Proposes ``z' = z + step_size * N(0, I)`` like :class:`RandomWalkMetropolis`, but draws
    one uniform per coordinate and keeps each coordinate of the proposal whose uniform
    passes the ratio of the shared, non-separable energy. That is not a valid Metropolis
    kernel: it does not leave ``exp(-u)`` invariant (``invariant = False``), so its path
    log-weights are meaningless (NaN here) and a refinement with it reports none. It exists
    to reproduce the published numbers side by side (paper-notes defect 1).

    Random draws per transition, in order: the proposal noise ``randn(*N, D)``, then the
    uniforms ``rand(*N, D)``.

    Args:
        potential: The energy; see :class:`Kernel`.
        step_size: Proposal standard deviation (default 0.35, as published).

    Example:
        >>> import torch
        >>> from snfseq.energy import StandardNormal
        >>> out = PerCoordinateMetropolis(StandardNormal()).transition(torch.zeros(5, 3))
        >>> out.z.shape, bool(out.log_weight.isnan().all())
        (torch.Size([5, 3]), True)
    """

    invariant = False

    def _transition(
        self,
        z: Tensor,
        potential: Energy,
        step: Tensor | float,
        energy: Tensor | None,
        grad: Tensor | None,
        adjusted: bool,
    ) -> Transition:
        energy, proposal, proposal_energy = self._propose(z, potential, step, energy)
        log_ratio = energy - proposal_energy
        accept = torch.rand_like(z).log() < log_ratio.unsqueeze(-1)
        moved = torch.where(accept, proposal, z)
        return Transition(
            z=moved,
            accepted=accept.all(-1),
            energy=self._energy(potential, moved),
            log_weight=torch.full_like(energy, math.nan),
            log_accept_ratio=log_ratio,
        )
