"""Chains and refinement traces as ArviZ ``DataTree`` objects.

Everything the diagnostics read is an ``xarray.DataTree`` in ArviZ layout: groups
``posterior`` (the states) and ``sample_stats`` (``accepted``, ``energy``, ``step_size`` and,
where there are importance weights, ``log_weight``), sample dims ``chain`` and ``draw``.
:func:`to_datatree` converts a recorded refinement trace; :mod:`snfseq.diagnostics.chains`
builds its trees with the same helpers.
"""

from __future__ import annotations

__all__ = ["to_datatree"]

from collections.abc import Mapping, Sequence
from typing import Any

import arviz_base
import numpy as np
import xarray as xr
from torch import Tensor

from snfseq.forecast import Forecast
from snfseq.snf import SNFSample, Trace

_SAMPLE_DIMS = ("chain", "draw")


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
    ``block_coords`` are extra coordinates along ``block`` (e.g. ``lam``); ``attrs`` go on the
    ``posterior`` group.
    """
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
    """Coordinates of the ``feature`` dim: ``feature_names`` checked against ``features``, or
    ``0 .. features - 1``."""
    if feature_names is None:
        return np.arange(features)
    names = list(feature_names)
    if len(names) != features:
        raise ValueError(f"feature_names has {len(names)} names for {features} features")
    return names


def to_datatree(
    source: Forecast | SNFSample | Trace | xr.DataTree,
    *,
    dims: Sequence[str] | None = None,
    feature_names: Sequence[str] | None = None,
) -> xr.DataTree:
    """A refinement trace (of a forecast, an SNF sample, or bare) as an ArviZ DataTree.

    The ``S`` samples are the chains and the ``M`` steps of a block are the draws. That gives
    only ``M`` draws per chain (the paper runs 2): enough for acceptance rates, energies and
    weights, not for R-hat or ESS, for which :func:`~snfseq.diagnostics.run_chains` runs
    proper chains.

    Args:
        source: A :class:`~snfseq.Forecast` from ``model.forecast(..., record_trace=True)``,
            an :class:`~snfseq.snf.SNFSample` from ``snf.sample(..., record=True)``, a
            :class:`~snfseq.snf.Trace`, or a DataTree (returned unchanged).
        dims: Names of the batch dims ``B`` after the sample axis (default ``series`` for
            one, else ``batch_0``, ``batch_1``...).
        feature_names: Names of the ``D`` features (default: the forecast's own, if any).

    Returns:
        ``DataTree``: ``posterior["y"]`` with dims ``(chain, draw, block, *dims, (time,)
        feature)`` (``time`` for a forecast, one per forecast step) holding the intermediate
        flow variable after each step, in the flow's standardised space; ``sample_stats``
        ``accepted``, ``energy`` and ``step_size`` over the same dims less ``feature``, and,
        when the source has weights, ``log_weight (chain, *dims)`` (whole path) and for a
        forecast ``step_log_weight (chain, *dims, time)``, and ``ancestor (chain, *dims, time)``
        when the forecast's paths were resampled.

    Raises:
        ValueError: When the forecast or SNF sample recorded no trace.
        TypeError: For any other kind of source.

    Example:
        >>> import torch
        >>> from snfseq import snf
        >>> from snfseq.energy import Gaussian
        >>> from snfseq.flows import build_flow
        >>> flow = build_flow("realnvp", features=2, transforms=2, hidden=(8,))
        >>> result = snf.sample(flow, Gaussian(torch.ones(2)), snf.Refinement(), 16, record=True)
        >>> tree = to_datatree(result)
        >>> tree["posterior"]["y"].dims, tree["sample_stats"]["log_weight"].dims
        (('chain', 'draw', 'block', 'feature'), ('chain',))
    """
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
        if source.ancestors is not None:
            weights["ancestor"] = source.ancestors
    elif isinstance(source, SNFSample):
        if source.trace is None:
            raise ValueError("the SNF sample has no trace: sample with record=True")
        trace = source.trace
        if source.log_weights is not None:
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
    """The DataTree of :func:`to_datatree` from a bare trace and its log-weights by name."""
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
        extra = time_dims if name in ("step_log_weight", "ancestor") else []
        stats[name] = (["chain", *names, *extra], _numpy(values))
    sizes = dict(zip(stat_dims, energy.shape, strict=True))
    coords: dict[str, Any] = {name: np.arange(sizes[name]) for name in [*names, *time_dims]}
    # Blocks are numbered; `layer` says after which sampling step each ran (-1: on the base
    # noise). A layer can hold several annealing blocks, so it cannot label them itself.
    coords["block"] = np.arange(len(trace.blocks))
    coords["feature"] = _feature_coords(states.shape[-1], feature_names)
    return _tree(
        "y",
        states,
        ["block", *names, *time_dims, "feature"],
        stats,
        coords,
        block_coords={"layer": np.asarray(trace.blocks), "lam": _numpy(trace.lam)},
    )


def _as_tree(data: Any) -> xr.DataTree:
    """``data`` itself when it is a DataTree, else :func:`to_datatree` of it."""
    return data if isinstance(data, xr.DataTree) else to_datatree(data)


def _variable(tree: xr.DataTree, var_name: str | None) -> xr.DataArray:
    """The posterior variable ``var_name`` (default: the only one), sample dims first."""
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
