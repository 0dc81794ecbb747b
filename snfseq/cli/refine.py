"""``snfseq refine MODEL SOURCE -o REFINED.nc``: a refined (GRU-SNF) forecast with its samples,
their importance weights and the trace of every refinement chain, in one netCDF file.

``SOURCE`` is a keypoint file (its last ``--context`` frames start the forecast) or a forecast
file of ``snfseq forecast`` (the frames it started from, and its horizon, are used again).
Every sample path is a chain: at each forecast step, each refinement block (one after each
flow layer) runs ``--steps`` transitions of ``--kernel`` on every chain.

The file is an ArviZ-style ``xarray.DataTree`` (``xr.open_datatree``; ``xr.open_dataset``
reads its root alone):

* root: ``forecast (sample, time, keypoint, coord)`` in the model's keypoints, ``time`` the
  frame numbers after the source's (``seconds`` where the frame rate is known), ``context
  (context_time, keypoint, coord)``, and the path weights ``log_weight`` and ``weight``
  (self-normalised) ``(sample)``, ``step_log_weight (sample, time)``, ``ancestor (sample,
  time)`` when paths were resampled; ``forecast_mesh`` for a model with a face layout;
* ``posterior``: ``y (chain, draw, block, time, feature)``, the states of the chains in the
  flow's standardised space (``chain`` is the sample, ``draw`` the transition of a block,
  ``block`` the block's number, with its ``layer`` (after which it runs) and ``lam``;
  ``feature`` named ``keypoint:coord``);
* ``sample_stats``: ``accepted``, ``energy`` and ``step_size`` over the same dims less
  ``feature``, and the weights by chain.

``snfseq diagnose`` turns it into a summary table and plots.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_parser(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["refine", "m.pt", "talk.nc", "-o", "r.nc", "--kernel", "hmc"])
    >>> args.kernel, args.steps, args.chains, args.resample
    ('hmc', 2, 100, None)
"""

from __future__ import annotations

__all__ = ["KERNELS", "add_parser", "run"]

import argparse
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from snfseq import data, transfer
from snfseq.cli.checks import check_inputs, check_output_file
from snfseq.cli.common import load_keypoints, load_model, reading
from snfseq.diagnostics import to_datatree
from snfseq.files import atomic_write
from snfseq.forecast import Forecast
from snfseq.model import SequenceFlow
from snfseq.snf import Refinement
from snfseq.version import __version__

#: The ``--kernel`` choices and their default step sizes.
KERNELS = {"mala": 0.05, "hmc": 0.05, "rwm": 0.1}
_CONTEXT, _HORIZON = 8, 8


def add_parser(commands: Any) -> None:
    """Adds ``refine`` to ``commands``, the subparsers of the ``snfseq`` parser.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser()
        >>> add_parser(parser.add_subparsers(dest="command"))
        >>> args = parser.parse_args(["refine", "m.pt", "f.nc", "-o", "r.nc", "--resample", "0.5"])
        >>> args.resample
        0.5
    """
    refine = commands.add_parser(
        "refine",
        help="refined forecast with its weights and the chains' trace",
        description="A GRU-SNF forecast: MCMC refinement between the flow's layers, every "
        "sample path a chain; writes samples, path weights and the chains' trace (ArviZ "
        "groups posterior and sample_stats) to one netCDF file.\n\n"
        "example: snfseq refine model.pt talk.nc -o refined.nc --kernel hmc --steps 10\n"
        "         snfseq diagnose refined.nc -o diagnostics/",
    )
    refine.add_argument("model", help="a model from snfseq train (.pt)")
    refine.add_argument(
        "source", help="a keypoint file to continue, or a forecast file of snfseq forecast"
    )
    refine.add_argument("--output", "-o", required=True, help="netCDF file (.nc)")
    refine.add_argument(
        "--kernel", default="mala", choices=list(KERNELS), help="the MCMC kernel of each block"
    )
    refine.add_argument(
        "--steps",
        type=int,
        default=2,
        help="transitions per block and forecast step (the draws of each chain; R-hat and ESS "
        "need 4 or more)",
    )
    refine.add_argument(
        "--step-size",
        type=float,
        help="kernel step size (default: 0.05 for mala and hmc, 0.1 for rwm)",
    )
    refine.add_argument(
        "--target",
        default="gaussian",
        choices=["gaussian", "paper"],
        help="the blocks' target: a Gaussian around the point forecast, or the published "
        "squared distance",
    )
    refine.add_argument(
        "--resample",
        type=float,
        metavar="FRACTION",
        help="resample a step's paths when the Kish ESS of their weights falls below this "
        "fraction of the chains (default: never)",
    )
    refine.add_argument(
        "--chains", type=int, default=100, help="sample paths, each one chain of the refinement"
    )
    refine.add_argument(
        "--context",
        type=int,
        help=f"frames the forecast starts from (default: {_CONTEXT}, or all of a forecast file's)",
    )
    refine.add_argument(
        "--horizon",
        type=int,
        help=f"frames to forecast (default: {_HORIZON}, or a forecast file's own)",
    )


def _is_forecast(dataset: xr.Dataset) -> bool:
    return "forecast" in dataset and "context" in dataset


def _source(path: str) -> tuple[xr.DataArray, int | None]:
    """The frames a forecast starts from and, for a forecast file, its horizon."""
    if Path(path).suffix.lower() == ".nc":
        with reading(path, "a keypoint or forecast file"), xr.open_dataset(path) as dataset:
            if _is_forecast(dataset):
                context = dataset["context"].load().rename(context_time="time")
                if "context_seconds" in context.coords:
                    context = context.rename(context_seconds="seconds")
                context.attrs = {
                    key: dataset.attrs[key] for key in ("source", "fps") if key in dataset.attrs
                }
                return context, int(dataset.attrs.get("horizon", _HORIZON))
    return load_keypoints(path), None


def _check(args: argparse.Namespace) -> None:
    check_inputs([args.model, args.source])
    check_output_file(args.output, (".nc",), args.force)
    if args.step_size is not None and not args.step_size > 0:
        raise ValueError(f"--step-size must be > 0, got {args.step_size}")
    if args.resample is not None and not 0 < args.resample <= 1:
        raise ValueError(f"--resample must be a fraction in (0, 1], got {args.resample}")


def _feature_names(past: xr.DataArray) -> list[str]:
    """``keypoint:coord`` for every feature of the model's frames (keypoint-major)."""
    return [f"{k}:{c}" for k in past["keypoint"].values for c in past["coord"].values]


def _dataset(
    model: SequenceFlow, past: xr.DataArray, fc: Forecast, attrs: dict[str, Any]
) -> xr.Dataset:
    """The root of the file: samples, weights, the context (see the module)."""
    frames, horizon = past.coords["time"].values, fc.horizon
    start = int(frames[-1]) + 1 if np.issubdtype(frames.dtype, np.integer) else len(frames)
    time = np.arange(start, start + horizon)
    samples = fc.samples[:, 0].cpu().numpy().reshape(fc.num_samples, horizon, *past.shape[1:])
    points = {str(k): v for k, v in past.coords.items() if "time" not in v.dims}
    dataset = xr.Dataset(
        {
            "forecast": (("sample", "time", "keypoint", "coord"), samples),
            "context": (("context_time", "keypoint", "coord"), past.values),
        },
        coords={**points, "time": time, "context_time": frames, "sample": np.arange(len(samples))},
        attrs=attrs,
    )
    fps = float(attrs.get("fps", np.nan))
    if np.isfinite(fps) and fps > 0:
        dataset = dataset.assign_coords(seconds=("time", time / fps))
    if fc.log_weights is not None:
        log_weight = fc.log_weights[:, 0].cpu().double()
        dataset["log_weight"] = ("sample", log_weight.numpy())
        dataset["weight"] = ("sample", log_weight.softmax(0).numpy())
    if fc.step_log_weights is not None:
        dataset["step_log_weight"] = (("sample", "time"), fc.step_log_weights[:, 0].cpu().numpy())
    if fc.ancestors is not None:
        dataset["ancestor"] = (("sample", "time"), fc.ancestors[:, 0].cpu().numpy())
    if model.layout is not None:
        mesh = transfer.to_mesh(model, samples)
        dataset["forecast_mesh"] = (("sample", "time", "mesh_point", "mesh_coord"), mesh)
        labels = ["x", "y", "z"][: mesh.shape[-1]]
        dataset = dataset.assign_coords(mesh_point=np.arange(mesh.shape[-2]), mesh_coord=labels)
    return dataset


def _trace(fc: Forecast, root: xr.Dataset) -> dict[str, xr.Dataset]:
    """The ArviZ groups of the chains, on the root's frame numbers, one series dropped."""
    tree = to_datatree(fc, dims=["series"])
    groups = {}
    for name in ("posterior", "sample_stats"):
        group = tree[name].to_dataset().isel(series=0, drop=True)
        groups[name] = group.assign_coords(time=root["time"].values)
    return groups


def run(args: argparse.Namespace) -> int:
    """Runs ``snfseq refine`` (see the module); returns the exit status.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser()
        >>> add_parser(parser.add_subparsers(dest="command"))
        >>> run(parser.parse_args(["refine", "missing.pt", "talk.nc", "-o", "r.nc"]))
        Traceback (most recent call last):
        ...
        FileNotFoundError: not found: missing.pt
    """
    _check(args)
    model = load_model(args.model, args.device)
    keypoints, source_horizon = _source(args.source)
    observed = transfer.model_keypoints(model, keypoints)
    context = args.context
    if context is None:
        context = observed.sizes["time"] if source_horizon is not None else _CONTEXT
    horizon = args.horizon if args.horizon is not None else source_horizon or _HORIZON
    if observed.sizes["time"] < context:
        raise ValueError(
            f"{args.source} has {observed.sizes['time']} frames; --context needs {context}"
        )
    past = observed.isel(time=slice(-context, None))
    frames = data.to_array(past)
    missing = np.isnan(frames).any(axis=1)
    if missing.any():
        raise ValueError(
            f"{int(missing.sum())} of the last {context} frames of {args.source} have no "
            "landmarks (NaN); fill or drop them first (snfseq extract --gaps trim)"
        )
    step_size = KERNELS[args.kernel] if args.step_size is None else args.step_size
    refinement = Refinement(
        kernel=args.kernel,
        step_size=step_size,
        steps=args.steps,
        target=args.target,
        resample=args.resample,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        fc = model.forecast(
            frames, horizon, args.chains, refinement, seed=args.seed, record_trace=True
        )
    attrs = {
        "source": str(keypoints.attrs.get("source", Path(args.source).resolve())),
        "fps": float(keypoints.attrs.get("fps", np.nan)),
        "model": str(Path(args.model).resolve()),
        "input": str(Path(args.source).resolve()),
        "layout": "none" if model.layout is None else model.layout.name,
        "kernel": args.kernel,
        "steps": args.steps,
        "step_size": step_size,
        "target": args.target,
        "resample": "never" if args.resample is None else args.resample,
        "chains": args.chains,
        "context": context,
        "horizon": horizon,
        "seed": args.seed,
        "snfseq_version": __version__,
    }
    root = _dataset(model, past, fc, attrs)
    feature = _feature_names(past)
    groups = {
        name: group.assign_coords(feature=feature) if "feature" in group.dims else group
        for name, group in _trace(fc, root).items()
    }
    # Group by group, so that each holds its own coordinates (a DataTree would leave out those
    # it inherits from the root): readable alone, with xr.open_dataset(..., group=...).
    xr.DataTree.from_dict({"/": root, **groups})  # the groups' coordinates agree with the root's
    with atomic_write(args.output) as partial:
        root.to_netcdf(partial)
        for name, group in groups.items():
            group.to_netcdf(partial, mode="a", group=name)
    for warning in caught:
        print(f"note: {warning.message}")
    accepted = float(groups["sample_stats"]["accepted"].mean())
    blocks = groups["posterior"].sizes["block"]
    ess = "" if fc.ess is None else f", Kish ESS of the path weights {float(fc.ess[0]):.1f}"
    print(
        f"{args.chains} chains x {horizon} frames; {args.kernel}, {blocks} blocks of "
        f"{args.steps} steps per frame; acceptance {accepted:.2f}{ess} -> {args.output}"
    )
    return 0
