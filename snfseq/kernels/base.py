"""The kernel interface: one transition result type and the base class of every kernel.

:class:`Kernel` has two faces: :meth:`Kernel.transition`, a pure function of the state (one
step of every chain under a potential passed per call), and Pyro's ``MCMCKernel`` protocol
(``sample``, ``setup``, ``logging``, ``diagnostics``; step sizes adapted by
:class:`~snfseq.kernels.adaptation.DualAveraging`). Subclasses implement ``_transition``.

Example:
    >>> import torch
    >>> from snfseq.energy import StandardNormal
    >>> class Stay(Kernel):  # the identity kernel leaves every target invariant
    ...     def _transition(self, z, potential, step, energy, grad, adjusted):
    ...         energy = potential(z) if energy is None else energy
    ...         return self._finish(z, energy, grad, z, energy, grad, None, adjusted)
    >>> out = Stay(StandardNormal()).transition(torch.zeros(4, 2))
    >>> out.z.shape, bool(out.accepted.all())
    (torch.Size([4, 2]), True)
"""

from __future__ import annotations

__all__ = ["FullTransition", "Kernel", "Transition"]

import abc
import math
from collections import OrderedDict
from typing import Any, NamedTuple

import torch
from pyro.infer.mcmc.mcmc_kernel import MCMCKernel
from torch import Tensor

from snfseq.energy import Energy, EnergyLike, as_energy
from snfseq.kernels.adaptation import DualAveraging


class Transition(NamedTuple):
    """One transition of a batch of chains.

    Attributes:
        z: The new state, ``Tensor[..., D]``.
        accepted: Whether each chain moved, ``Tensor[...]`` bool (always True for unadjusted
            kernels except where the proposal's energy was not finite).
        energy: The energy at the new state, ``Tensor[...]``.
        log_weight: The SNF path log-weight increment ``dS`` of this step, ``Tensor[...]``.
        grad: The energy gradient at ``z``, ``Tensor[..., D]``, to pass as ``grad=`` to the
            next call (None for kernels that never need it).
        log_accept_ratio: The Metropolis-Hastings log acceptance ratio of the proposal,
            ``Tensor[...]``, ``-inf`` where the proposal's energy was not finite; computed for
            unadjusted kernels too, where it drives step-size adaptation.

    Example:
        >>> Transition(torch.zeros(2), torch.tensor(True), torch.tensor(0.5), torch.tensor(0.)).grad
    """

    z: Tensor
    accepted: Tensor
    energy: Tensor
    log_weight: Tensor
    grad: Tensor | None = None
    log_accept_ratio: Tensor | None = None


#: Former name of :class:`Transition` (which now carries the gradient and the ratio too).
FullTransition = Transition


def _step_for(step_size: Tensor | float, z: Tensor) -> Tensor | float:
    """Shapes a scalar or per-chain step size to multiply ``Tensor[..., D]``."""
    if not isinstance(step_size, Tensor):
        return float(step_size)
    step = step_size.to(dtype=z.dtype, device=z.device)
    if step.dim() == 0:
        return step
    batch = z.shape[:-1]
    try:
        fits = torch.broadcast_shapes(step.shape, batch) == batch
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"a per-chain step size of shape {tuple(step.shape)} does not broadcast to the "
            f"chain shape {tuple(batch)} of a state of shape {tuple(z.shape)}"
        )
    return step.unsqueeze(-1)


def where_point(mask: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """``a`` where the per-chain ``mask: Tensor[...]`` holds, else ``b`` (``Tensor[..., D]``)."""
    return torch.where(mask.unsqueeze(-1), a, b)


class Kernel(MCMCKernel, abc.ABC):
    """Base class of the vectorized kernels; see :mod:`snfseq.kernels` for the contract.

    Args:
        potential: The energy ``u`` (an :class:`~snfseq.energy.Energy` or any callable
            ``Tensor[..., D] -> Tensor[...]``); may be None when every
            :meth:`transition` call passes one.
        step_size: Initial step size, a positive float or a per-chain ``Tensor[...]``.
        adapt_step_size: Adapt each chain's step size by dual averaging during the warmup of
            a :meth:`sample` run (``setup(warmup_steps)``). Unadjusted kernels run with the
            Metropolis correction during warmup and adapt to its acceptance probability.
        target_accept: Acceptance probability the adaptation aims at; None gives the
            kernel's default (the asymptotically optimal rate).

    Attributes:
        potential: The current energy (an :class:`~snfseq.energy.Energy` or None).
        step_size: The current step size, float or per-chain ``Tensor[...]``; per chain
            after an adapted run.
        transforms: Always ``{}`` (unconstrained state), required by Pyro's runner.
        invariant: Whether the kernel leaves its potential invariant, so that its path
            log-weights mean something (False only for the published per-coordinate walk).

    Example:
        >>> from snfseq.kernels import MALA
        >>> kernel = MALA(lambda z: z.square().sum(-1) / 2, step_size=0.2)
        >>> kernel.transition(torch.zeros(3, 2)).z.shape, kernel.step_size, kernel.target_accept
        (torch.Size([3, 2]), 0.2, 0.574)
    """

    default_step_size: float = 0.1
    default_target_accept: float = 0.5
    adjusted: bool = True
    invariant: bool = True

    def __init__(
        self,
        potential: EnergyLike | None = None,
        step_size: Tensor | float | None = None,
        *,
        adapt_step_size: bool = True,
        target_accept: float | None = None,
    ) -> None:
        self.potential: Energy | None = None if potential is None else as_energy(potential)
        if step_size is None:
            step_size = self.default_step_size
        if isinstance(step_size, Tensor):
            positive = step_size.is_floating_point() and bool((step_size > 0).all())
            if not positive or not bool(step_size.isfinite().all()):
                raise ValueError("step_size must be a positive, finite floating-point tensor")
            initial_step: Tensor | float = step_size.detach()
        elif isinstance(step_size, (int, float)) and not isinstance(step_size, bool):
            if not 0 < step_size < math.inf:
                raise ValueError(f"step_size must be positive and finite, got {step_size}")
            initial_step = float(step_size)
        else:
            raise TypeError(f"step_size must be a float or a Tensor, got {type(step_size)}")
        self.initial_step_size = initial_step
        self.step_size: Tensor | float = initial_step
        self.adapt_step_size = adapt_step_size
        self.adaptation = DualAveraging(
            self.default_target_accept if target_accept is None else target_accept
        )
        self.transforms: dict[str, Any] = {}
        self._initial_params: dict[str, Tensor] | None = None
        # The last transition, whose energy and gradient the next sample() call reuses.
        self._last: Transition | None = None
        self._warmup_steps = 0
        self._reset_run()

    @property
    def target_accept(self) -> float:
        """The acceptance probability the step-size adaptation aims at."""
        return self.adaptation.target_accept

    # ------------------------------------------------------------------ the transition

    def transition(
        self,
        z: Tensor,
        potential: EnergyLike | None = None,
        *,
        step_size: Tensor | float | None = None,
        energy: Tensor | None = None,
        grad: Tensor | None = None,
    ) -> Transition:
        """One step of every chain, without touching the kernel's run state.

        Args:
            z: Current states, ``Tensor[..., D]``; leading dims index chains.
            potential: Energy for this step; None uses ``self.potential``.
            step_size: Float or per-chain ``Tensor[...]``; None uses ``self.step_size``.
            energy: The energy at ``z``, ``Tensor[...]``, when already known.
            grad: Its gradient at ``z``, ``Tensor[..., D]``, when already known (gradient
                kernels recompute both when either is missing). Pass the previous
                transition's ``energy`` and ``grad`` to chain steps at one evaluation each.

        Returns:
            A :class:`Transition`; dtype and device follow ``z``.
        """
        return self._move(z, potential, step_size, energy, grad, self.adjusted)

    full_transition = transition  #: Former name of :meth:`transition`.

    def _move(
        self,
        z: Tensor,
        potential: EnergyLike | None,
        step_size: Tensor | float | None,
        energy: Tensor | None,
        grad: Tensor | None,
        adjusted: bool,
    ) -> Transition:
        if not isinstance(z, Tensor) or z.dim() < 1 or not z.is_floating_point():
            raise ValueError("z must be a floating-point Tensor[..., D]")
        if potential is None:
            if self.potential is None:
                raise ValueError(
                    f"{type(self).__name__} has no potential: pass one to the constructor "
                    f"or to transition()"
                )
            energy_fn = self.potential
        else:
            energy_fn = as_energy(potential)
        step = _step_for(self.step_size if step_size is None else step_size, z)
        with torch.no_grad():
            return self._transition(z.detach(), energy_fn, step, energy, grad, adjusted)

    @abc.abstractmethod
    def _transition(
        self,
        z: Tensor,
        potential: Energy,
        step: Tensor | float,
        energy: Tensor | None,
        grad: Tensor | None,
        adjusted: bool,
    ) -> Transition:
        """The kernel's step; ``step`` is a float or a tensor broadcastable to ``z``;
        ``adjusted`` says whether to apply the Metropolis-Hastings correction."""

    @staticmethod
    def _energy(potential: Energy, z: Tensor) -> Tensor:
        energy = potential(z)
        if energy.shape != z.shape[:-1]:
            raise ValueError(
                f"the potential returned shape {tuple(energy.shape)} for a state of shape "
                f"{tuple(z.shape)}; expected one energy per chain, {tuple(z.shape[:-1])}"
            )
        return energy

    @staticmethod
    def _finish(
        z: Tensor,
        energy: Tensor,
        grad: Tensor | None,
        proposal: Tensor,
        proposal_energy: Tensor,
        proposal_grad: Tensor | None,
        log_path_ratio: Tensor | None,
        adjusted: bool,
    ) -> Transition:
        """Accepts or rejects per chain and computes the path log-weight increment.

        ``log_path_ratio`` is ``log q(z | z') - log q(z' | z)`` of the proposal (None for a
        symmetric one); it is the path increment of the unadjusted kernel.
        """
        log_ratio = energy - proposal_energy
        if log_path_ratio is not None:
            log_ratio = log_ratio + log_path_ratio
        # A proposal of energy +inf or NaN gives a ratio of -inf or NaN, which no uniform
        # beats; only -inf needs saying (it would give +inf).
        log_ratio = torch.where(proposal_energy > -math.inf, log_ratio, -math.inf)
        if adjusted:
            log_uniform = -torch.empty_like(log_ratio).exponential_()
            # NaN compares False, so a NaN ratio (e.g. a non-finite gradient) is rejected.
            accepted = log_uniform < log_ratio
            log_weight = torch.where(accepted, proposal_energy - energy, 0.0)
        else:
            finite = torch.isfinite(proposal_energy)
            path = torch.zeros_like(energy) if log_path_ratio is None else log_path_ratio
            accepted = finite & torch.isfinite(path)
            # A proposal leaving the support ends the path: weight zero, state kept finite.
            log_weight = torch.where(accepted, path, -math.inf)
        new_grad = None
        if grad is not None and proposal_grad is not None:
            new_grad = where_point(accepted, proposal_grad, grad)
        return Transition(
            z=where_point(accepted, proposal, z),
            accepted=accepted,
            energy=torch.where(accepted, proposal_energy, energy),
            log_weight=log_weight,
            grad=new_grad,
            log_accept_ratio=log_ratio,
        )

    # ------------------------------------------------------------------ Pyro protocol

    @property
    def initial_params(self) -> dict[str, Tensor] | None:
        """The starting state ``{name: Tensor[..., D]}`` (one name) of a Pyro run."""
        return self._initial_params

    @initial_params.setter
    def initial_params(self, params: dict[str, Tensor]) -> None:
        self._unpack(params)
        self._initial_params = params
        self._last = None

    @staticmethod
    def _unpack(params: dict[str, Tensor]) -> tuple[str, Tensor]:
        if not isinstance(params, dict) or len(params) != 1:
            raise ValueError(
                "the state must be a dict with exactly one name, e.g. {'z': Tensor[..., D]}; "
                "concatenate several variables along the last axis"
            )
        ((name, z),) = params.items()
        if not isinstance(z, Tensor) or z.dim() < 1 or not z.is_floating_point():
            raise ValueError(f"state {name!r} must be a floating-point Tensor[..., D]")
        return name, z

    def setup(self, warmup_steps: int, *args: Any, **kwargs: Any) -> None:
        """Starts a run: resets counters, step sizes and the adaptation (Pyro protocol).

        Args:
            warmup_steps: Number of adaptation steps before sampling.

        Raises:
            TypeError: When model arguments are passed; these kernels have no model.
        """
        if args or kwargs:
            raise TypeError(
                f"{type(self).__name__} has no model and takes no run arguments; "
                f"call MCMC(...).run() without arguments"
            )
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self._warmup_steps = int(warmup_steps)
        self.step_size = self.initial_step_size
        self._reset_run()

    def _reset_run(self) -> None:
        self._t = 0
        self._phase_steps = 0
        self._accepted_count: Tensor | None = None
        self._accept_prob_sum: Tensor | None = None
        self.adaptation.reset()
        self._last = None

    def cleanup(self) -> None:
        """Drops the remembered energy and gradient (Pyro protocol); diagnostics are kept."""
        self._last = None

    @property
    def _adapting(self) -> bool:
        return self.adapt_step_size and self._t < self._warmup_steps

    def end_warmup(self) -> None:
        """Fixes each chain's step size to its averaged adapted value (Pyro protocol).

        Called automatically after ``warmup_steps`` calls of :meth:`sample`.
        """
        final = self.adaptation.final_step()
        if final is not None:
            self.step_size = final
        self.adaptation.reset()
        self._warmup_steps = min(self._warmup_steps, self._t)
        self._phase_steps = 0
        self._accepted_count = self._accept_prob_sum = None

    def sample(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """One transition of every chain under ``self.potential`` (Pyro protocol).

        Reuses the energy and gradient of the previous call when ``params`` holds the very
        tensor that call returned; adapts step sizes during warmup.

        Args:
            params: ``{name: Tensor[..., D]}``.

        Returns:
            ``{name: Tensor[..., D]}``, the new state.
        """
        name, z = self._unpack(params)
        last = self._last if self._last is not None and z is self._last.z else None
        if self._adapting and not self.adaptation.active:
            initial = torch.as_tensor(_step_for(self.step_size, z), dtype=z.dtype, device=z.device)
            initial = initial.squeeze(-1) if initial.dim() > 0 else initial
            self.step_size = self.adaptation.start(initial.expand(z.shape[:-1]).clone())
        shape = self.adaptation.chain_shape
        if shape is not None and shape != z.shape[:-1]:
            raise ValueError(
                f"the chain shape changed during warmup: adapting {tuple(shape)} chains, got a "
                f"state of shape {tuple(z.shape)}"
            )
        # Unadjusted kernels stay adjusted during warmup: a too-large trial step would
        # otherwise send chains off to infinity, where no adaptation can bring them back.
        adjusted = self.adjusted or self._adapting
        out = self._move(
            z,
            None,
            None,
            None if last is None else last.energy,
            None if last is None else last.grad,
            adjusted,
        )
        assert out.log_accept_ratio is not None
        accept_prob = out.log_accept_ratio.clamp(max=0.0).exp().nan_to_num(nan=0.0)
        self._t += 1
        if self.adaptation.active:
            self.step_size = self.adaptation.update(accept_prob)
        return self._counted(out, accept_prob, name)

    def _counted(self, out: Transition, accept_prob: Tensor, name: str) -> dict[str, Tensor]:
        """Counts a protocol transition (accepts, phase, end of warmup); returns its sample."""
        accepted = out.accepted.to(out.energy.dtype)
        count, probs = self._accepted_count, self._accept_prob_sum
        self._accepted_count = accepted if count is None else count + accepted
        self._accept_prob_sum = accept_prob if probs is None else probs + accept_prob
        self._phase_steps += 1
        if self._t == self._warmup_steps:
            self.end_warmup()
        self._last = out
        return {name: out.z}

    def _mean_step(self) -> float:
        step = self.step_size
        return float(step.mean().item()) if isinstance(step, Tensor) else float(step)

    def logging(self) -> OrderedDict[str, float]:
        """Mean step size, acceptance rate and Metropolis acceptance probability of the
        current phase (warmup or sampling), for Pyro's progress bar."""
        rate = prob = float("nan")
        if self._accepted_count is not None and self._accept_prob_sum is not None:
            rate = float(self._accepted_count.mean().item()) / self._phase_steps
            prob = float(self._accept_prob_sum.mean().item()) / self._phase_steps
        return OrderedDict(
            [("step size", self._mean_step()), ("acc. rate", rate), ("acc. prob", prob)]
        )

    def diagnostics(self) -> dict[str, Any]:
        """Per-chain statistics of the sampling phase (after warmup).

        Returns:
            ``{"acceptance rate": Tensor[...], "accept prob": Tensor[...],
            "step size": Tensor[...] or float, "num steps": int}``; rates are None before
            any post-warmup step.
        """
        rate = prob = None
        if self._accepted_count is not None and self._accept_prob_sum is not None:
            rate = self._accepted_count / self._phase_steps
            prob = self._accept_prob_sum / self._phase_steps
        step = self.step_size.clone() if isinstance(self.step_size, Tensor) else self.step_size
        return {
            "acceptance rate": rate,
            "accept prob": prob,
            "step size": step,
            "num steps": self._phase_steps,
        }
