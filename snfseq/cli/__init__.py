"""The ``snfseq`` command.

Subcommands:

* ``snfseq demo``: train GRU-NF on face landmarks from the bundled real videos, compare
  with GRU-SNF, write a checkpoint, metrics and plots (``--quick``: every step, tiny).
* ``snfseq extract VIDEO -o KEYPOINTS.nc``: face (or pose) landmarks of a video.
* ``snfseq train KEYPOINTS... -o MODEL.pt``: train on keypoint files (npz, nc, zarr); face
  meshes are reduced through a layout fitted on them, which the checkpoint keeps; resumable
  (``--checkpoint``, ``--resume``) and runs under ``torchrun``.
* ``snfseq forecast MODEL.pt KEYPOINTS -o FORECAST.nc``: forecast from the last frames.
* ``snfseq refine MODEL.pt KEYPOINTS|FORECAST.nc -o REFINED.nc``: a refined (GRU-SNF)
  forecast with its weights and the trace of its chains.
* ``snfseq diagnose REFINED.nc -o DIAGNOSTICS_DIR``: R-hat, ESS, acceptance tables and plots
  of that trace.
* ``snfseq render MODEL.pt VIDEO -o OUT.mp4``: motion transfer over a video: rolling lead-h
  forecasts rendered side by side with the real video, and their pixel scores (``OUT.json``).
* ``snfseq stream MODEL.pt VIDEO -o REPORT_DIR``: the video's keypoints streamed over a
  delayed, lossy link to hold, linear and forecast receivers, swept over delay, send interval
  and loss (``report.nc``, three plots, a table).
* ``snfseq backtest DATA.csv|DATA.parquet -H H -o REPORT_DIR``: rolling-origin backtest of a
  forecaster (flow, gaussian-gru, seasonal-naive, random-walk) on a wide or long table,
  against the seasonal naive and random-walk baselines on the same windows.

Every subcommand takes the common options of :mod:`~snfseq.cli.common` (``--config``,
``--seed``, ``--device``, ``--threads``, ``--quiet``, ``--verbose``, ``--force``,
``--version``); option values can come from a TOML file (:mod:`~snfseq.cli.config`), under
those of the command line. Options are checked before any work starts; no output is replaced
without ``--force``; a bad option, or any error, ends the command with exit status 2 and one
line (``--verbose``: with the traceback).

The modules: :mod:`~snfseq.cli.common` (the shared conventions), :mod:`~snfseq.cli.config`
(``--config``), :mod:`~snfseq.cli.checks` (the checks, folders of outputs),
:mod:`~snfseq.cli.motion` (``demo``, ``extract``, ``train``, ``forecast``),
:mod:`~snfseq.cli.refine`, :mod:`~snfseq.cli.diagnose`, :mod:`~snfseq.cli.transfer`
(``render``, ``stream``), :mod:`~snfseq.cli.backtest` with :mod:`~snfseq.cli.datafile` (its
data file) and :mod:`~snfseq.cli.report` (its report).

Example:
    >>> build_parser().parse_args(["demo", "--epochs", "3"]).epochs
    3
"""

from __future__ import annotations

__all__ = ["COMMANDS", "build_parser", "main"]

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence

from snfseq.cli import backtest, diagnose, motion, refine, transfer
from snfseq.cli.checks import check_counts
from snfseq.cli.common import (
    HelpFormatter,
    Parser,
    UsageError,
    add_common_options,
    error_line,
    running,
)
from snfseq.cli.config import apply_config
from snfseq.version import __version__

#: Every command and what runs it, its checks first, in the order of ``snfseq --help``.
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    **motion.COMMANDS,
    "refine": refine.run,
    "diagnose": diagnose.run,
    **transfer.COMMANDS,
    "backtest": backtest.run,
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``snfseq`` command: every subcommand with its own options
    and the common ones.

    Example:
        >>> args = build_parser().parse_args(["train", "a.nc", "b.nc", "-o", "m.pt"])
        >>> args.command, args.keypoints, args.output, args.context, args.layout, args.threads
        ('train', ['a.nc', 'b.nc'], 'm.pt', 8, 'auto', None)
    """
    parser = Parser(
        prog="snfseq",
        description="Sequence normalizing flows with stochastic (MCMC) refinement. "
        "'snfseq COMMAND --help' explains a command and each of its options.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"snfseq {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    motion.add_parsers(commands)
    refine.add_parser(commands)
    diagnose.add_parser(commands)
    transfer.add_parsers(commands)
    backtest.add_parser(commands)
    for subparser in commands.choices.values():  # Parsers, as add_subparsers makes its own kind
        subparser.formatter_class = HelpFormatter
        add_common_options(subparser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``snfseq`` command; returns the exit status (2 on any error, after
    one line on stderr).

    Example:
        >>> main(["train", "missing.nc", "-o", "m.pt"])  # the error message goes to stderr
        2
        >>> try:
        ...     main(["--help"])
        ... except SystemExit as done:  # argparse exits after printing the help
        ...     print("exit status", done.code)
        usage: snfseq [-h] [--version] COMMAND ...
        ...
        exit status 0
    """
    tokens = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in tokens or "-v" in tokens
    command = next((token for token in tokens if not token.startswith("-")), "")
    parser = build_parser()
    try:
        apply_config(parser, tokens)
        args = parser.parse_args(tokens)
        check_counts(args)
        with running(args):
            return COMMANDS[args.command](args)
    except UsageError as error:
        print(error, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"snfseq {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if verbose:
            traceback.print_exc()
        print(f"snfseq {command}: error: {error_line(error, verbose)}", file=sys.stderr)
        return 2
