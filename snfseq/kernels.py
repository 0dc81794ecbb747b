"""Vectorized MCMC kernels: every leading index of the state is its own chain.

:class:`RandomWalkMetropolis`, :class:`MALA` and :class:`HMC` move a state ``Tensor[..., D]``
under an energy ``u`` (target density ``exp(-u)``), with one accept/reject per chain on the
scalar energy and per-chain step sizes. Two faces:

* :meth:`Kernel.transition` is a pure function of the state (plus fresh randomness): one step
  under a potential passed per call, returning the new state, acceptance, energy and the
  stochastic-normalizing-flow path log-weight increment ``dS``. It never waits on the device
  (no ``.item()``, no branch on tensor values), so the refinement loop can call it freely.
* :meth:`Kernel.sample` follows Pyro's :class:`~pyro.infer.mcmc.mcmc_kernel.MCMCKernel`
  protocol, so ``pyro.infer.mcmc.MCMC`` drives these kernels; during warmup each chain adapts
  its own step size by dual averaging.

Path log-weights (Wu, Koehler and Noe 2020, "Stochastic Normalizing Flows"): for a path
``z = y_0 -> ... -> y_T = x`` started from ``exp(-u_Z)``,
``log w = -u_X(x) + u_Z(z) + sum_t dS_t`` is an importance log-weight for ``exp(-u_X)``, with
``dS_t = log q_back(y_t -> y_{t-1}) - log q(y_{t-1} -> y_t)``. For a Metropolis-adjusted kernel
that is ``u(y_out) - u(y_in)``; for unadjusted Langevin ``0.5 (|eta|^2 - |eta_back|^2)``; for
unadjusted HMC the drop of kinetic energy ``0.5 |p_0|^2 - 0.5 |p_L|^2``.

State dicts hold a single name (e.g. ``{"z": z}``); several names raise ``ValueError``:
concatenate variables along the last axis instead. With Pyro's runner keep ``num_chains=1``
(the chains are the leading dims of ``z``) and pass ``initial_params`` (there is no model to
draw them from); ``MCMC.get_samples()["z"]`` then has shape ``[num_samples, *z0.shape]``
(``[1, num_samples, *z0.shape]`` with ``group_by_chain=True``).

Example:
    >>> import torch
    >>> from snfseq.energy import Gaussian
    >>> kernel = MALA(Gaussian(torch.ones(3)), step_size=0.1)
    >>> state = {"z": torch.zeros(1000, 3)}
    >>> for _ in range(10):
    ...     state = kernel.sample(state)
    >>> state["z"].shape
    torch.Size([1000, 3])
    >>> out = kernel.transition(state["z"])
    >>> out.z.shape, out.accepted.shape, out.energy.shape, out.log_weight.shape
    (torch.Size([1000, 3]), torch.Size([1000]), torch.Size([1000]), torch.Size([1000]))
    >>> import pyro
    >>> mcmc = pyro.infer.mcmc.MCMC(
    ...     HMC(Gaussian(torch.ones(3)), num_steps=5), num_samples=20, warmup_steps=10,
    ...     initial_params={"z": torch.zeros(64, 3)}, disable_progbar=True)
    >>> mcmc.run()
    >>> mcmc.get_samples()["z"].shape
    torch.Size([20, 64, 3])
"""

from __future__ import annotations

__all__ = [
    "HMC",
    "MALA",
    "FullTransition",
    "Kernel",
    "RandomWalkMetropolis",
    "Transition",
]

import abc
import math
from collections import OrderedDict
from typing import Any, NamedTuple

import torch
from pyro.infer.mcmc.mcmc_kernel import MCMCKernel
from torch import Tensor

from snfseq.energy import Energy, EnergyLike, as_energy

# Dual-averaging constants of Hoffman and Gelman (2014), as in Stan and Pyro.
_DA_T0 = 10.0
_DA_KAPPA = 0.75
_DA_GAMMA = 0.05


class Transition(NamedTuple):
    """One transition of a batch of chains.

    Attributes:
        z: the new state, ``Tensor[..., D]``.
        accepted: whether each chain moved, ``Tensor[...]`` bool (always True for unadjusted
            kernels except where the proposal's energy was not finite).
        energy: the energy at the new state, ``Tensor[...]``.
        log_weight: the SNF path log-weight increment ``dS`` of this step, ``Tensor[...]``.
    """

    z: Tensor
    accepted: Tensor
    energy: Tensor
    log_weight: Tensor


class FullTransition(NamedTuple):
    """A :class:`Transition` plus what is needed to chain the next step cheaply.

    The first four fields are those of :class:`Transition`.

    Attributes:
        z: the new state, ``Tensor[..., D]``.
        accepted: ``Tensor[...]`` bool.
        energy: ``Tensor[...]``, the energy at ``z``.
        log_weight: ``Tensor[...]``, the path log-weight increment ``dS``.
        grad: the energy gradient at ``z``, ``Tensor[..., D]`` (None for random-walk
            Metropolis, which never needs it).
        log_accept_ratio: the Metropolis-Hastings log acceptance ratio of the proposal,
            ``Tensor[...]``, ``-inf`` where the proposal's energy was not finite; computed for
            unadjusted kernels too, where it drives step-size adaptation.
    """

    z: Tensor
    accepted: Tensor
    energy: Tensor
    log_weight: Tensor
    grad: Tensor | None
    log_accept_ratio: Tensor


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


def _sqrt(step: Tensor | float) -> Tensor | float:
    return torch.sqrt(step) if isinstance(step, Tensor) else math.sqrt(step)


def _where_point(mask: Tensor, a: Tensor, b: Tensor) -> Tensor:
    return torch.where(mask.unsqueeze(-1), a, b)


class Kernel(MCMCKernel, abc.ABC):
    """Base class of the vectorized kernels; see the module docstring for the contract.

    Args:
        potential: the energy ``u`` (an :class:`~snfseq.energy.Energy` or any callable
            ``Tensor[..., D] -> Tensor[...]``); may be None when every
            :meth:`transition` call passes one.
        step_size: initial step size, a positive float or a per-chain ``Tensor[...]``.
        adapt_step_size: adapt each chain's step size by dual averaging during the warmup of
            a :meth:`sample` run (``setup(warmup_steps)``). Unadjusted kernels run with the
            Metropolis correction during warmup and adapt to its acceptance probability.
        target_accept: acceptance probability the adaptation aims at; None gives the
            kernel's default (the asymptotically optimal rate).

    Attributes:
        potential: the current energy (an :class:`~snfseq.energy.Energy` or None).
        step_size: the current step size, float or per-chain ``Tensor[...]``; per chain
            after an adapted run.
        transforms: always ``{}`` (unconstrained state), required by Pyro's runner.
    """

    default_step_size: float = 0.1
    default_target_accept: float = 0.5
    adjusted: bool = True

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
            if not step_size.is_floating_point() or not bool((step_size > 0).all()):
                raise ValueError("step_size must be a positive floating-point tensor")
            initial_step: Tensor | float = step_size.detach()
        elif isinstance(step_size, (int, float)) and not isinstance(step_size, bool):
            if not step_size > 0:
                raise ValueError(f"step_size must be positive, got {step_size}")
            initial_step = float(step_size)
        else:
            raise TypeError(f"step_size must be a float or a Tensor, got {type(step_size)}")
        if target_accept is None:
            target_accept = self.default_target_accept
        if not 0.0 < target_accept < 1.0:
            raise ValueError(f"target_accept must lie in (0, 1), got {target_accept}")
        self.initial_step_size = initial_step
        self.step_size: Tensor | float = initial_step
        self.adapt_step_size = adapt_step_size
        self.target_accept = float(target_accept)
        self.transforms: dict[str, Any] = {}
        self._initial_params: dict[str, Tensor] | None = None
        self._warmup_steps = 0
        self._reset_run()
        self._clear_cache()

    # ------------------------------------------------------------------ transition core

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
            z: current states, ``Tensor[..., D]``; leading dims index chains.
            potential: energy for this step; None uses ``self.potential``.
            step_size: float or per-chain ``Tensor[...]``; None uses ``self.step_size``.
            energy: the energy at ``z``, ``Tensor[...]``, when already known.
            grad: its gradient at ``z``, ``Tensor[..., D]``, when already known (gradient
                kernels recompute both when either is missing).

        Returns:
            A :class:`Transition`; dtype and device follow ``z``.
        """
        out = self.full_transition(z, potential, step_size=step_size, energy=energy, grad=grad)
        return Transition(out.z, out.accepted, out.energy, out.log_weight)

    def full_transition(
        self,
        z: Tensor,
        potential: EnergyLike | None = None,
        *,
        step_size: Tensor | float | None = None,
        energy: Tensor | None = None,
        grad: Tensor | None = None,
    ) -> FullTransition:
        """Like :meth:`transition`, also returning the gradient at the new state (to pass as
        ``grad=`` to the next call) and the Metropolis-Hastings log acceptance ratio."""
        return self._checked_transition(z, potential, step_size, energy, grad, self.adjusted)

    def _checked_transition(
        self,
        z: Tensor,
        potential: EnergyLike | None,
        step_size: Tensor | float | None,
        energy: Tensor | None,
        grad: Tensor | None,
        adjusted: bool,
    ) -> FullTransition:
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
    ) -> FullTransition:
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
    ) -> FullTransition:
        """Accepts or rejects per chain and computes the path log-weight increment.

        ``log_path_ratio`` is ``log q(z | z') - log q(z' | z)`` of the proposal (None for a
        symmetric one); it is the path increment of the unadjusted kernel.
        """
        finite = torch.isfinite(proposal_energy)
        log_ratio = energy - proposal_energy
        if log_path_ratio is not None:
            log_ratio = log_ratio + log_path_ratio
        log_ratio = torch.where(finite, log_ratio, -math.inf)
        if adjusted:
            log_uniform = -torch.empty_like(log_ratio).exponential_()
            # NaN compares False, so a NaN ratio (e.g. a non-finite gradient) is rejected.
            accepted = log_uniform < log_ratio
            log_weight = torch.where(accepted, proposal_energy - energy, 0.0)
        else:
            path = torch.zeros_like(energy) if log_path_ratio is None else log_path_ratio
            accepted = finite & torch.isfinite(path)
            # A proposal leaving the support ends the path: weight zero, state kept finite.
            log_weight = torch.where(accepted, path, -math.inf)
        new_grad = None
        if grad is not None and proposal_grad is not None:
            new_grad = _where_point(accepted, proposal_grad, grad)
        return FullTransition(
            z=_where_point(accepted, proposal, z),
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
        self._clear_cache()

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
            warmup_steps: number of adaptation steps before sampling.

        Raises:
            TypeError: when model arguments are passed; these kernels have no model.
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
        self._clear_cache()

    def _reset_run(self) -> None:
        self._t = 0
        self._phase_steps = 0
        self._accepted_count: Tensor | None = None
        self._accept_prob_sum: Tensor | None = None
        self._da_t = 0
        self._da_center: Tensor | None = None
        self._da_log_step: Tensor | None = None
        self._da_log_step_avg: Tensor | None = None
        self._da_error_avg: Tensor | None = None

    def _clear_cache(self) -> None:
        self._cached_z: Tensor | None = None
        self._cached_energy: Tensor | None = None
        self._cached_grad: Tensor | None = None

    def cleanup(self) -> None:
        """Drops the cached energy and gradient (Pyro protocol); diagnostics are kept."""
        self._clear_cache()

    @property
    def _adapting(self) -> bool:
        return self.adapt_step_size and self._t < self._warmup_steps

    def _start_adaptation(self, z: Tensor) -> None:
        batch = z.shape[:-1]
        step = _step_for(self.step_size, z)
        initial = torch.as_tensor(step, dtype=z.dtype, device=z.device)
        if initial.dim() > 0:
            initial = initial.squeeze(-1)
        log_step = torch.log(initial).expand(batch).clone()
        self._da_t = 0
        self._da_center = log_step + math.log(10.0)
        self._da_log_step = log_step
        self._da_log_step_avg = torch.zeros_like(log_step)
        self._da_error_avg = torch.zeros_like(log_step)
        self.step_size = log_step.exp()

    def _adapt(self, accept_prob: Tensor) -> None:
        assert self._da_center is not None and self._da_error_avg is not None
        assert self._da_log_step_avg is not None
        self._da_t += 1
        t = self._da_t
        rate = 1.0 / (t + _DA_T0)
        self._da_error_avg = (1.0 - rate) * self._da_error_avg + rate * (
            self.target_accept - accept_prob
        )
        self._da_log_step = self._da_center - (math.sqrt(t) / _DA_GAMMA) * self._da_error_avg
        weight = t ** (-_DA_KAPPA)
        self._da_log_step_avg = weight * self._da_log_step + (1.0 - weight) * self._da_log_step_avg
        self.step_size = self._da_log_step.exp()

    def end_warmup(self) -> None:
        """Fixes each chain's step size to its averaged adapted value (Pyro protocol).

        Called automatically after ``warmup_steps`` calls of :meth:`sample`.
        """
        if self._da_log_step_avg is not None and self._da_t > 0:
            self.step_size = self._da_log_step_avg.exp()
        self._da_center = self._da_log_step = None
        self._da_log_step_avg = self._da_error_avg = None
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
        if z is self._cached_z:
            energy, grad = self._cached_energy, self._cached_grad
        else:
            energy = grad = None
        if self._adapting and self._da_log_step is None:
            self._start_adaptation(z)
        if self._da_log_step is not None and self._da_log_step.shape != z.shape[:-1]:
            raise ValueError(
                f"the chain shape changed during warmup: adapting {tuple(self._da_log_step.shape)}"
                f" chains, got a state of shape {tuple(z.shape)}"
            )
        # Unadjusted kernels stay adjusted during warmup: a too-large trial step would
        # otherwise send chains off to infinity, where no adaptation can bring them back.
        adjusted = self.adjusted or self._adapting
        out = self._checked_transition(z, None, None, energy, grad, adjusted)
        accept_prob = out.log_accept_ratio.clamp(max=0.0).exp().nan_to_num(nan=0.0)
        self._t += 1
        if self._da_log_step is not None:
            self._adapt(accept_prob)
        accepted = out.accepted.to(out.energy.dtype)
        if self._accepted_count is None or self._accept_prob_sum is None:
            self._accepted_count, self._accept_prob_sum = accepted, accept_prob
        else:
            self._accepted_count = self._accepted_count + accepted
            self._accept_prob_sum = self._accept_prob_sum + accept_prob
        self._phase_steps += 1
        if self._t == self._warmup_steps:
            self.end_warmup()
        self._cached_z, self._cached_energy, self._cached_grad = out.z, out.energy, out.grad
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
    ) -> FullTransition:
        if energy is None:
            energy = self._energy(potential, z)
        proposal = z + step * torch.randn_like(z)
        proposal_energy = self._energy(potential, proposal)
        return self._finish(z, energy, None, proposal, proposal_energy, None, None, adjusted)


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
    ) -> FullTransition:
        if energy is None or grad is None:
            energy, grad = potential.value_and_grad(z)
        noise_scale = _sqrt(2.0 * step)
        noise = torch.randn_like(z)
        proposal = z - step * grad + noise_scale * noise
        proposal_energy, proposal_grad = potential.value_and_grad(proposal)
        noise_back = (z - proposal + step * proposal_grad) / noise_scale
        log_path_ratio = 0.5 * (noise.square().sum(-1) - noise_back.square().sum(-1))
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
    ) -> FullTransition:
        if energy is None or grad is None:
            energy, grad = potential.value_and_grad(z)
        if self.jitter > 0.0:
            uniform = torch.rand(z.shape[:-1] + (1,), dtype=z.dtype, device=z.device)
            step = step * (1.0 + self.jitter * (2.0 * uniform - 1.0))
        momentum0 = torch.randn_like(z)
        momentum = momentum0 - (0.5 * step) * grad
        position = z
        for leap in range(self.num_steps):
            position = position + step * momentum
            proposal_energy, proposal_grad = potential.value_and_grad(position)
            kick = step if leap < self.num_steps - 1 else 0.5 * step
            momentum = momentum - kick * proposal_grad
        log_path_ratio = 0.5 * (momentum0.square().sum(-1) - momentum.square().sum(-1))
        return self._finish(
            z,
            energy,
            grad,
            position,
            proposal_energy,
            proposal_grad,
            log_path_ratio,
            adjusted,
        )
