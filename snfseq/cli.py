"""The ``snfseq`` command.

Subcommands:

* ``snfseq demo``: train GRU-NF on face landmarks from the bundled real videos, compare
  with GRU-SNF, write a checkpoint, metrics and plots.
* ``snfseq extract VIDEO -o KEYPOINTS.nc``: face (or pose) landmarks of a video.
* ``snfseq train KEYPOINTS... -o MODEL.pt``: train on keypoint files (npz, nc, zarr).
* ``snfseq forecast MODEL.pt KEYPOINTS -o FORECAST.nc``: forecast from the last frames.

Example:
    >>> build_parser().parse_args(["demo", "--epochs", "3"]).epochs
    3
"""

from __future__ import annotations

__all__ = ["build_parser", "main"]

import argparse
import sys
from collections.abc import Sequence

from snfseq import data, motion
from snfseq.demo import DemoConfig, format_results, run_demo
from snfseq.model import SequenceFlow
from snfseq.snf import Refinement


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``snfseq`` command.

    Example:
        >>> args = build_parser().parse_args(["train", "a.nc", "b.nc", "-o", "m.pt"])
        >>> args.command, args.keypoints, args.output, args.context
        ('train', ['a.nc', 'b.nc'], 'm.pt', 8)
    """
    parser = argparse.ArgumentParser(
        prog="snfseq",
        description="Sequence normalizing flows with stochastic (MCMC) refinement.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="train and forecast on built-in real face landmarks")
    demo.add_argument("--output", "-o", default="snfseq-demo", help="output folder")
    demo.add_argument("--epochs", type=int, default=60)
    demo.add_argument("--samples", type=int, default=100, help="samples per forecast")
    demo.add_argument("--layout", default="mesh10", help="mesh10, mesh68 or pca:N")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")

    extract = commands.add_parser("extract", help="landmarks of a video file")
    extract.add_argument("video")
    extract.add_argument("--output", "-o", required=True, help=".nc, .zarr or .npz")
    extract.add_argument("--landmarks", default="face", choices=["face", "pose", "face+pose"])
    extract.add_argument("--gaps", default="interpolate", choices=["mark", "interpolate", "raise"])

    train = commands.add_parser("train", help="train a SequenceFlow on keypoint files")
    train.add_argument("keypoints", nargs="+", help="files with dims (time, keypoint, coord)")
    train.add_argument("--output", "-o", required=True, help="checkpoint path")
    train.add_argument("--context", type=int, default=8)
    train.add_argument("--horizon", type=int, default=8)
    train.add_argument("--epochs", type=int, default=100)
    train.add_argument("--hidden", type=int, default=128)
    train.add_argument("--layers", type=int, default=2)
    train.add_argument("--transforms", type=int, default=5)

    forecast = commands.add_parser("forecast", help="forecast the frames after a keypoint file")
    forecast.add_argument("model")
    forecast.add_argument("keypoints")
    forecast.add_argument("--output", "-o", required=True, help=".nc file of samples")
    forecast.add_argument("--context", type=int, default=8)
    forecast.add_argument("--horizon", type=int, default=8)
    forecast.add_argument("--samples", type=int, default=100)
    forecast.add_argument(
        "--refinement", default="none", choices=["none", "paper", "mala", "hmc", "rwm"]
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``snfseq`` command; returns the exit status.

    Example:
        >>> main(["train", "missing.nc", "-o", "m.pt"])  # the error message goes to stderr
        2
        >>> try:
        ...     main(["--help"])
        ... except SystemExit as done:  # argparse exits after printing the help
        ...     print("exit status", done.code)
        usage: snfseq [-h] {demo,extract,train,forecast} ...
        ...
        exit status 0
    """
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError, ImportError) as error:
        print(f"snfseq {args.command}: error: {error}", file=sys.stderr)
        return 2


def _demo(args: argparse.Namespace) -> int:
    config = DemoConfig(epochs=args.epochs, num_samples=args.samples, layout=args.layout)
    results = run_demo(args.output, config, progress=not args.quiet)
    print(format_results(results))
    print(f"wrote {args.output}/model.pt, metrics.json, forecast.png, fan.png")
    return 0


def _extract(args: argparse.Namespace) -> int:
    keypoints = motion.extract(args.video, landmarks=args.landmarks, gaps=args.gaps)
    path = data.save_keypoints(keypoints, args.output)
    detected = int(keypoints.coords["detected"].sum())
    print(f"{keypoints.sizes['time']} frames ({detected} with landmarks) -> {path}")
    return 0


def _train(args: argparse.Namespace) -> int:
    sequences = [data.to_array(data.load_keypoints(path)) for path in args.keypoints]
    windows = data.make_windows(sequences, args.context, args.horizon)
    model = SequenceFlow(
        features=windows.shape[-1],
        hidden=args.hidden,
        layers=args.layers,
        transforms=args.transforms,
        flow_hidden=(args.hidden, args.hidden),
    )
    history = model.fit(windows, context=args.context, epochs=args.epochs)
    model.save(args.output)
    best = history.val_nll[history.best_epoch] if history.val_nll else float("nan")
    print(f"trained on {windows.shape[0]} windows; best validation NLL/dim {best:.3f}")
    print(f"saved {args.output}")
    return 0


def _forecast(args: argparse.Namespace) -> int:
    model = SequenceFlow.load(args.model)
    series = data.to_array(data.load_keypoints(args.keypoints))
    if series.shape[0] < args.context:
        raise ValueError(
            f"{args.keypoints} has {series.shape[0]} frames; --context needs {args.context}"
        )
    refinement = {
        "none": None,
        "paper": Refinement.paper(),
        "mala": Refinement(kernel="mala"),
        "hmc": Refinement(kernel="hmc"),
        "rwm": Refinement(kernel="rwm", step_size=0.1),
    }[args.refinement]
    fc = model.forecast(series[-args.context :], args.horizon, args.samples, refinement=refinement)
    fc.to_xarray().to_netcdf(args.output)
    print(f"{args.samples} samples x {args.horizon} frames -> {args.output}")
    return 0


_COMMANDS = {"demo": _demo, "extract": _extract, "train": _train, "forecast": _forecast}


if __name__ == "__main__":
    raise SystemExit(main())
