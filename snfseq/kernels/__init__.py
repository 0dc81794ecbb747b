"""Vectorized MCMC kernels: every leading index of the state is its own chain.

:class:`RandomWalkMetropolis`, :class:`MALA` and :class:`HMC` (and, for comparison only, the
published :class:`PerCoordinateMetropolis`) move a state ``Tensor[..., D]``
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

:class:`ChEESHMC` is HMC for many short chains: one step size and one trajectory length,
shared by all chains and adapted across them during warmup (Hoffman, Radul and Sountsov 2021),
see :mod:`snfseq.kernels.chees`.

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

from snfseq.kernels.adaptation import DualAveraging
from snfseq.kernels.base import FullTransition, Kernel, Transition
from snfseq.kernels.chees import ChEESAdaptation, ChEESHMC
from snfseq.kernels.gradient import HMC, MALA
from snfseq.kernels.metropolis import PerCoordinateMetropolis, RandomWalkMetropolis

__all__ = [
    "HMC",
    "ChEESAdaptation",
    "ChEESHMC",
    "MALA",
    "DualAveraging",
    "FullTransition",
    "Kernel",
    "PerCoordinateMetropolis",
    "RandomWalkMetropolis",
    "Transition",
]
