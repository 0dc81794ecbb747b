"""ChEES-HMC: one step size and one trajectory length for many chains, adapted across chains.

Hoffman, Radul and Sountsov (2021), "An Adaptive MCMC Scheme for Setting Trajectory Lengths in
Hamiltonian Monte Carlo", as TFP's ``GradientBasedTrajectoryLengthAdaptation`` and BlackJAX's
``chees_adaptation`` implement it. During warmup, after each transition of all chains:

* the step size ``eps`` follows dual averaging
  (:class:`~snfseq.kernels.adaptation.DualAveraging`) on the harmonic mean over chains of the
  acceptance probabilities, aimed at 0.651 (harmonic, so that a few stuck chains pull the
  step down);
* the trajectory length ``T`` follows Adam on ``log T`` (``beta1 = 0``, ``beta2 = 0.95``,
  updates clipped to +-0.35) up the gradient of the ChEES criterion
  ``E[(|x' - E x'|^2 - |x - E x|^2)^2] / 4``, whose expectations are means over chains.

Each transition runs ``ceil(u T / eps)`` leapfrog steps, ``u`` the next point of the base-2
Halton sequence. After warmup ``eps`` and ``T`` are frozen at their averaged iterates, and the
kernel is HMC with a number of leapfrog steps chosen independently of the state, which leaves
the target invariant.

Why one ``u`` for all chains, and ``eps`` and ``T`` as Python floats: the number of leapfrog
steps is then a Python int known on the host before the step, so a transition launches exactly
the leapfrog steps it needs and reads nothing from the device. A ``u`` per chain would need
the longest trajectory run for every chain, the finished ones frozen by a mask: about twice
the gradient evaluations for ``u ~ U(0, 1)``. The Halton sequence is deterministic, so sharing
it does not couple the chains. The price is in warmup only: each update needs two numbers
computed on the device (the mean acceptance and the criterion's gradient), read with one
``.tolist()`` per warmup transition, as Pyro's own HMC adaptation reads its step size.
Sampling and :meth:`~snfseq.kernels.Kernel.transition` never read tensor values.

Example:
    >>> import torch
    >>> from snfseq.energy import Gaussian
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> kernel = ChEESHMC(Gaussian(torch.zeros(2), torch.tensor([0.1, 2.0])), step_size=0.01,
    ...                   trajectory_length=0.05)
    >>> kernel.setup(warmup_steps=300)
    >>> state = {"z": torch.zeros(500, 2)}
    >>> for _ in range(300):
    ...     state = kernel.sample(state)
    >>> 0.5 < kernel.trajectory_length < 8.0, 0.05 < kernel.step_size < 0.2
    (True, True)
"""

from __future__ import annotations

__all__ = ["ChEESAdaptation", "ChEESHMC", "chees_gradient", "halton"]

import math
from collections import OrderedDict
from typing import Any

import torch
from torch import Tensor

from snfseq.energy import Energy, EnergyLike
from snfseq.kernels.adaptation import DualAveraging
from snfseq.kernels.base import Transition
from snfseq.kernels.gradient import HMC

#: Clip of one update of ``log T`` (TFP's value, about ``log(2) / 2``).
LOG_UPDATE_CLIP = 0.35


def halton(index: int) -> float:
    """Point ``index`` (from 0) of the base-2 Halton (van der Corput) sequence, in ``(0, 1)``.

    Successive points fill ``(0, 1)`` evenly, which lowers the variance of the trajectory-length
    gradient against uniform draws (Hoffman et al. 2021).

    Example:
        >>> [halton(i) for i in range(5)]
        [0.5, 0.25, 0.75, 0.125, 0.625]
    """
    n, scale, point = index + 1, 0.5, 0.0
    while n:
        point += scale * (n & 1)
        n >>= 1
        scale *= 0.5
    return point


def chees_gradient(
    initial: Tensor, proposal: Tensor, momentum: Tensor, accept_prob: Tensor
) -> Tensor:
    """Time derivative of the ChEES criterion as each proposal moves along its velocity.

    Per chain, with ``x`` centred by the mean over chains of ``initial`` and ``x'`` by the
    acceptance-weighted mean of ``proposal`` (as TFP does), the derivative of
    ``(|x'|^2 - |x|^2)^2 / 4`` along ``dx'/dt = momentum`` is
    ``(|x'|^2 - |x|^2) <x', momentum>``; chains are averaged with weights ``accept_prob``.
    Chains with a non-finite proposal or derivative get weight zero. Multiply by the jittered
    trajectory length ``u T`` for the gradient in ``log T``.

    Args:
        initial: States before the transition, ``Tensor[..., D]`` (leading dims: chains).
        proposal: Trajectory ends, ``Tensor[..., D]``.
        momentum: Momenta there, ``Tensor[..., D]``.
        accept_prob: Metropolis acceptance probabilities, ``Tensor[...]``, in ``[0, 1]``.

    Returns:
        The weighted mean derivative, ``Tensor[]`` (no device read).

    Example:
        >>> import torch
        >>> x = torch.tensor([[1.0], [-1.0]])
        >>> chees_gradient(x, 2 * x, x, torch.ones(2))  # moving outwards grows the square
        tensor(6.)
    """
    dim = initial.shape[-1]
    start = initial.reshape(-1, dim)
    end = proposal.reshape(-1, dim)
    velocity = momentum.reshape(-1, dim)
    finite = torch.isfinite(end).all(-1) & torch.isfinite(velocity).all(-1)
    weight = torch.where(finite, accept_prob.reshape(-1), 0.0)
    end = torch.where(finite.unsqueeze(-1), end, 0.0)
    velocity = torch.where(finite.unsqueeze(-1), velocity, 0.0)
    # A tiny floor keeps an all-rejected step at gradient 0 instead of 0 / 0.
    total = weight.sum() + 1e-20
    start = start - start.mean(0)
    end = end - (weight.unsqueeze(-1) * end).sum(0) / total
    change = end.square().sum(-1) - start.square().sum(-1)
    per_chain = change * (end * velocity).sum(-1)
    per_chain = torch.where(torch.isfinite(per_chain), per_chain, 0.0)
    return (weight * per_chain).sum() / total


class ChEESAdaptation:
    """The cross-chain adaptation's state, on the host: one step size, one trajectory length.

    Step size by dual averaging on a mean acceptance probability; ``log T`` by Adam on the
    ChEES gradient, kept within ``[eps, max_leapfrog_steps * eps]``; the values to sample with
    are the averaged iterates (weights ``t^-0.5`` for ``log T``, as TFP and BlackJAX).

    Args:
        target_accept: The (harmonic) mean acceptance probability aimed at.
        learning_rate: Adam's learning rate on ``log T``.
        betas: Adam's decay rates of the gradient's first and second moments.
        max_leapfrog_steps: Upper bound of ``T / eps``.

    Example:
        >>> adapt = ChEESAdaptation(0.65)
        >>> adapt.start(step_size=0.1, trajectory_length=1.0)
        >>> for _ in range(10):  # all accepted, the criterion grows with T
        ...     step, length = adapt.update(accept_prob=1.0, gradient=1.0)
        >>> step > 0.1, length > 1.0
        (True, True)
        >>> step, length = adapt.final()
    """

    def __init__(
        self,
        target_accept: float,
        *,
        learning_rate: float = 0.025,
        betas: tuple[float, float] = (0.0, 0.95),
        max_leapfrog_steps: int = 1000,
    ) -> None:
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate}")
        if not all(0.0 <= beta < 1.0 for beta in betas):
            raise ValueError(f"betas must lie in [0, 1), got {betas}")
        self.step_size_adaptation = DualAveraging(target_accept)
        self.learning_rate = float(learning_rate)
        self.betas = betas
        self.max_leapfrog_steps = int(max_leapfrog_steps)
        self.reset()

    def reset(self) -> None:
        """Forgets the run."""
        self.step_size_adaptation.reset()
        self.step_size = math.nan
        self.log_length = self.log_length_avg = math.nan
        self.t = self._adam_t = 0
        self._moment = self._square_moment = 0.0

    @property
    def active(self) -> bool:
        """Whether :meth:`start` was called since the last :meth:`reset`."""
        return math.isfinite(self.step_size)

    def start(self, step_size: float, trajectory_length: float) -> None:
        """Starts adapting from these values."""
        self.reset()
        self.step_size_adaptation.start(torch.tensor(step_size, dtype=torch.float64))
        self.step_size = float(step_size)
        self.log_length = self.log_length_avg = math.log(trajectory_length)

    def update(self, accept_prob: float | None, gradient: float | None) -> tuple[float, float]:
        """One update; None leaves that parameter alone.

        Args:
            accept_prob: The mean acceptance probability of the last transition.
            gradient: The ChEES gradient in ``log T`` of the last transition.

        Returns:
            ``(step_size, trajectory_length)`` for the next transition.
        """
        if not self.active:
            raise RuntimeError("call start() before update()")
        self.t += 1
        if accept_prob is not None:
            new_step = self.step_size_adaptation.update(
                torch.tensor(accept_prob, dtype=torch.float64)
            )
            self.step_size = float(new_step)
        if gradient is not None and math.isfinite(gradient):
            # Adam, ascending: ChEES is maximised.
            beta1, beta2 = self.betas
            self._adam_t += 1
            self._moment = beta1 * self._moment + (1 - beta1) * gradient
            self._square_moment = beta2 * self._square_moment + (1 - beta2) * gradient**2
            moment = self._moment / (1 - beta1**self._adam_t)
            square = self._square_moment / (1 - beta2**self._adam_t)
            change = self.learning_rate * moment / math.sqrt(square + 1e-20)
            self.log_length += min(max(change, -LOG_UPDATE_CLIP), LOG_UPDATE_CLIP)
        self.log_length = self._clip(self.log_length, self.step_size)
        weight = self.t**-0.5
        self.log_length_avg = weight * self.log_length + (1 - weight) * self.log_length_avg
        return self.step_size, math.exp(self.log_length)

    def final(self) -> tuple[float, float]:
        """The averaged ``(step_size, trajectory_length)`` to sample with."""
        averaged = self.step_size_adaptation.final_step()
        step = self.step_size if averaged is None else float(averaged)
        return step, math.exp(self._clip(self.log_length_avg, step))

    def _clip(self, log_length: float, step_size: float) -> float:
        # At least one leapfrog step: below it T no longer sets the trajectory.
        low = math.log(step_size)
        return min(max(log_length, low), low + math.log(self.max_leapfrog_steps))


class ChEESHMC(HMC):
    """HMC whose step size and trajectory length are shared by all chains and adapted across
    them during warmup (ChEES-HMC); see :mod:`snfseq.kernels.chees`.

    Each transition draws ``u`` from the Halton sequence (one for all chains) and runs
    ``ceil(u * trajectory_length / step_size)`` leapfrog steps. Warmup (``setup(warmup_steps)``
    then :meth:`sample`, or ``pyro.infer.mcmc.MCMC``) adapts both values; after it they stay
    fixed. The chains of a state are all its leading indices (at least two for adaptation).

    Args:
        potential: The energy; see :class:`~snfseq.kernels.Kernel`.
        step_size: Initial leapfrog step, a float (default 0.1): one for all chains.
        trajectory_length: Initial ``T`` (default 1.0, HMC's default 10 steps of 0.1).
        adapt_step_size: Adapt the step size during warmup.
        adapt_trajectory_length: Adapt ``T`` during warmup.
        target_accept: Harmonic mean acceptance aimed at (default 0.651).
        learning_rate: Adam's learning rate on ``log T`` (0.025, as TFP).
        max_leapfrog_steps: Most leapfrog steps of a trajectory.
        adjusted: Apply the Metropolis correction (warmup always does); see :class:`HMC`.

    Attributes:
        trajectory_length: The current ``T``, a float.
        num_steps: Leapfrog steps of the longest trajectory, ``ceil(T / eps)``.
        cross_chain_adaptation: The host-side :class:`ChEESAdaptation` of a warmup.

    Example:
        >>> import pyro, torch
        >>> from snfseq.energy import Gaussian
        >>> kernel = ChEESHMC(Gaussian(torch.zeros(3), torch.tensor([0.5, 1.0, 3.0])))
        >>> mcmc = pyro.infer.mcmc.MCMC(kernel, num_samples=20, warmup_steps=50,
        ...     initial_params={"z": torch.zeros(100, 3)}, disable_progbar=True)
        >>> mcmc.run()
        >>> mcmc.get_samples()["z"].shape
        torch.Size([20, 100, 3])
        >>> sorted(kernel.diagnostics())
        ['accept prob', 'acceptance rate', 'leapfrog steps', 'num steps', 'step size',
         'trajectory length']
    """

    default_step_size = 0.1
    default_target_accept = 0.651

    def __init__(
        self,
        potential: EnergyLike | None = None,
        step_size: float | None = None,
        *,
        trajectory_length: float = 1.0,
        adapt_step_size: bool = True,
        adapt_trajectory_length: bool = True,
        target_accept: float | None = None,
        learning_rate: float = 0.025,
        max_leapfrog_steps: int = 1000,
        adjusted: bool = True,
    ) -> None:
        if isinstance(step_size, Tensor):
            raise TypeError(
                "ChEESHMC shares one step size between all chains: pass a float, not a tensor"
            )
        if not trajectory_length > 0:
            raise ValueError(f"trajectory_length must be positive, got {trajectory_length}")
        if not isinstance(max_leapfrog_steps, int) or max_leapfrog_steps < 1:
            raise ValueError(f"max_leapfrog_steps must be a positive int, got {max_leapfrog_steps}")
        super().__init__(
            potential,
            step_size,
            adapt_step_size=adapt_step_size,
            target_accept=target_accept,
            adjusted=adjusted,
        )
        self.adapt_trajectory_length = adapt_trajectory_length
        self.max_leapfrog_steps = max_leapfrog_steps
        self.initial_trajectory_length = float(trajectory_length)
        self.cross_chain_adaptation = ChEESAdaptation(
            self.target_accept, learning_rate=learning_rate, max_leapfrog_steps=max_leapfrog_steps
        )
        self._jitter_index = self._leapfrog_steps = 0
        self._set(self._shared_step(), self.initial_trajectory_length)

    def _set(self, step_size: float, trajectory_length: float) -> None:
        self.step_size, self.trajectory_length = step_size, trajectory_length
        self.num_steps = self._leapfrog_count(1.0, step_size)

    def _shared_step(self) -> float:
        if isinstance(self.step_size, Tensor):
            raise TypeError("ChEESHMC.step_size must stay a float shared by all chains")
        return self.step_size

    def _leapfrog_count(self, jitter: float, step: float) -> int:
        count = math.ceil(jitter * self.trajectory_length / step)
        return min(max(count, 1), self.max_leapfrog_steps)

    def _next_jitter(self) -> float:
        # Like the random generator's state, the sequence index advances on every trajectory.
        jitter = halton(self._jitter_index)
        self._jitter_index += 1
        return jitter

    def _transition(
        self,
        z: Tensor,
        potential: Energy,
        step: Tensor | float,
        energy: Tensor | None,
        grad: Tensor | None,
        adjusted: bool,
    ) -> Transition:
        if isinstance(step, Tensor):
            raise ValueError(
                "ChEESHMC runs one trajectory for all chains and needs a float step size, "
                "not a tensor"
            )
        num_steps = self._leapfrog_count(self._next_jitter(), step)
        return self._trajectory(z, potential, step, energy, grad, adjusted, num_steps)[0]

    # ------------------------------------------------------------------ Pyro protocol

    def setup(self, warmup_steps: int, *args: Any, **kwargs: Any) -> None:
        """Starts a run (Pyro protocol): resets ``step_size``, ``trajectory_length``, the
        adaptation and the Halton sequence."""
        super().setup(warmup_steps, *args, **kwargs)
        self.cross_chain_adaptation.reset()
        self._jitter_index = self._leapfrog_steps = 0
        self._set(self._shared_step(), self.initial_trajectory_length)

    def end_warmup(self) -> None:
        """Freezes the step size and trajectory length at their averaged adapted values."""
        if self.cross_chain_adaptation.active:
            self._set(*self.cross_chain_adaptation.final())
            self.cross_chain_adaptation.reset()
        super().end_warmup()
        self._leapfrog_steps = 0

    def sample(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """One transition of every chain (Pyro protocol); adapts during warmup.

        Args:
            params: ``{name: Tensor[..., D]}``.

        Returns:
            ``{name: Tensor[..., D]}``, the new state.
        """
        name, z = self._unpack(params)
        if self.potential is None:
            raise ValueError("ChEESHMC has no potential: pass one to the constructor")
        last = self._last if self._last is not None and z is self._last.z else None
        adapting = self._t < self._warmup_steps and (
            self.adapt_step_size or self.adapt_trajectory_length
        )
        step = self._shared_step()
        if adapting and not self.cross_chain_adaptation.active:
            if z.shape[:-1].numel() < 2:
                raise ValueError(
                    f"ChEES adapts from statistics across chains and needs at least 2, got a "
                    f"state of shape {tuple(z.shape)}"
                )
            self.cross_chain_adaptation.start(step, self.trajectory_length)
        jitter = self._next_jitter()
        num_steps = self._leapfrog_count(jitter, step)
        with torch.no_grad():
            out, proposal, momentum = self._trajectory(
                z.detach(),
                self.potential,
                step,
                None if last is None else last.energy,
                None if last is None else last.grad,
                self.adjusted or adapting,
                num_steps,
            )
            assert out.log_accept_ratio is not None
            accept_prob = out.log_accept_ratio.clamp(max=0.0).exp().nan_to_num(nan=0.0)
            if adapting:
                # The harmonic mean is 0 when any chain's acceptance probability is.
                harmonic_mean = accept_prob.reciprocal().mean().reciprocal()
                gradient = chees_gradient(z, proposal, momentum, accept_prob)
                statistics = torch.stack([harmonic_mean, gradient])
        self._t += 1
        self._leapfrog_steps += num_steps
        if adapting:
            # The one device read of a warmup transition.
            mean_accept, time_gradient = statistics.tolist()
            log_length_gradient = jitter * self.trajectory_length * time_gradient
            self._set(
                *self.cross_chain_adaptation.update(
                    mean_accept if self.adapt_step_size else None,
                    log_length_gradient if self.adapt_trajectory_length else None,
                )
            )
        return self._counted(out, accept_prob, name)

    def logging(self) -> OrderedDict[str, float]:
        """The base kernel's progress-bar values and the trajectory length."""
        values = super().logging()
        values["traj. length"] = self.trajectory_length
        return values

    def diagnostics(self) -> dict[str, Any]:
        """The base kernel's diagnostics (:meth:`snfseq.kernels.Kernel.diagnostics`), with
        ``"trajectory length"`` (float) and ``"leapfrog steps"`` (int, the sampling phase's
        total, i.e. its gradient evaluations per chain)."""
        return {
            **super().diagnostics(),
            "trajectory length": self.trajectory_length,
            "leapfrog steps": self._leapfrog_steps,
        }
