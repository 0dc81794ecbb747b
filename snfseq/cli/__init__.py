"""The ``snfseq`` command.

Subcommands:

* ``snfseq demo``: train GRU-NF on face landmarks from the bundled real videos, compare
  with GRU-SNF, write a checkpoint, metrics and plots.
* ``snfseq extract VIDEO -o KEYPOINTS.nc``: face (or pose) landmarks of a video.
* ``snfseq train KEYPOINTS... -o MODEL.pt``: train on keypoint files (npz, nc, zarr); face
  meshes are reduced through a layout fitted on them, which the checkpoint keeps.
* ``snfseq forecast MODEL.pt KEYPOINTS -o FORECAST.nc``: forecast from the last frames.
* ``snfseq render MODEL.pt VIDEO -o OUT.mp4``: motion transfer over a video: rolling lead-h
  forecasts rendered side by side with the real video, and their pixel scores (``OUT.json``).
* ``snfseq stream MODEL.pt VIDEO -o REPORT_DIR``: the video's keypoints streamed over a
  delayed, lossy link to hold, linear and forecast receivers, swept over delay, send interval
  and loss (``report.nc``, three plots, a table).
* ``snfseq backtest DATA.csv|DATA.parquet -H H -o REPORT_DIR``: rolling-origin backtest of a
  forecaster (flow, gaussian-gru, seasonal-naive, random-walk) on a wide or long table,
  against the seasonal naive and random-walk baselines on the same windows (scores, a
  markdown summary, ``report.json``, the last window's forecast and CRPS by step).

Options are checked before any work starts; a bad one, or any error, ends the command with
exit status 2 and a one-line message.

The modules: :mod:`~snfseq.cli.checks` (the shared checks, folders of outputs),
:mod:`~snfseq.cli.motion` (the motion commands), :mod:`~snfseq.cli.backtest` (``backtest``),
:mod:`~snfseq.cli.datafile` (its data file) and :mod:`~snfseq.cli.report` (its report).

Example:
    >>> build_parser().parse_args(["demo", "--epochs", "3"]).epochs
    3
"""

from __future__ import annotations

__all__ = ["build_parser", "main"]

import argparse
import sys
from collections.abc import Callable, Sequence

from snfseq.cli import backtest, motion
from snfseq.cli.checks import check_counts
from snfseq.version import __version__

# What runs each command once its integer options are checked.
_RUNS: dict[str, Callable[[argparse.Namespace], int]] = {
    **dict.fromkeys(motion.COMMANDS, motion.run),
    "backtest": backtest.run,
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``snfseq`` command.

    Example:
        >>> args = build_parser().parse_args(["train", "a.nc", "b.nc", "-o", "m.pt"])
        >>> args.command, args.keypoints, args.output, args.context, args.layout
        ('train', ['a.nc', 'b.nc'], 'm.pt', 8, 'auto')
    """
    parser = argparse.ArgumentParser(
        prog="snfseq",
        description="Sequence normalizing flows with stochastic (MCMC) refinement.",
    )
    parser.add_argument("--version", action="version", version=f"snfseq {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    motion.add_parsers(commands)
    backtest.add_parser(commands)
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
        usage: snfseq [-h] [--version]
        ...
        ...
        exit status 0
    """
    args = build_parser().parse_args(argv)
    try:
        check_counts(args)
        return _RUNS[args.command](args)
    except (ValueError, FileNotFoundError, ImportError, NotImplementedError) as error:
        message = " ".join(str(error).split())  # one line, whatever a library wrote
        print(f"snfseq {args.command}: error: {message}", file=sys.stderr)
        return 2
