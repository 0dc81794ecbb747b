"""Convergence summaries of chains: R-hat, bulk and tail ESS, MCSE, acceptance, weight ESS.

:func:`summary` reduces a DataTree of chains (:mod:`snfseq.diagnostics.convert`) to one
table row per position (block, series, forecast step) and returns a :class:`Summary` that
prints as a formatted table.

arviz-stats is imported on the first call of :func:`summary`: it pulls in ``scipy.stats``
and takes most of a second to import.
"""

from __future__ import annotations

__all__ = ["Summary", "summary"]

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

from snfseq.diagnostics.convert import _SAMPLE_DIMS, _as_tree, _variable
from snfseq.weights import kish_ess

_MIN_DRAWS = 4

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

    Example:
        >>> import arviz_base
        >>> draws = np.random.default_rng(0).normal(size=(4, 100, 2))  # [C, N, D]
        >>> tree = arviz_base.from_dict({"posterior": {"z": draws}}, dims={"z": ["feature"]})
        >>> result = summary(tree)
        >>> print(result.header)
        z: 4 chains x 100 draws (rank-normalised split R-hat, bulk/tail ESS;
        max/min over features)
        >>> list(result.table.columns)
        ['r_hat_max', 'ess_bulk_min', 'ess_tail_min', 'mcse_mean_max']
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
        """A string formatter for each column of the table that has one."""
        return {
            column: fmt.format for column, fmt in _TABLE_FORMATS.items() if column in self.table
        }

    def __str__(self) -> str:
        return f"{self.header}\n{self.table.to_string(formatters=self._formatters())}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return f"<p>{self.header}</p>" + self.table.to_html(formatters=self._formatters())


def summary(data: Any, *, var_name: str | None = None) -> Summary:
    """R-hat, bulk and tail ESS, MCSE, acceptance and weight ESS, per block and series.

    Uses arviz-stats (``rhat`` rank-normalised, ``ess`` bulk and tail, ``mcse``) over the
    ``chain`` and ``draw`` dims; every other dim except ``feature`` indexes a row of the
    table, so each refinement block of each series is judged on its own.

    Args:
        data: A DataTree from :func:`~snfseq.diagnostics.run_chains`,
            :func:`~snfseq.diagnostics.sample_chains` or
            :func:`~snfseq.diagnostics.to_datatree` (chains ``C``, draws ``N``, features
            ``D``), or anything :func:`~snfseq.diagnostics.to_datatree` accepts.
        var_name: The posterior variable (default: the only one).

    Returns:
        A :class:`Summary`; ``print`` it, or use ``.table`` (one row per position) /
        ``.detail`` (one row per position and feature), both pandas ``DataFrame``.

    Warns:
        UserWarning: with fewer than 4 draws per chain (e.g. a forecast's own trace), when
            R-hat and ESS are undefined (NaN).

    Example:
        >>> import torch
        >>> from snfseq import kernels
        >>> from snfseq.diagnostics import sample_chains
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
    import arviz_stats  # slow to import (scipy.stats): loaded on first use

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
    for name in ("layer", "lam"):  # the block's own columns
        if name in values.coords and "block" in position_dims:
            table = table.assign_coords({name: ("block", values.coords[name].values)})
    return Summary(
        table=_to_frame(table, position_dims),
        detail=_to_frame(detail, [*position_dims, *over]),
        var_name=var_name,
        num_chains=num_chains,
        num_draws=num_draws,
    )


def _to_frame(dataset: xr.Dataset, dims: Sequence[str]) -> pd.DataFrame:
    """One row per combination of ``dims`` (one row when there are none), ``layer`` and
    ``lam`` first."""
    if not dims:
        return pd.DataFrame({k: [float(v)] for k, v in dataset.data_vars.items()})
    frame = dataset.to_dataframe(dim_order=list(dims))
    leading = [c for c in ("layer", "lam") if c in frame.columns]
    return frame[leading + [c for c in frame.columns if c not in leading]]
