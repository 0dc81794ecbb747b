"""Stochastic refinement between flow layers (Stochastic Normalizing Flows, GRU-SNF).

Sampling a :class:`snfseq.flows.ConditionalFlow` runs ``K`` invertible layers from base noise
``z`` to data ``x``. A :class:`Refinement` inserts MCMC blocks after chosen layers: block ``j``
runs ``steps`` transitions of a kernel from :mod:`snfseq.kernels` on the intermediate variable,
leaving the energy ``u_j`` invariant, with ``u_j`` interpolating from the base energy
``u_Z = |y|^2 / 2`` to the target ``u_X`` as ``lambda_j`` goes from 0 to 1.

Every path carries the log importance weight of Wu, Koehler & Noe (2020)::

    log w = -u_X(x) + u_Z(z) + sum_layers log|det J| + sum_blocks dS

with ``dS = u_j(y_out) - u_j(y_in)`` for Metropolis-adjusted kernels and the forward/backward
noise terms for unadjusted Langevin or HMC steps. Self-normalised, the weights turn averages
over samples into consistent estimates under ``exp(-u_X)``, whatever the intermediate
energies; good intermediate energies keep the weights even (Kish ESS close to S).

Intermediate energies, ``intermediate=``:

* ``"interpolate"`` (cheap, as published): ``u_j(y) = (1 - lam) u_Z(y) + lam u_X(y)``
  evaluated on the intermediate variable itself, as though it already were data.
* ``"pullback"`` (principled, one flow pass per energy): the flow's own density at that layer
  interpolated with the target pulled back through the remaining layers,
  ``u_j(y) = (1 - lam) [-log q_j(y)] + lam [u_X(f(y)) - log|det df/dy|]``.

Targets, ``prior=``:

* ``"normal"`` (as published): the target ``u_X`` replaces the flow's density; blocks
  anneal from ``N(0, I)`` to it (e.g. a Gaussian around the trained point head).
* ``"flow"``: the target is the flow's own forecast tilted by ``u``, ``q(x) exp(-u(x))``: a
  prior (the model) times a likelihood (what is known: :class:`Observations` of part of a
  frame, :class:`snfseq.energy.Distances` of a skeleton), i.e. a posterior forecast. Blocks
  target the tempered posteriors ``q exp(-lam u)``; placed on the base noise
  (``after=[-1] * J``) they run where the flow makes the prior a standard normal.

Where things live: ``chains.py`` runs a kernel on many chains (:func:`run_chain`, the one
loop every block, forecast and diagnostic run goes through) and records it (:class:`Trace`);
``targets.py`` holds what a forecast step's target is built from (:class:`ForecastStep`,
:class:`AffineMap`); ``refinement.py`` the configuration and the block loop
(:class:`Refinement`); ``sampler.py`` refined sampling of any flow (:func:`sample`).

Example:
    >>> import torch
    >>> from snfseq.flows import build_flow
    >>> from snfseq.energy import Gaussian
    >>> flow = build_flow("realnvp", features=2, transforms=3, hidden=(8,))
    >>> result = sample(flow, Gaussian(torch.tensor([1.0, -1.0])), Refinement(), num_samples=64)
    >>> result.samples.shape, result.log_weights.shape
    (torch.Size([64, 2]), torch.Size([64]))
"""

from snfseq.snf.chains import Chain, Trace, run_chain
from snfseq.snf.refinement import KERNELS, Refinement, RefinementResult
from snfseq.snf.sampler import SNFSample, sample
from snfseq.snf.targets import AffineMap, ForecastStep, Observations

__all__ = [
    "KERNELS",
    "AffineMap",
    "Chain",
    "ForecastStep",
    "Observations",
    "Refinement",
    "RefinementResult",
    "SNFSample",
    "Trace",
    "run_chain",
    "sample",
]
