"""Diagnostic chains: independent runs of a kernel, long enough for R-hat and ESS.

:func:`sample_chains` runs chains of any kernel on any energy; :func:`run_chains` runs the
chains of every refinement block of a trained model at the first forecast step of each
series. Both run chains through :func:`snfseq.snf.run_chain`, the loop every refinement
runs, and return an ArviZ ``DataTree`` (:mod:`snfseq.diagnostics.convert`) for
:func:`~snfseq.diagnostics.summary` and the plots of :mod:`snfseq.plots`.
"""

from __future__ import annotations

__all__ = ["run_chains", "sample_chains"]

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from snfseq import energy as energies
from snfseq.diagnostics.convert import _feature_coords, _numpy, _trace_tree, _tree
from snfseq.runtime import evaluating, seeded
from snfseq.snf import run_chain

if TYPE_CHECKING:
    from snfseq.kernels import Kernel
    from snfseq.model import SequenceFlow
    from snfseq.snf import Refinement


def _check_counts(**counts: int) -> None:
    for name, value in counts.items():
        low = 0 if name == "num_warmup" else 1
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


@torch.no_grad()
def sample_chains(
    kernel: Kernel,
    energy: energies.EnergyLike | None,
    init: Tensor,
    num_draws: int,
    *,
    num_warmup: int = 0,
    step_size: Tensor | float | None = None,
    seed: int | None = None,
    dims: Sequence[str] | None = None,
    feature_names: Sequence[str] | None = None,
    var_name: str = "z",
) -> xr.DataTree:
    """Runs independent chains of any kernel on any energy and returns them as a DataTree.

    Every leading index of ``init`` is one chain; ``init[c]`` is chain ``c``'s start (draw
    several chains from an overdispersed start for a meaningful R-hat). The step size stays
    fixed: warmup only discards transitions (adapt step sizes beforehand, e.g. with Pyro's
    runner, when wanted).

    Args:
        kernel: A kernel of :mod:`snfseq.kernels`.
        energy: The energy ``u`` (target ``exp(-u)``); None uses ``kernel.potential``.
        init: Starting states ``Tensor[C, *B, D]``: ``C`` chains for each of the positions
            ``B`` (any number of batch dims, each an independent target when the energy is
            batched).
        num_draws: Transitions recorded per chain ``N``.
        num_warmup: Transitions run and discarded first.
        step_size: Float or per-chain ``Tensor[C, *B]``; None uses ``kernel.step_size``.
        seed: Makes the run reproducible (the global RNG is left as it was).
        dims: Names of the batch dims ``B`` (default ``batch_0``, ``batch_1``...).
        feature_names: Names of the ``D`` features.
        var_name: Name of the state variable in the ``posterior`` group.

    Returns:
        ``DataTree`` with ``posterior[var_name]`` of dims ``(chain, draw, *dims, feature)``
        and ``sample_stats`` ``accepted``, ``energy`` (the potential ``u``, not ArviZ's
        Hamiltonian energy) and ``step_size``, each ``(chain, draw, *dims)``; the wall time
        of the run is ``posterior.attrs["sampling_time"]`` (seconds).

    Example:
        >>> import torch
        >>> from snfseq import kernels
        >>> from snfseq.energy import Gaussian
        >>> kernel = kernels.RandomWalkMetropolis(step_size=0.8, adapt_step_size=False)
        >>> init = torch.randn(4, 2, 3)
        >>> tree = sample_chains(kernel, Gaussian(torch.ones(3)), init, 50, dims=["series"])
        >>> tree["posterior"]["z"].dims
        ('chain', 'draw', 'series', 'feature')
    """
    _check_counts(num_draws=num_draws, num_warmup=num_warmup)
    if not isinstance(init, Tensor) or init.dim() < 2 or not init.is_floating_point():
        raise ValueError("init must be a floating-point Tensor[C, *B, D] (chains first)")
    potential = kernel.potential if energy is None else energies.as_energy(energy)
    if potential is None:
        raise ValueError("give an energy, or a kernel built with a potential")
    batch = init.dim() - 2
    names = [f"batch_{i}" for i in range(batch)] if dims is None else list(dims)
    if len(names) != batch:
        raise ValueError(f"dims has {len(names)} names for the {batch} batch dims of init")
    with seeded(seed, [init.device]):
        start = time.perf_counter()
        chain = run_chain(
            kernel, potential, init, num_draws, num_warmup=num_warmup, step_size=step_size
        )
        elapsed = time.perf_counter() - start
    assert chain.states is not None and chain.energies is not None and chain.accepted is not None
    states, energy_record, accepted = chain.states, chain.energies, chain.accepted
    step = kernel.step_size if step_size is None else step_size
    steps = torch.as_tensor(step, dtype=energy_record.dtype).cpu().expand(energy_record.shape)
    order = [1, 0, *range(2, energy_record.dim())]  # [T, C, *B] -> [C, T, *B]
    sample_dims = ["chain", "draw", *names]
    coords: dict[str, Any] = {
        "feature": _feature_coords(init.shape[-1], feature_names),
        **{name: np.arange(size) for name, size in zip(names, init.shape[1:-1], strict=True)},
    }
    return _tree(
        var_name,
        _numpy(states).transpose(*order, energy_record.dim()),
        [*names, "feature"],
        {
            "accepted": (sample_dims, _numpy(accepted).transpose(order)),
            "energy": (sample_dims, _numpy(energy_record).transpose(order)),
            "step_size": (sample_dims, _numpy(steps).transpose(order)),
        },
        coords,
        attrs={"sampling_time": elapsed, "kernel": type(kernel).__name__},
    )


@torch.no_grad()
def run_chains(
    model: SequenceFlow,
    context: Tensor | np.ndarray,
    refinement: Refinement,
    *,
    num_chains: int = 4,
    num_draws: int = 200,
    num_warmup: int = 0,
    seed: int | None = None,
    feature_names: Sequence[str] | None = None,
    covariates: Tensor | np.ndarray | None = None,
) -> xr.DataTree:
    """Diagnostic chains of every refinement block at the first forecast step of each series.

    These are the chains a forecast runs, from the same code: ``model.first_step`` builds the
    condition and the target exactly as :meth:`~snfseq.SequenceFlow.forecast` does at its
    first step, and :meth:`Refinement.run <snfseq.Refinement.run>` (the one refinement loop)
    runs every block, here recording ``num_draws`` transitions after ``num_warmup`` instead
    of only the ``refinement.steps`` it hands on. ``num_chains`` flow draws per series are
    the chains; all chains of all series move as one tensor. With ``num_warmup=0``,
    ``num_draws=refinement.steps``, ``num_chains=S`` and the same seed, the chains are draw
    for draw those of ``model.forecast(context, num_samples=S, refinement=refinement,
    record_trace=True)`` at its first step.

    The chains reaching block ``j`` are started the way the sampler starts it: each carries
    on from its state after the earlier blocks' ``refinement.steps`` transitions (not after
    the diagnostic run's ``num_draws``), so every block is diagnosed from the distribution it
    meets when forecasting. States are the intermediate flow variable ``y`` in the flow's
    standardised space, not data units.

    Args:
        model: A trained :class:`~snfseq.SequenceFlow`.
        context: Observed frames ``Tensor[B, T, D]`` (or ``[T, D]``) in data units.
        refinement: The refinement to diagnose (a valid kernel: not ``faithful=True``).
        num_chains: Chains per series and block ``C``.
        num_draws: Recorded transitions per chain ``N``.
        num_warmup: Transitions run and discarded before recording (step sizes stay those of
            the refinement).
        seed: Makes the run reproducible (the global RNG is left as it was).
        feature_names: Names of the ``D`` features.
        covariates: For a model with covariates, ``Tensor[B, T + 1, K]``: the context's and
            the first forecast frame's (as :meth:`~snfseq.SequenceFlow.first_step` takes them).

    Returns:
        ``DataTree``: ``posterior["y"]`` with dims ``(chain, draw, block, series, feature)``
        (``block`` numbered, with ``layer``, the sampling step after which it runs, and
        ``lam`` as coordinates), ``sample_stats`` ``accepted``, ``energy`` (the block
        potential ``u_j``) and ``step_size`` with dims ``(chain, draw, block, series)``.
        The wall time of the whole run is ``posterior.attrs["sampling_time"]`` (seconds).

    Example:
        >>> import torch
        >>> from snfseq import SequenceFlow, Refinement
        >>> windows = torch.randn(32, 8, 4).cumsum(1)
        >>> model = SequenceFlow(features=4, hidden=8, layers=1, transforms=2, flow_hidden=(8,))
        >>> _ = model.fit(windows, context=4, epochs=1, progress=False)
        >>> tree = run_chains(model, windows[:3, :4], Refinement.paper(), num_draws=20, seed=0)
        >>> dict(tree["posterior"].sizes)
        {'chain': 4, 'draw': 20, 'block': 2, 'series': 3, 'feature': 4}
    """
    _check_counts(num_chains=num_chains, num_draws=num_draws, num_warmup=num_warmup)
    if refinement.faithful:
        raise ValueError(
            "a faithful=True refinement accepts per coordinate, which is not a valid Metropolis "
            "kernel: its chains have no stationary target to diagnose; use faithful=False"
        )
    if not refinement.blocks(model.flow.num_layers):
        raise ValueError("the refinement runs no block (after=[]): there are no chains to run")
    c, step = model.first_step(context, num_chains, covariates)
    with seeded(seed, [c.device]), evaluating(model):
        start = time.perf_counter()
        z = torch.randn(c.shape[0], model.features, device=c.device, dtype=step.yhat.dtype)
        result = refinement.run(
            model.flow,
            z,
            c,
            step=step,
            batch_shape=step.batch_shape,
            record=True,
            num_draws=num_draws,
            num_warmup=num_warmup,
        )
        elapsed = time.perf_counter() - start
    assert result.trace is not None
    tree = _trace_tree(result.trace, {}, ["series"], feature_names)
    posterior = tree["posterior"].to_dataset()
    posterior.attrs.update(
        sampling_time=elapsed,
        kernel=refinement.kernel,
        steps_per_block=refinement.steps,
        num_warmup=num_warmup,
        target=refinement.target if isinstance(refinement.target, str) else "custom",
        intermediate=refinement.intermediate,
    )
    tree["posterior"] = posterior
    return tree
