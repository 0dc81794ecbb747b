"""``snfseq diagnose TRACE.nc -o FOLDER``: the ArviZ diagnostics of a saved refinement trace.

Reads a file of ``snfseq refine`` (or any netCDF DataTree with ArviZ groups ``posterior`` and
``sample_stats``, e.g. :func:`snfseq.diagnostics.run_chains` written with ``to_netcdf``) and
writes into the folder, at once:

* ``summary.csv``: one row per block and forecast step: ``lam``, the largest rank-normalised
  split R-hat and the smallest bulk and tail ESS over the features, the largest MCSE of the
  mean, the acceptance rate, and the Kish ESS of the path weights
  (:func:`snfseq.diagnostics.summary`); ``summary_detail.csv`` the same per feature;
* ``summary.txt``: the table as printed, with its notes;
* ``trace.png`` and ``rank.png``: the chains of every block at one forecast step
  (``--step``), for the first ``--features`` features; ``acceptance.png``: acceptance rate
  and energy of every block.

A forecast's chains run only ``--steps`` transitions per block, each from its own flow draw:
R-hat and ESS need at least 4 draws per chain (NaN, with a note, below that), and with a few
draws they say how far a block moves its chains from their starts rather than whether long
chains converge (a note says so; :func:`snfseq.diagnostics.run_chains` runs long chains).

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_parser(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["diagnose", "refined.nc", "-o", "diagnostics"])
    >>> args.step, args.features
    (0, 2)
"""

from __future__ import annotations

__all__ = ["FILES", "add_parser", "run"]

import argparse
import warnings
from pathlib import Path
from typing import Any

import xarray as xr

from snfseq.cli.checks import check_inputs, check_report_folder, write_into
from snfseq.cli.common import reading
from snfseq.diagnostics import summary

# Fewer draws per chain than this get a note on what R-hat and ESS then measure.
_MIN_CHAIN_DRAWS = 100
#: The files of a diagnostics folder.
FILES = (
    "summary.csv",
    "summary_detail.csv",
    "summary.txt",
    "trace.png",
    "rank.png",
    "acceptance.png",
)


def add_parser(commands: Any) -> None:
    """Adds ``diagnose`` to ``commands``, the subparsers of the ``snfseq`` parser.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser()
        >>> add_parser(parser.add_subparsers(dest="command"))
        >>> parser.parse_args(["diagnose", "r.nc", "-o", "d", "--step", "3"]).step
        3
    """
    diagnose = commands.add_parser(
        "diagnose",
        help="ArviZ summary table and plots of a saved refinement trace",
        description="R-hat, bulk and tail ESS, MCSE, acceptance and weight ESS per "
        "refinement block and forecast step, as tables, and trace, rank and acceptance plots, "
        "of a trace written by snfseq refine.\n\n"
        "example: snfseq diagnose refined.nc -o diagnostics/",
    )
    diagnose.add_argument(
        "trace", help="a netCDF file of snfseq refine (groups posterior and sample_stats)"
    )
    diagnose.add_argument("--output", "-o", required=True, help="folder of tables and plots")
    diagnose.add_argument(
        "--step", type=int, default=0, help="position of the forecast step the plots show"
    )
    diagnose.add_argument(
        "--features", type=int, default=2, help="how many leading features the plots show"
    )


def _read(path: str) -> xr.DataTree:
    with reading(path, "a refinement trace"), xr.open_datatree(path) as opened:
        tree = opened.load()  # and the file closed now: netCDF handles left to the garbage
        # collector, of several groups of one file, have crashed a later open of it
    missing = [group for group in ("posterior", "sample_stats") if group not in tree.children]
    if missing:
        raise ValueError(
            f"{path} holds no refinement trace (no group {missing[0]!r}); write one with "
            "snfseq refine"
        )
    return tree


def run(args: argparse.Namespace) -> int:
    """Runs ``snfseq diagnose`` (see the module); returns the exit status.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser()
        >>> add_parser(parser.add_subparsers(dest="command"))
        >>> run(parser.parse_args(["diagnose", "missing.nc", "-o", "diagnostics"]))
        Traceback (most recent call last):
        ...
        FileNotFoundError: not found: missing.nc
    """
    check_inputs([args.trace])
    check_report_folder(args.output, args.force)
    tree = _read(args.trace)
    posterior = tree["posterior"].to_dataset()
    steps = posterior.sizes.get("time", 1)
    if args.step >= steps:
        raise ValueError(f"--step must be < {steps}, the forecast steps of {args.trace}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = summary(tree)
    notes = list(dict.fromkeys(str(warning.message) for warning in caught))
    if _MIN_CHAIN_DRAWS > result.num_draws >= 4:
        notes.append(
            f"{result.num_draws} draws per chain, each chain started from its own flow draw: "
            "R-hat and ESS say how far a block moves its chains from their starts, not "
            "whether long chains converge (snfseq.diagnostics.run_chains runs long ones)"
        )
    text = "\n".join([str(result), *(f"note: {note}" for note in notes)])
    chosen = {"time": args.step, "features": args.features}
    from snfseq import plots  # matplotlib and arviz-plots: loaded when needed

    def write(staging: Path) -> list[str]:
        result.table.to_csv(staging / "summary.csv")
        result.detail.to_csv(staging / "summary_detail.csv")
        (staging / "summary.txt").write_text(text + "\n")
        for name, figure in (
            ("trace.png", plots.plot_trace(tree, **chosen)),
            ("rank.png", plots.plot_rank(tree, **chosen)),
            ("acceptance.png", plots.plot_acceptance(tree)),
        ):
            figure.savefig(staging / name, dpi=100, bbox_inches="tight")
        return list(FILES)

    write_into(args.output, write)
    print(text)
    print(f"wrote {', '.join(FILES)} into {args.output}")
    return 0
