"""Running a kernel for many steps on many chains, and the record of what it did.

:func:`run_chain` is the one loop that moves chains: every refinement block of a forecast,
:func:`snfseq.snf.sample` and the diagnostic chains of :mod:`snfseq.diagnostics` call it. It
passes each transition's energy and gradient to the next, so ``M`` MALA steps evaluate
``value_and_grad`` ``M + 1`` times.

Example:
    >>> import torch
    >>> from snfseq.energy import StandardNormal
    >>> from snfseq.kernels import MALA
    >>> chain = run_chain(MALA(step_size=0.3), StandardNormal(), torch.zeros(16, 2), 5)
    >>> chain.states.shape, chain.final.shape, chain.log_weight.shape
    (torch.Size([5, 16, 2]), torch.Size([16, 2]), torch.Size([16]))
"""

from __future__ import annotations

__all__ = ["Chain", "Trace", "run_chain"]

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from snfseq.energy import EnergyLike
from snfseq.kernels import Kernel


@dataclass
class Chain:
    """What :func:`run_chain` returns.

    Attributes:
        states: ``Tensor[T, *N, D]``, the state after each recorded transition (None when
            recording was off).
        energies: ``Tensor[T, *N]``, the energy there (None when recording was off).
        accepted: ``Tensor[T, *N]`` bool (None when recording was off).
        final: ``Tensor[*N, D]``, the state handed on (after ``handoff`` transitions).
        log_weight: ``Tensor[*N]``, the path log-weight increments ``dS`` summed over the
            transitions up to the hand-off.

    Example:
        >>> import torch
        >>> from snfseq.energy import StandardNormal
        >>> from snfseq.kernels import RandomWalkMetropolis
        >>> chain = run_chain(RandomWalkMetropolis(), StandardNormal(), torch.zeros(4, 2), 3,
        ...                   record=False)
        >>> chain.states is None, chain.final.shape, chain.log_weight.shape
        (True, torch.Size([4, 2]), torch.Size([4]))
    """

    states: Tensor | None
    energies: Tensor | None
    accepted: Tensor | None
    final: Tensor
    log_weight: Tensor


def run_chain(
    kernel: Kernel,
    potential: EnergyLike,
    init: Tensor,
    num_draws: int,
    *,
    num_warmup: int = 0,
    step_size: Tensor | float | None = None,
    handoff: int | None = None,
    record: bool = True,
) -> Chain:
    """Runs every chain of ``init`` through ``num_warmup + num_draws`` transitions at once.

    Args:
        kernel: The kernel (its own step size and run state are not touched).
        potential: The energy ``u`` the kernel leaves invariant.
        init: Starting states ``Tensor[*N, D]``; every leading index is a chain.
        num_draws: Transitions recorded, after the warmup.
        num_warmup: Transitions run first and not recorded.
        step_size: Float or per-chain ``Tensor[*N]``; None uses ``kernel.step_size``.
        handoff: After how many transitions the state to hand on is taken (default: the
            last); more transitions are run if needed. A refinement block hands on after its
            own ``steps`` while a diagnostic run records longer chains from the same start.
        record: Keep states, energies and accept flags.

    Returns:
        A :class:`Chain`.

    Example:
        >>> import torch
        >>> from snfseq.energy import StandardNormal
        >>> from snfseq.kernels import MALA
        >>> chain = run_chain(MALA(step_size=0.3), StandardNormal(), torch.zeros(8, 2), 4,
        ...                   num_warmup=2, handoff=0)
        >>> chain.states.shape  # 4 recorded draws of 8 chains, after 2 warmup transitions
        torch.Size([4, 8, 2])
        >>> bool(chain.final.eq(0).all()), float(chain.log_weight.abs().sum())  # handed on at 0
        (True, 0.0)
    """
    total = num_warmup + num_draws
    handoff = total if handoff is None else handoff
    z, energy, grad = init, None, None
    final, log_weight = init, None
    states: list[Tensor] = []
    energies: list[Tensor] = []
    accepted: list[Tensor] = []
    for step in range(max(total, handoff)):
        move = kernel.transition(z, potential, step_size=step_size, energy=energy, grad=grad)
        z, energy, grad = move.z, move.energy, move.grad
        if step < handoff:
            log_weight = move.log_weight if log_weight is None else log_weight + move.log_weight
            final = z
        if record and num_warmup <= step < total:
            states.append(z)
            energies.append(energy)
            accepted.append(move.accepted)
    if log_weight is None:  # handed on before any transition
        log_weight = torch.zeros(init.shape[:-1], dtype=init.dtype, device=init.device)
    if not record or not states:
        return Chain(None, None, None, final, log_weight)
    return Chain(
        torch.stack(states), torch.stack(energies), torch.stack(accepted), final, log_weight
    )


@dataclass
class Trace:
    """States, energies and accept flags of every refinement block and step.

    Shapes (``N`` = sampled rows, e.g. ``S x B`` flattened, or ``[S, B]`` via
    ``batch_shape``; a leading time axis ``H`` when stacked over forecast steps):

    * ``states: Tensor[(H,) J, M, *N, D]`` after each of the ``M`` recorded steps of each of
      ``J`` blocks,
    * ``energies: Tensor[(H,) J, M, *N]``, ``accepted: Tensor[(H,) J, M, *N]`` (bool),
    * ``blocks: list[int]`` the sampling step after which each block ran,
    * ``lam: Tensor[J]``, ``step_size: Tensor[J]``.

    Example:
        >>> import torch
        >>> trace = Trace(torch.zeros(2, 3, 4, 5), torch.zeros(2, 3, 4),
        ...               torch.ones(2, 3, 4, dtype=torch.bool), [0, 1],
        ...               torch.tensor([0.0, 1.0]), torch.tensor([0.1, 0.1]))
        >>> Trace.stack([trace, trace]).states.shape, trace.acceptance
        (torch.Size([2, 2, 3, 4, 5]), tensor([1., 1.]))
    """

    states: Tensor
    energies: Tensor
    accepted: Tensor
    blocks: list[int]
    lam: Tensor
    step_size: Tensor
    has_time: bool = False

    @staticmethod
    def stack(traces: Sequence[Trace]) -> Trace:
        """Stacks per-step traces on a new leading time axis."""
        first = traces[0]
        return Trace(
            states=torch.stack([t.states for t in traces]),
            energies=torch.stack([t.energies for t in traces]),
            accepted=torch.stack([t.accepted for t in traces]),
            blocks=first.blocks,
            lam=first.lam,
            step_size=first.step_size,
            has_time=True,
        )

    @property
    def acceptance(self) -> Tensor:
        """Acceptance rate per block ``Tensor[J]`` (averaged over everything else)."""
        flags = self.accepted.float()
        if self.has_time:
            flags = flags.movedim(1, 0)
        return flags.reshape(flags.shape[0], -1).mean(1)
