"""ArviZ diagnostics of stochastic refinement: chains, R-hat, ESS, MCSE, acceptance, plots.

**What a chain is.** A refinement block ``j`` (after sampling step ``k`` of the flow, with
interpolation weight ``lam_j`` and step size ``eps_j``) is a Markov kernel that leaves its
block energy ``u_j`` invariant. For one forecast position (one series, one forecast step,
hence one context vector ``c`` and one point prediction ``yhat``) and one block, a *chain*
is a sequence of states of that kernel on ``exp(-u_j)``, started from an independent flow
draw. Several chains per position and block, run from independent starts under the same
energy, are what between-chain R-hat compares: if they disagree, the block has not forgotten
where it started. :func:`run_chains` builds these chains for the first forecast step of
every series, with ``num_chains`` a parameter of the diagnostic run.

A forecast's own trace (``model.forecast(..., record_trace=True)``) can be read the same way
(the ``S`` samples of one series are the chains, the ``M`` steps of a block the draws), but a
block runs only ``M`` steps (the paper runs 2), far too few draws for R-hat or ESS: use it
for acceptance rates and weights, and :func:`run_chains` for honest convergence diagnostics.

Everything becomes an ``xarray.DataTree`` in ArviZ layout (groups ``posterior`` and
``sample_stats``, sample dims ``chain`` and ``draw``), so arviz-stats and arviz-plots apply
directly; :func:`summary` and the ``plot_*`` functions wrap the common cases.

Example:
    >>> import torch
    >>> from snfseq import kernels
    >>> from snfseq.energy import StandardNormal
    >>> kernel = kernels.MALA(step_size=0.5, adapt_step_size=False)
    >>> tree = sample_chains(kernel, StandardNormal(), torch.randn(4, 3), num_draws=200, seed=0)
    >>> dict(tree["posterior"].sizes)
    {'chain': 4, 'draw': 200, 'feature': 3}
    >>> table = summary(tree).table
    >>> list(table.columns)
    ['r_hat_max', 'ess_bulk_min', 'ess_tail_min', 'mcse_mean_max', 'acceptance']
"""

from __future__ import annotations

__all__ = [
    "Summary",
    "plot_acceptance",
    "plot_fan",
    "plot_rank",
    "plot_trace",
    "run_chains",
    "sample_chains",
    "summary",
    "to_datatree",
]

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch import Tensor

from snfseq import energy as energies
from snfseq.forecast import Forecast, kish_ess

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from snfseq.kernels import Kernel
    from snfseq.model import SequenceFlow
    from snfseq.snf import Refinement, SNFSample, Trace

_SAMPLE_DIMS = ("chain", "draw")
_MIN_DRAWS = 4


# ---------------------------------------------------------------------- building trees


def _numpy(x: Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


def _tree(
    var_name: str,
    states: np.ndarray,
    state_dims: Sequence[str],
    stats: Mapping[str, tuple[Sequence[str], np.ndarray]],
    coords: Mapping[str, Any],
    block_coords: Mapping[str, np.ndarray] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> xr.DataTree:
    """ArviZ DataTree of ``states: [chain, draw, *state_dims]`` plus sample statistics.

    ``stats`` maps a name to ``(dims, values)``; values with both sample dims go through
    :func:`arviz_base.from_dict`, the others (e.g. a log-weight per chain) are added as they are.
    """
    import arviz_base

    sampled = {k: v for k, v in stats.items() if tuple(v[0][:2]) == _SAMPLE_DIMS}
    dims = {var_name: list(state_dims)} | {k: list(d[2:]) for k, (d, _) in sampled.items()}
    used = set(state_dims).union(*(d for d, _ in sampled.values()))
    tree = arviz_base.from_dict(
        {
            "posterior": {var_name: states},
            "sample_stats": {k: values for k, (_, values) in sampled.items()},
        },
        dims=dims,
        coords={k: v for k, v in coords.items() if k in used},
        check_conventions=False,
    )
    extra = {k: (tuple(d), v) for k, (d, v) in stats.items() if k not in sampled}
    for group in ("posterior", "sample_stats"):
        dataset = tree[group].to_dataset()
        if group == "sample_stats" and extra:
            dataset = dataset.assign(extra)
            dataset = dataset.assign_coords(
                {k: v for k, v in coords.items() if k in dataset.dims and k not in dataset.coords}
            )
        if block_coords is not None and "block" in dataset.dims:
            dataset = dataset.assign_coords({k: ("block", v) for k, v in block_coords.items()})
        if group == "posterior" and attrs:
            dataset.attrs.update(attrs)
        tree[group] = dataset
    return tree


def _feature_coords(features: int, feature_names: Sequence[str] | None) -> Any:
    if feature_names is None:
        return np.arange(features)
    names = list(feature_names)
    if len(names) != features:
        raise ValueError(f"feature_names has {len(names)} names for {features} features")
    return names


def _check_counts(**counts: int) -> None:
    for name, value in counts.items():
        low = 0 if name == "num_warmup" else 1
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _run_kernel(
    kernel: Kernel,
    potential: energies.Energy,
    init: Tensor,
    step_size: Tensor | float | None,
    num_warmup: int,
    num_draws: int,
    handoff: int = 0,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Runs every chain of ``init: Tensor[*N, D]`` at once.

    Returns ``(states: Tensor[T, *N, D], energies: Tensor[T, *N], accepted: Tensor[T, *N],
    handed_off: Tensor[*N, D])`` for the ``T = num_draws`` transitions after warmup, and the
    state after ``handoff`` transitions (more are run if needed; ``init`` when 0).
    """
    states, energy_record, accept_record = [], [], []
    z, energy, grad = init, None, None
    handed_off = init
    for step in range(max(num_warmup + num_draws, handoff)):
        move = kernel.full_transition(z, potential, step_size=step_size, energy=energy, grad=grad)
        z, energy, grad = move.z, move.energy, move.grad
        if step + 1 == handoff:
            handed_off = z
        if num_warmup <= step < num_warmup + num_draws:
            states.append(z)
            energy_record.append(energy)
            accept_record.append(move.accepted)
    return (
        torch.stack(states),
        torch.stack(energy_record),
        torch.stack(accept_record),
        handed_off,
    )


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

    Arguments:
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
    devices = [init.device] if init.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        start = time.perf_counter()
        states, energy_record, accepted, _ = _run_kernel(
            kernel, potential, init, step_size, num_warmup, num_draws
        )
        elapsed = time.perf_counter() - start
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
) -> xr.DataTree:
    """Diagnostic chains of every refinement block at the first forecast step of each series.

    For each series, ``c, yhat = model.condition_on(context)`` fix the block energies
    ``u_j = refinement.block_energy(flow, k, c, refinement.target_energy(yhat), lam_j)``.
    ``num_chains`` independent flow draws per series pass through the sampling steps; at each
    block ``j`` the chains run ``num_warmup + num_draws`` transitions of
    ``refinement.make_kernel()`` at the block's own step size, recording state, energy and
    accept flag of the last ``num_draws``. All chains of all series move as one tensor
    ``Tensor[C, B, D]``.

    The chains reaching block ``j`` are started the way the sampler starts it: each carries
    on from its state after the earlier blocks' ``refinement.steps`` transitions (not after
    the diagnostic run's ``num_draws``), so every block is diagnosed from the distribution it
    meets when forecasting. States are the intermediate flow variable ``y`` in the flow's
    standardised space, not data units.

    Arguments:
        model: A trained :class:`~snfseq.SequenceFlow`.
        context: Observed frames ``Tensor[B, T, D]`` (or ``[T, D]``) in data units.
        refinement: The refinement to diagnose (a valid kernel: not ``faithful=True``).
        num_chains: Chains per series and block ``C``.
        num_draws: Recorded transitions per chain ``N``.
        num_warmup: Transitions run and discarded before recording (step sizes stay those of
            the refinement).
        seed: Makes the run reproducible (the global RNG is left as it was).
        feature_names: Names of the ``D`` features.

    Returns:
        ``DataTree``: ``posterior["y"]`` with dims ``(chain, draw, block, series, feature)``
        (``block`` labelled by the sampling step after which it runs, with a ``lam``
        coordinate), ``sample_stats`` ``accepted``, ``energy`` (the block potential ``u_j``)
        and ``step_size`` with dims ``(chain, draw, block, series)``. The wall time of the
        whole run is ``posterior.attrs["sampling_time"]`` (seconds).

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
    flow = model.flow
    blocks = refinement.blocks(flow.num_layers)
    if not blocks:
        raise ValueError("the refinement runs no block (after=[]): there are no chains to run")
    lambdas = refinement.lambdas(len(blocks))
    sizes = refinement.step_sizes(len(blocks))
    kernel = refinement.make_kernel()
    c, yhat = model.condition_on(context)
    devices = [yhat.device] if yhat.device.type == "cuda" else []
    was_training = model.training
    model.eval()
    recorded: list[tuple[Tensor, Tensor, Tensor]] = []
    with torch.random.fork_rng(devices=devices, enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        start = time.perf_counter()
        target = refinement.target_energy(yhat)
        chain_context = c.expand(num_chains, *c.shape)
        y = torch.randn(num_chains, *yhat.shape, device=yhat.device, dtype=yhat.dtype)
        for k in range(flow.num_layers):
            y, _ = flow.inverse_layer(k, y, chain_context)
            if k not in blocks:
                continue
            j = blocks.index(k)
            potential = refinement.block_energy(flow, k, chain_context, target, float(lambdas[j]))
            states, energy, accepted, y = _run_kernel(
                kernel,
                potential,
                y,
                float(sizes[j]),
                num_warmup,
                num_draws,
                handoff=refinement.steps,
            )
            recorded.append((states, energy, accepted))
        elapsed = time.perf_counter() - start
    model.train(was_training)

    # [N, C, B(, D)] per block -> [C, N, J, B(, D)]
    chain_states, chain_energy, chain_accepted = (
        _numpy(torch.stack([r[i] for r in recorded], 2)).swapaxes(0, 1) for i in range(3)
    )
    step = np.broadcast_to(_numpy(sizes)[:, None], chain_energy.shape)
    stat_dims = ["chain", "draw", "block", "series"]
    return _tree(
        "y",
        chain_states,
        ["block", "series", "feature"],
        {
            "accepted": (stat_dims, chain_accepted),
            "energy": (stat_dims, chain_energy),
            "step_size": (stat_dims, step),
        },
        {
            "block": np.asarray(blocks),
            "series": np.arange(yhat.shape[0]),
            "feature": _feature_coords(yhat.shape[-1], feature_names),
        },
        block_coords={"lam": _numpy(lambdas)},
        attrs={
            "sampling_time": elapsed,
            "kernel": refinement.kernel,
            "steps_per_block": refinement.steps,
            "num_warmup": num_warmup,
            "target": refinement.target,
            "intermediate": refinement.intermediate,
        },
    )


def to_datatree(
    source: Forecast | SNFSample | Trace | xr.DataTree,
    *,
    dims: Sequence[str] | None = None,
    feature_names: Sequence[str] | None = None,
) -> xr.DataTree:
    """A refinement trace (of a forecast, an SNF sample, or bare) as an ArviZ DataTree.

    The ``S`` samples are the chains and the ``M`` steps of a block are the draws. That gives
    only ``M`` draws per chain (the paper runs 2): enough for acceptance rates, energies and
    weights, not for R-hat or ESS, for which :func:`run_chains` runs proper chains.

    Arguments:
        source: A :class:`~snfseq.Forecast` from ``model.forecast(..., record_trace=True)``,
            an :class:`~snfseq.snf.SNFSample` from ``snf.sample(..., record=True)``, a
            :class:`~snfseq.snf.Trace`, or a DataTree (returned unchanged).
        dims: Names of the batch dims after the sample axis (default ``series`` for one,
            else ``batch_0``, ``batch_1``...).
        feature_names: Names of the ``D`` features (default: the forecast's own, if any).

    Returns:
        ``DataTree``: ``posterior["y"]`` with dims ``(chain, draw, block, *dims, (time,)
        feature)`` (``time`` for a forecast, one per forecast step) holding the intermediate
        flow variable after each step, in the flow's standardised space; ``sample_stats``
        ``accepted``, ``energy`` and ``step_size`` over the same dims less ``feature``, and,
        when the source has weights, ``log_weight (chain, *dims)`` (whole path) and for a
        forecast ``step_log_weight (chain, *dims, time)``.

    Example:
        >>> import torch
        >>> from snfseq import snf
        >>> from snfseq.energy import Gaussian
        >>> from snfseq.flows import build_flow
        >>> flow = build_flow("realnvp", features=2, context=0, transforms=2, hidden=(8,))
        >>> result = snf.sample(flow, Gaussian(torch.ones(2)), snf.Refinement(), 16, record=True)
        >>> tree = to_datatree(result)
        >>> tree["posterior"]["y"].dims, tree["sample_stats"]["log_weight"].dims
        (('chain', 'draw', 'block', 'feature'), ('chain',))
    """
    from snfseq.snf import SNFSample, Trace

    if isinstance(source, xr.DataTree):
        return source
    weights: dict[str, Tensor] = {}
    if isinstance(source, Forecast):
        if source.trace is None:
            raise ValueError(
                "the forecast has no trace: forecast with record_trace=True, or run "
                "diagnostic chains with run_chains()"
            )
        trace = source.trace
        if feature_names is None:
            feature_names = source.feature_names
        if source.log_weights is not None:
            weights["log_weight"] = source.log_weights
        if source.step_log_weights is not None:
            weights["step_log_weight"] = source.step_log_weights
    elif isinstance(source, SNFSample):
        if source.trace is None:
            raise ValueError("the SNF sample has no trace: sample with record=True")
        trace = source.trace
        weights["log_weight"] = source.log_weights
    elif isinstance(source, Trace):
        trace = source
    else:
        raise TypeError(
            f"expected a Forecast, SNFSample, Trace or DataTree, got {type(source).__name__}"
        )
    return _trace_tree(trace, weights, dims, feature_names)


def _trace_tree(
    trace: Trace,
    weights: Mapping[str, Tensor],
    dims: Sequence[str] | None,
    feature_names: Sequence[str] | None,
) -> xr.DataTree:
    states, energy, accepted = (
        _numpy(trace.states),
        _numpy(trace.energies),
        _numpy(trace.accepted),
    )
    time_dims: list[str] = []
    if trace.has_time:
        # [H, J, M, S, *B(, D)] -> [J, M, S, *B, H(, D)]
        states = np.moveaxis(states, 0, -2)
        energy, accepted = np.moveaxis(energy, 0, -1), np.moveaxis(accepted, 0, -1)
        time_dims = ["time"]
    batch = energy.ndim - 3 - len(time_dims)
    if batch < 0:
        raise ValueError(f"a trace with energies of shape {trace.energies.shape} has no samples")
    if dims is None:
        names = ["series"] if batch == 1 else [f"batch_{i}" for i in range(batch)]
    else:
        names = list(dims)
        if len(names) != batch:
            raise ValueError(f"dims has {len(names)} names for the {batch} batch dims of the trace")
    # [J, M, S, ...] -> [S, M, J, ...]: samples are chains, steps of a block are draws.
    to_chains = ([2, 1, 0], [0, 1, 2])
    states = np.moveaxis(states, *to_chains)
    energy, accepted = np.moveaxis(energy, *to_chains), np.moveaxis(accepted, *to_chains)
    step_size = _numpy(trace.step_size).reshape(1, 1, -1, *([1] * (energy.ndim - 3)))
    stat_dims = ["chain", "draw", "block", *names, *time_dims]
    stats: dict[str, tuple[Sequence[str], np.ndarray]] = {
        "accepted": (stat_dims, accepted),
        "energy": (stat_dims, energy),
        "step_size": (stat_dims, np.broadcast_to(step_size, energy.shape)),
    }
    for name, values in weights.items():
        extra = time_dims if name == "step_log_weight" else []
        stats[name] = (["chain", *names, *extra], _numpy(values))
    sizes = dict(zip(stat_dims, energy.shape, strict=True))
    coords: dict[str, Any] = {name: np.arange(sizes[name]) for name in [*names, *time_dims]}
    coords["block"] = np.asarray(trace.blocks)
    coords["feature"] = _feature_coords(states.shape[-1], feature_names)
    return _tree(
        "y",
        states,
        ["block", *names, *time_dims, "feature"],
        stats,
        coords,
        block_coords={"lam": _numpy(trace.lam)},
    )


# ---------------------------------------------------------------------- summary

_TABLE_FORMATS = {
    "lam": "{:.2f}",
    "r_hat_max": "{:.3f}",
    "ess_bulk_min": "{:.0f}",
    "ess_tail_min": "{:.0f}",
    "mcse_mean_max": "{:.3g}",
    "acceptance": "{:.3f}",
    "kish_ess": "{:.1f}",
    "step_kish_ess": "{:.1f}",
}


@dataclass
class Summary:
    """Convergence diagnostics of a set of chains, per block (and series, time step).

    Attributes:
        table: One row per position (every combination of the dims other than ``chain``,
            ``draw`` and ``feature``, e.g. ``(block, series)``), with the block's ``lam``
            when known, ``r_hat_max`` (largest rank-normalised split R-hat over features),
            ``ess_bulk_min`` and ``ess_tail_min`` (smallest bulk and tail ESS),
            ``mcse_mean_max`` (largest Monte Carlo standard error of the mean),
            ``acceptance`` (accept rate over chains and draws), and, where the chains carry
            importance weights, ``kish_ess`` (Kish ESS of the whole-path weights over the
            chains, the same in every block row of a series) and ``step_kish_ess`` (of the
            weights of each forecast step).
        detail: One row per position and feature: ``mean``, ``sd``, ``r_hat``, ``ess_bulk``,
            ``ess_tail``, ``mcse_mean``, ``mcse_sd``.
        var_name: The variable summarised.
        num_chains: Chains ``C``.
        num_draws: Draws per chain ``N``.
    """

    table: pd.DataFrame
    detail: pd.DataFrame
    var_name: str
    num_chains: int
    num_draws: int

    @property
    def header(self) -> str:
        """One line saying what the table holds."""
        return (
            f"{self.var_name}: {self.num_chains} chains x {self.num_draws} draws "
            f"(rank-normalised split R-hat, bulk/tail ESS; max/min over features)"
        )

    def _formatters(self) -> dict[str, Any]:
        return {
            column: fmt.format for column, fmt in _TABLE_FORMATS.items() if column in self.table
        }

    def __str__(self) -> str:
        return f"{self.header}\n{self.table.to_string(formatters=self._formatters())}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return f"<p>{self.header}</p>" + self.table.to_html(formatters=self._formatters())


def _as_tree(data: Any) -> xr.DataTree:
    return data if isinstance(data, xr.DataTree) else to_datatree(data)


def _variable(tree: xr.DataTree, var_name: str | None) -> xr.DataArray:
    if "posterior" not in tree.children:
        raise ValueError("the DataTree has no 'posterior' group")
    posterior = tree["posterior"].to_dataset()
    if var_name is None:
        if len(posterior.data_vars) != 1:
            raise ValueError(
                f"the posterior holds {list(posterior.data_vars)}: choose one with var_name"
            )
        var_name = str(next(iter(posterior.data_vars)))
    if var_name not in posterior:
        raise ValueError(f"no variable {var_name!r} in the posterior ({list(posterior)})")
    values = posterior[var_name]
    missing = [d for d in _SAMPLE_DIMS if d not in values.dims]
    if missing:
        raise ValueError(f"{var_name!r} lacks the sample dims {missing}")
    return values.transpose(*_SAMPLE_DIMS, ...)


def summary(data: Any, *, var_name: str | None = None) -> Summary:
    """R-hat, bulk and tail ESS, MCSE, acceptance and weight ESS, per block and series.

    Uses arviz-stats (``rhat`` rank-normalised, ``ess`` bulk and tail, ``mcse``) over the
    ``chain`` and ``draw`` dims; every other dim except ``feature`` indexes a row of the
    table, so each refinement block of each series is judged on its own.

    Arguments:
        data: A DataTree from :func:`run_chains`, :func:`sample_chains` or
            :func:`to_datatree`, or anything :func:`to_datatree` accepts.
        var_name: The posterior variable (default: the only one).

    Returns:
        A :class:`Summary`; ``print`` it, or use ``.table`` / ``.detail`` (pandas).

    Warns:
        UserWarning: with fewer than 4 draws per chain (e.g. a forecast's own trace), when
            R-hat and ESS are undefined (NaN).

    Example:
        >>> import torch
        >>> from snfseq import kernels
        >>> from snfseq.energy import StandardNormal
        >>> kernel = kernels.HMC(step_size=0.3, num_steps=5, adapt_step_size=False)
        >>> init = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
        >>> tree = sample_chains(kernel, StandardNormal(), init, 100, seed=1)
        >>> result = summary(tree)
        >>> bool(result.table["r_hat_max"].iloc[0] < 1.05)
        True
        >>> list(result.detail.columns)
        ['mean', 'sd', 'r_hat', 'ess_bulk', 'ess_tail', 'mcse_mean', 'mcse_sd']
    """
    import arviz_stats

    tree = _as_tree(data)
    values = _variable(tree, var_name)
    var_name = str(values.name)
    num_chains, num_draws = values.sizes["chain"], values.sizes["draw"]
    if num_draws < _MIN_DRAWS:
        warnings.warn(
            f"{num_draws} draws per chain: R-hat and ESS need at least {_MIN_DRAWS} and are "
            f"NaN here (a forecast trace holds only the refinement's steps per block); run "
            f"diagnostic chains with run_chains()",
            UserWarning,
            stacklevel=2,
        )
    plain = values.reset_coords(drop=True)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        detail = xr.Dataset(
            {
                "mean": plain.mean(_SAMPLE_DIMS),
                "sd": plain.std(_SAMPLE_DIMS, ddof=1),
                "r_hat": arviz_stats.rhat(plain, method="rank"),
                "ess_bulk": arviz_stats.ess(plain, method="bulk"),
                "ess_tail": arviz_stats.ess(plain, method="tail"),
                "mcse_mean": arviz_stats.mcse(plain, method="mean"),
                "mcse_sd": arviz_stats.mcse(plain, method="sd"),
            }
        )
    position_dims = [str(d) for d in values.dims if d not in (*_SAMPLE_DIMS, "feature")]
    over = [d for d in ("feature",) if d in detail.dims]
    table = xr.Dataset(
        {
            "r_hat_max": detail["r_hat"].max(over, skipna=False),
            "ess_bulk_min": detail["ess_bulk"].min(over, skipna=False),
            "ess_tail_min": detail["ess_tail"].min(over, skipna=False),
            "mcse_mean_max": detail["mcse_mean"].max(over, skipna=False),
        }
    )
    stats = tree["sample_stats"].to_dataset() if "sample_stats" in tree.children else None
    if stats is not None and "accepted" in stats:
        accepted = stats["accepted"].astype(float).reset_coords(drop=True)
        table["acceptance"] = accepted.mean([d for d in accepted.dims if d not in position_dims])
    for name, column in (("log_weight", "kish_ess"), ("step_log_weight", "step_kish_ess")):
        if stats is None or name not in stats:
            continue
        log_weights = stats[name].reset_coords(drop=True).transpose("chain", ...)
        if not set(log_weights.dims[1:]) <= set(position_dims):
            continue
        ess = kish_ess(torch.as_tensor(log_weights.values, dtype=torch.float64))
        table[column] = xr.DataArray(ess.numpy(), dims=log_weights.dims[1:])
    if "lam" in values.coords and "block" in position_dims:
        table = table.assign_coords(lam=("block", values.coords["lam"].values))
    return Summary(
        table=_to_frame(table, position_dims),
        detail=_to_frame(detail, [*position_dims, *over]),
        var_name=var_name,
        num_chains=num_chains,
        num_draws=num_draws,
    )


def _to_frame(dataset: xr.Dataset, dims: Sequence[str]) -> pd.DataFrame:
    if not dims:
        return pd.DataFrame({k: [float(v)] for k, v in dataset.data_vars.items()})
    frame = dataset.to_dataframe(dim_order=list(dims))
    leading = [c for c in ("lam",) if c in frame.columns]
    return frame[leading + [c for c in frame.columns if c not in leading]]


# ---------------------------------------------------------------------- plots


def _arviz_plots() -> Any:
    import matplotlib.style

    # arviz-plots 0.8 registers its styles through ``matplotlib.style.core``, which
    # matplotlib 3.11 folded into ``matplotlib.style`` (same names): alias it for the import.
    if not hasattr(matplotlib.style, "core"):
        setattr(matplotlib.style, "core", matplotlib.style)  # noqa: B010
    import arviz_plots

    return arviz_plots


def _chain_colors() -> list[str]:
    # Hex strings: arviz-plots 0.8 reshapes the colour list and fails on the RGB tuples that
    # matplotlib >= 3.11 keeps in its property cycle.
    from matplotlib import rcParams
    from matplotlib.colors import to_hex

    return [to_hex(color) for color in rcParams["axes.prop_cycle"].by_key()["color"]]


def _positions(count: int, chosen: int | Sequence[int] | None, name: str) -> list[int]:
    if chosen is None:
        return list(range(count))
    picked = list(range(min(chosen, count))) if isinstance(chosen, int) else list(chosen)
    bad = [i for i in picked if not -count <= i < count]
    if bad or not picked:
        raise ValueError(f"{name}={chosen!r} does not select among {count} {name}")
    return picked


def _selection(
    data: Any,
    var_name: str | None,
    blocks: Sequence[int] | None,
    series: int,
    time: int,
    features: int | Sequence[int],
) -> xr.DataTree:
    values = _variable(_as_tree(data), var_name)
    picks: dict[str, list[int]] = {}
    for dim, chosen in (("block", blocks), ("series", [series]), ("time", [time])):
        if dim in values.dims:
            picks[dim] = _positions(values.sizes[dim], chosen, dim)
    if "feature" in values.dims:
        picks["feature"] = _positions(values.sizes["feature"], features, "feature")
    selected = values.isel(picks).reset_coords(drop=True)
    return xr.DataTree.from_dict({"posterior": selected.to_dataset()})


def _detached(figure: Figure) -> Figure:
    import matplotlib.pyplot as plt

    # Figures are made through pyplot, which sets up a notebook's inline display, and then
    # detached from it, so that a notebook shows the returned figure once and nothing leaks.
    plt.close(figure)
    return figure


def _new_figure(**options: Any) -> Figure:
    import matplotlib.pyplot as plt

    return _detached(plt.figure(**options))


def _arviz_figure(plot: str, subset: xr.DataTree) -> Figure:
    collection = getattr(_arviz_plots(), plot)(subset, backend="matplotlib", color=_chain_colors())
    return _detached(collection.viz["figure"].item())


def plot_trace(
    data: Any,
    *,
    blocks: Sequence[int] | None = None,
    series: int = 0,
    time: int = 0,
    features: int | Sequence[int] = 2,
    var_name: str | None = None,
) -> Figure:
    """Trace plot (state against draw, one colour per chain) through ``arviz_plots.plot_trace``.

    Arguments:
        data: A DataTree of chains or anything :func:`to_datatree` accepts.
        blocks: Positions of the blocks to show (default all).
        series: Position of the series to show.
        time: Position of the forecast step to show (forecast traces only).
        features: How many leading features to show, or their positions.
        var_name: The posterior variable (default: the only one).

    Returns:
        A matplotlib ``Figure``, one panel per block and feature.
    """
    return _arviz_figure("plot_trace", _selection(data, var_name, blocks, series, time, features))


def plot_rank(
    data: Any,
    *,
    blocks: Sequence[int] | None = None,
    series: int = 0,
    time: int = 0,
    features: int | Sequence[int] = 2,
    var_name: str | None = None,
) -> Figure:
    """Rank plot (fractional-rank ECDF difference per chain, with a 99% envelope) through
    ``arviz_plots.plot_rank``: chains sampling one distribution stay inside the envelope.

    Arguments are those of :func:`plot_trace`.

    Returns:
        A matplotlib ``Figure``, one panel per block and feature.
    """
    return _arviz_figure("plot_rank", _selection(data, var_name, blocks, series, time, features))


def plot_acceptance(data: Any) -> Figure:
    """Acceptance rate and energy of every refinement block.

    Left: the accept rate per block (bar: over everything; dots: per chain). Right: the
    energy ``u_j`` against the draw, median over chains and positions with the 25-75% band,
    one line per block; a trend means the chains have not reached their target yet.

    Arguments:
        data: A DataTree with ``sample_stats`` ``accepted`` and ``energy``, or anything
            :func:`to_datatree` accepts.

    Returns:
        A matplotlib ``Figure``.
    """
    tree = _as_tree(data)
    if "sample_stats" not in tree.children:
        raise ValueError("the DataTree has no 'sample_stats' group")
    stats = tree["sample_stats"].to_dataset()
    missing = [name for name in ("accepted", "energy") if name not in stats]
    if missing:
        raise ValueError(f"sample_stats lacks {missing}")
    if "block" not in stats.dims:
        stats = stats.expand_dims(block=[0])
    accepted = stats["accepted"].astype(float)
    per_chain = (
        accepted.mean([d for d in accepted.dims if d not in ("chain", "block")])
        .transpose("block", "chain")
        .values
    )
    energy = stats["energy"]
    pooled = energy.stack(pooled=[d for d in energy.dims if d not in ("draw", "block")])
    low, median, high = (
        pooled.quantile(q, dim="pooled").transpose("block", "draw").values
        for q in (0.25, 0.5, 0.75)
    )
    labels = [str(b) for b in stats["block"].values]
    if "lam" in stats.coords:
        labels = [f"{b}\nlam={lam:.2f}" for b, lam in zip(labels, stats["lam"].values, strict=True)]

    figure = _new_figure(figsize=(11, 3.8), layout="constrained")
    rate_axis, energy_axis = figure.subplots(1, 2)
    x = np.arange(len(labels))
    rate_axis.bar(x, per_chain.mean(1), color="C0", alpha=0.4, label="all chains")
    jitter = np.linspace(-0.25, 0.25, per_chain.shape[1]) if per_chain.shape[1] > 1 else [0.0]
    rate_axis.scatter(
        (x[:, None] + np.asarray(jitter)[None, :]).ravel(),
        per_chain.ravel(),
        s=8,
        color="k",
        alpha=0.5,
        label="per chain",
    )
    rate_axis.set_xticks(x, labels=labels)
    rate_axis.set_ylim(0, 1.2)
    rate_axis.set_yticks(np.linspace(0, 1, 6))
    rate_axis.set_xlabel("block (after sampling step)")
    rate_axis.set_ylabel("acceptance rate")
    rate_axis.legend(loc="upper center", fontsize="small", ncol=2)
    draws = stats["draw"].values
    for j, label in enumerate(labels):
        color = f"C{j % 10}"
        energy_axis.plot(draws, median[j], color=color, label=label.replace("\n", ", "))
        energy_axis.fill_between(draws, low[j], high[j], color=color, alpha=0.2)
    energy_axis.set_xlabel("draw")
    energy_axis.set_ylabel("block energy u (median, 25-75%)")
    energy_axis.legend(fontsize="small", ncol=2)
    return figure


def _as_series_array(value: Tensor | np.ndarray, name: str, series: int, features: int) -> Any:
    array = np.asarray(value.detach().cpu() if isinstance(value, Tensor) else value, dtype=float)
    if array.ndim == 3:
        array = array[series]
    if array.ndim != 2 or array.shape[-1] != features:
        raise ValueError(
            f"{name} must be [B, T, D] or [T, D] with D = {features}, got shape {array.shape}"
        )
    return array


def plot_fan(
    forecast: Forecast,
    truth: Tensor | np.ndarray | None = None,
    context: Tensor | np.ndarray | None = None,
    *,
    features: int | Sequence[int] = 4,
    series: int = 0,
    quantiles: Sequence[float] = (0.05, 0.25, 0.75, 0.95),
    weighted: bool = False,
) -> Figure:
    """Fan chart of a forecast's keypoint trajectories, with the truth overlaid.

    Every panel shows one feature: the observed context (frames ``1 - T .. 0``), the sample
    median and nested bands between paired quantiles (``quantiles[i]`` to
    ``quantiles[-1 - i]``) over the horizon (frames ``1 .. H``), and the ground truth.

    Arguments:
        forecast: A :class:`~snfseq.Forecast` (``samples: Tensor[S, B, H, D]``).
        truth: The realised future ``Tensor[B, H, D]`` or ``[H, D]``.
        context: The observed frames ``Tensor[B, T, D]`` or ``[T, D]``.
        features: How many leading features to show, or their positions.
        series: Position of the series to show.
        quantiles: An even number of increasing levels in ``(0, 1)``, paired outside-in.
        weighted: Use the forecast's importance weights for the quantiles (when it has them).

    Returns:
        A matplotlib ``Figure`` with one panel per feature.

    Example:
        >>> import torch
        >>> fc = Forecast(samples=torch.randn(50, 2, 6, 3).cumsum(2))
        >>> figure = plot_fan(fc, truth=torch.zeros(2, 6, 3), context=torch.zeros(2, 4, 3))
        >>> len(figure.axes)
        3
    """
    from snfseq import metrics

    if not isinstance(forecast, Forecast):
        raise TypeError(f"forecast must be a Forecast, got {type(forecast).__name__}")
    num_samples, num_series, horizon, num_features = forecast.samples.shape
    if not -num_series <= series < num_series:
        raise ValueError(f"series={series} is outside the forecast's {num_series} series")
    levels = [float(q) for q in quantiles]
    if len(levels) % 2 or any(not 0 < q < 1 for q in levels) or levels != sorted(levels):
        raise ValueError(
            f"quantiles must be an even number of increasing levels in (0, 1), got {quantiles}"
        )
    picked = _positions(num_features, features, "feature")
    samples = forecast.samples[:, series].detach().cpu().double()
    log_weights = None
    if weighted and forecast.log_weights is not None:
        log_weights = forecast.log_weights[:, series].detach().cpu().double()
    bands = metrics.quantile(samples, [*levels, 0.5], log_weights=log_weights).numpy()
    truth_array = None if truth is None else _as_series_array(truth, "truth", series, num_features)
    if truth_array is not None and truth_array.shape[0] != horizon:
        raise ValueError(f"truth has {truth_array.shape[0]} steps, the forecast {horizon}")
    context_array = (
        None if context is None else _as_series_array(context, "context", series, num_features)
    )
    names = forecast.feature_names

    figure = _new_figure(figsize=(9, 2.2 * len(picked)), layout="constrained")
    axes = np.atleast_1d(figure.subplots(len(picked), 1, sharex=True, squeeze=False)[:, 0])
    steps = np.arange(1, horizon + 1)
    pairs = len(levels) // 2
    for axis, feature in zip(axes, picked, strict=True):
        for i in range(pairs):
            axis.fill_between(
                steps,
                bands[i, :, feature],
                bands[len(levels) - 1 - i, :, feature],
                color="C0",
                alpha=0.15 + 0.5 * i / max(pairs, 1),
                linewidth=0,
                label=f"{levels[i]:.0%}-{levels[len(levels) - 1 - i]:.0%}",
            )
        axis.plot(steps, bands[-1, :, feature], color="C0", label="median")
        if context_array is not None:
            frames = np.arange(1 - len(context_array), 1)
            axis.plot(frames, context_array[:, feature], color="0.4", label="context")
        if truth_array is not None:
            start = [] if context_array is None else [context_array[-1, feature]]
            before = [] if context_array is None else [0]
            axis.plot(
                [*before, *steps],
                [*start, *truth_array[:, feature]],
                color="k",
                linestyle="--",
                label="truth",
            )
        axis.set_ylabel(str(names[feature]) if names is not None else f"feature {feature}")
    axes[0].legend(loc="upper left", fontsize="small", ncol=3)
    axes[0].set_title(
        f"series {series}: {num_samples} samples"
        + (" (weighted)" if log_weights is not None else "")
    )
    axes[-1].set_xlabel("frame")
    return figure
