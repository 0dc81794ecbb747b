"""Figures: MCMC diagnostics of chains and refinement traces, and forecast fan charts.

* :func:`plot_trace` and :func:`plot_rank` draw chains through arviz-plots (state against
  draw; rank ECDFs), :func:`plot_acceptance` the acceptance rate and energy of every
  refinement block. They take a DataTree of :mod:`snfseq.diagnostics` (from ``run_chains``,
  ``sample_chains`` or ``to_datatree``) or anything ``to_datatree`` accepts.
* :func:`plot_fan` draws a forecast's sample paths as quantile bands, with the observed
  context and the truth; it involves no MCMC.

Every function returns a matplotlib ``Figure`` detached from pyplot: a notebook shows it
once, and nothing stays open. matplotlib and arviz-plots are imported on first use (through
:mod:`snfseq._arviz_compat`, which also keeps arviz-plots 0.8 working with matplotlib 3.11).
"""

from __future__ import annotations

__all__ = ["plot_acceptance", "plot_fan", "plot_rank", "plot_trace"]

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
from torch import Tensor

from snfseq._arviz_compat import chain_colors, load_arviz_plots
from snfseq.diagnostics.convert import _as_tree, _variable
from snfseq.forecast import Forecast
from snfseq.metrics import quantile

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _positions(count: int, chosen: int | Sequence[int] | None, name: str) -> list[int]:
    """Positions among ``count``: all (None), the first ``chosen`` (int), or those given."""
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
    """A DataTree holding only the chosen blocks, series, forecast step and features."""
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
    """The figure of ``arviz_plots.<plot>`` of ``subset``, one matplotlib colour per chain."""
    collection = getattr(load_arviz_plots(), plot)(
        subset, backend="matplotlib", color=chain_colors()
    )
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

    Args:
        data: A DataTree of chains (``posterior`` variable of dims ``(chain, draw, *B,
            feature)``, e.g. from :func:`~snfseq.diagnostics.run_chains`), or anything
            :func:`~snfseq.diagnostics.to_datatree` accepts.
        blocks: Positions of the blocks to show (default all).
        series: Position of the series to show.
        time: Position of the forecast step to show (forecast traces only).
        features: How many leading features to show, or their positions.
        var_name: The posterior variable (default: the only one).

    Returns:
        A matplotlib ``Figure``, one panel per block and feature.

    Raises:
        ValueError: When a position is out of range, or the tree lacks the variable.

    Example:
        >>> import torch
        >>> from snfseq import kernels
        >>> from snfseq.diagnostics import sample_chains
        >>> from snfseq.energy import StandardNormal
        >>> kernel = kernels.RandomWalkMetropolis(step_size=0.8, adapt_step_size=False)
        >>> init = torch.randn(3, 2, 4)  # [C, B, D]: 3 chains, 2 series, 4 features
        >>> tree = sample_chains(kernel, StandardNormal(), init, 30, dims=["series"], seed=0)
        >>> figure = plot_trace(tree, features=[0, 3])
        >>> len(figure.axes)
        2
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
    """Rank plot (fractional-rank ECDF difference per chain) through ``arviz_plots.plot_rank``.

    Each chain's curve comes with a 99% envelope: chains sampling one distribution stay
    inside it.

    Args:
        data: A DataTree of chains (``posterior`` variable of dims ``(chain, draw, *B,
            feature)``, e.g. from :func:`~snfseq.diagnostics.run_chains`), or anything
            :func:`~snfseq.diagnostics.to_datatree` accepts.
        blocks: Positions of the blocks to show (default all).
        series: Position of the series to show.
        time: Position of the forecast step to show (forecast traces only).
        features: How many leading features to show, or their positions.
        var_name: The posterior variable (default: the only one).

    Returns:
        A matplotlib ``Figure``, one panel per block and feature.

    Raises:
        ValueError: When a position is out of range, or the tree lacks the variable.

    Example:
        >>> import torch
        >>> from snfseq import kernels
        >>> from snfseq.diagnostics import sample_chains
        >>> from snfseq.energy import StandardNormal
        >>> kernel = kernels.RandomWalkMetropolis(step_size=0.8, adapt_step_size=False)
        >>> init = torch.randn(3, 2, 4)  # [C, B, D]: 3 chains, 2 series, 4 features
        >>> tree = sample_chains(kernel, StandardNormal(), init, 30, dims=["series"], seed=0)
        >>> figure = plot_rank(tree, series=1, features=1)
        >>> len(figure.axes)
        1
    """
    return _arviz_figure("plot_rank", _selection(data, var_name, blocks, series, time, features))


def plot_acceptance(data: Any) -> Figure:
    """Acceptance rate and energy of every refinement block.

    Left: the accept rate per block (bar: over everything; dots: per chain). Right: the
    energy ``u_j`` against the draw, median over chains and positions with the 25-75% band,
    one line per block; a trend means the chains have not reached their target yet.

    Args:
        data: A DataTree with ``sample_stats`` ``accepted`` and ``energy`` (dims ``(chain,
            draw, [block,] *B)``), or anything :func:`~snfseq.diagnostics.to_datatree`
            accepts.

    Returns:
        A matplotlib ``Figure`` with two panels: accept rates, then energies.

    Raises:
        ValueError: When ``sample_stats`` or one of the two statistics is missing.

    Example:
        >>> import torch
        >>> from snfseq import kernels
        >>> from snfseq.diagnostics import sample_chains
        >>> from snfseq.energy import StandardNormal
        >>> kernel = kernels.RandomWalkMetropolis(step_size=0.8, adapt_step_size=False)
        >>> init = torch.randn(3, 2, 4)  # [C, B, D]: 3 chains, 2 series, 4 features
        >>> tree = sample_chains(kernel, StandardNormal(), init, 30, dims=["series"], seed=0)
        >>> figure = plot_acceptance(tree)
        >>> len(figure.axes)
        2
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
    blocks = stats["layer"] if "layer" in stats.coords else stats["block"]
    labels = [f"after {b}" if "layer" in stats.coords else str(b) for b in blocks.values]
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
    """``value[series]`` of a ``[B, T, D]`` (or a ``[T, D]`` as it is) as a float array."""
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

    Args:
        forecast: A :class:`~snfseq.Forecast` (``samples: Tensor[S, B, H, D]``).
        truth: The realised future ``Tensor[B, H, D]`` or ``[H, D]``.
        context: The observed frames ``Tensor[B, T, D]`` or ``[T, D]``.
        features: How many leading features to show, or their positions.
        series: Position of the series to show.
        quantiles: An even number of increasing levels in ``(0, 1)``, paired outside-in.
        weighted: Use the forecast's importance weights for the quantiles (when it has them).

    Returns:
        A matplotlib ``Figure`` with one panel per feature.

    Raises:
        TypeError: When ``forecast`` is not a Forecast.
        ValueError: For a series, feature or quantile level out of range, or ``truth`` /
            ``context`` of the wrong shape.

    Example:
        >>> import torch
        >>> from snfseq import Forecast
        >>> fc = Forecast(samples=torch.randn(50, 2, 6, 3).cumsum(2))  # [S, B, H, D]
        >>> figure = plot_fan(fc, truth=torch.zeros(2, 6, 3), context=torch.zeros(2, 4, 3))
        >>> len(figure.axes)
        3
    """
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
    bands = quantile(samples, [*levels, 0.5], log_weights=log_weights).numpy()
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
