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

The modules:

* :mod:`snfseq.diagnostics.convert`: ``to_datatree`` (a recorded trace of a forecast or an
  SNF sample as a DataTree) and the helpers that build every tree.
* :mod:`snfseq.diagnostics.chains`: ``sample_chains`` (chains of any kernel on any energy)
  and ``run_chains`` (the chains of every refinement block of a trained model).
* :mod:`snfseq.diagnostics.summaries`: ``summary`` and its result ``Summary`` (R-hat, ESS,
  MCSE, acceptance, weight ESS as a table).
* The figures live one floor up, in :mod:`snfseq.plots`; ``plot_trace``, ``plot_rank``,
  ``plot_acceptance`` and ``plot_fan`` are re-exported here, loaded on first use (importing
  :mod:`snfseq.plots` here would be an import cycle, since it builds on this package).

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

import importlib
from typing import TYPE_CHECKING

from snfseq.diagnostics.chains import run_chains, sample_chains
from snfseq.diagnostics.convert import to_datatree
from snfseq.diagnostics.summaries import Summary, summary

if TYPE_CHECKING:
    from snfseq.plots import plot_acceptance, plot_fan, plot_rank, plot_trace

_PLOTS = ("plot_acceptance", "plot_fan", "plot_rank", "plot_trace")


def __getattr__(name: str) -> object:
    # The plots import this package: re-export them lazily, without an import cycle.
    if name in _PLOTS:
        value = getattr(importlib.import_module("snfseq.plots"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_PLOTS})
