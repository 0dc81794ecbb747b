"""Checks shared by the ``snfseq`` commands, and how they put a folder of outputs in place.

Every check runs before any work and raises a one-line ``ValueError`` (or
``FileNotFoundError``) naming the option and the value at fault, which
:func:`snfseq.cli.main` prints as ``snfseq COMMAND: error: ...`` with exit status 2.

Example:
    >>> import argparse
    >>> check_counts(argparse.Namespace(epochs=0))
    Traceback (most recent call last):
    ...
    ValueError: --epochs must be >= 1, got 0
"""

from __future__ import annotations

__all__ = [
    "COUNTS",
    "check_counts",
    "check_inputs",
    "check_motion",
    "check_output_file",
    "check_report_folder",
    "write_into",
]

import argparse
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from snfseq.data.io import SUFFIXES
from snfseq.landmarks import get_layout

#: Video files the motion commands read and write.
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov")
# The output suffixes of each command that writes one file.
_OUTPUTS = {
    "extract": SUFFIXES,
    "train": (".pt",),
    "forecast": (".nc",),
    "render": VIDEO_SUFFIXES,
}
#: Integer options of every command (by ``argparse`` destination) and their least value.
COUNTS = {
    "epochs": 1,
    "batches_per_epoch": 1,
    "samples": 1,
    "context": 1,
    "horizon": 1,
    "hidden": 1,
    "layers": 1,
    "transforms": 1,
    "num_samples": 1,
    "best": 1,
    "frames": 1,
    "max_gap": 0,
    "source_frame": 0,
    "lead": 1,
    "start_frame": 0,
    "prediction_length": 1,
    "context_length": 2,
    "season_length": 1,
    "windows": 1,
    "stride": 1,
}
# Input files of each motion command, by option name.
_VIDEO_INPUTS = ("model", "video", "keypoints")
_INPUTS = {
    "extract": ("video",),
    "forecast": ("model", "keypoints"),
    "render": _VIDEO_INPUTS,
    "stream": _VIDEO_INPUTS,
}
# The lists of ``snfseq stream``: option, type, least value, whether values must stay below 1.
_LISTS = (("delays", int, 0, False), ("every", int, 1, False), ("losses", float, 0, True))


def check_counts(args: argparse.Namespace) -> None:
    """Refuses an integer option (one of :data:`COUNTS`, or each of a list) below its least value.

    Example:
        >>> import argparse
        >>> check_counts(argparse.Namespace(lead=[1, -2], windows=None))
        Traceback (most recent call last):
        ...
        ValueError: --lead must be >= 1, got -2
    """
    for name, low in COUNTS.items():
        values = getattr(args, name, None)
        for value in values if isinstance(values, list) else [values]:
            if value is not None and value < low:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag} must be >= {low}, got {value}")


def check_inputs(paths: Sequence[str | os.PathLike[str] | None]) -> None:
    """Refuses a missing input file (None entries, options not given, are skipped).

    Example:
        >>> check_inputs([None, "no/such/file.csv"])
        Traceback (most recent call last):
        ...
        FileNotFoundError: not found: no/such/file.csv
    """
    for path in paths:
        if path and not Path(path).exists():
            raise FileNotFoundError(f"not found: {path}")


def check_output_file(output: str | os.PathLike[str], allowed: Sequence[str]) -> None:
    """Refuses an output file with another suffix than ``allowed``, or in a missing folder.

    Example:
        >>> check_output_file("model.ckpt", (".pt",))
        Traceback (most recent call last):
        ...
        ValueError: --output model.ckpt must end in .pt
    """
    path = Path(output)
    if path.suffix.lower() not in allowed:
        raise ValueError(f"--output {path} must end in {' or '.join(allowed)}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output folder not found: {path.parent}")


def check_report_folder(output: str | os.PathLike[str], force: bool) -> Path:
    """The report folder to create: refuses a file, a missing parent folder, and a non-empty
    folder unless ``force`` (then the whole folder is replaced once the new one is written).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     (Path(tmp) / "old.csv").write_text("x")
        ...     check_report_folder(tmp, force=False)
        Traceback (most recent call last):
        ...
        ValueError: --output ... is not empty; pass --force to replace it
    """
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--output {folder} is a file, not a folder")
    if not folder.resolve().parent.is_dir():
        raise FileNotFoundError(f"output folder not found: {folder.resolve().parent}")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise ValueError(f"--output {folder} is not empty; pass --force to replace it")
    return folder


def check_motion(args: argparse.Namespace) -> None:
    """The checks of ``extract``, ``train``, ``forecast``, ``render`` and ``stream``: inputs,
    output suffix and folder, layouts and coordinates, sample counts, the stream's lists.

    Example:
        >>> import argparse
        >>> check_motion(argparse.Namespace(command="demo"))  # nothing to check
    """
    inputs = list(getattr(args, "keypoints", None) or []) if args.command == "train" else []
    inputs += [getattr(args, name) for name in _INPUTS.get(args.command, ())]
    check_inputs(inputs)
    if args.command in _OUTPUTS:
        check_output_file(args.output, _OUTPUTS[args.command])
    if args.command == "train":
        if args.layout not in ("auto", "none"):
            get_layout(args.layout)
        coords = args.coords.split(",")
        if len(set(coords)) != len(coords) or not set(coords) <= {"x", "y", "z"}:
            raise ValueError(f"--coords must be distinct names among x, y, z, got {args.coords}")
    if args.command == "render":
        for name in ("samples", "best"):
            if getattr(args, name) > args.num_samples:
                flag = f"--{name}"
                raise ValueError(f"{flag} must be <= --num-samples {args.num_samples}")
    if args.command == "stream":
        _check_stream(args)


def _check_stream(args: argparse.Namespace) -> None:
    """Parses the lists of ``snfseq stream`` into ``args`` and refuses bad stream options."""
    for name, kind, low, below_one in _LISTS:
        text = getattr(args, name)
        try:
            values = [kind(value) for value in text.split(",")]
        except ValueError:
            values = []
        if not values or any(v < low or (below_one and v >= 1) for v in values):
            rule = "in [0, 1)" if below_one else f">= {low}"
            raise ValueError(f"--{name} must be comma-separated numbers {rule}, got {text!r}")
        setattr(args, name, values)
    args.variant = list(dict.fromkeys(args.variant or ["none", "paper"]))  # repeats count once
    if args.burst is not None and not args.burst >= 1:
        raise ValueError(f"--burst must be >= 1, got {args.burst}")
    if args.held_out is not None and not 0 < args.held_out < 1:
        raise ValueError(f"--held-out must be a fraction in (0, 1), got {args.held_out}")
    if args.held_out is not None and args.start_frame is not None:
        raise ValueError("give --start-frame or --held-out, not both")
    if args.frames is not None and args.frames <= args.context:
        raise ValueError(f"--frames must be > --context {args.context}, got {args.frames}")
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise ValueError(f"--output {output} is a file, not a folder")
    if not output.resolve().parent.is_dir():
        raise FileNotFoundError(f"output folder not found: {output.resolve().parent}")


def write_into(folder: str | os.PathLike[str], write: Callable[[Path], list[str]]) -> list[str]:
    """Writes files into ``folder`` (created if missing) with no partial result.

    ``write`` puts its files into a staging folder beside them and returns their names; they
    are then moved in, replacing files of the same names and keeping the others. On a failure
    nothing in ``folder`` changes, and a folder created for the purpose is removed.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     def fail(staging: Path) -> list[str]:
        ...         (staging / "half.txt").write_text("x")
        ...         raise ValueError("cannot finish")
        ...     try:
        ...         write_into(Path(tmp) / "report", fail)
        ...     except ValueError:
        ...         pass
        ...     sorted(p.name for p in Path(tmp).iterdir())
        []
    """
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))
    try:
        names = write(staging)
        for name in names:
            os.replace(staging / name, folder / name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not any(folder.iterdir()):
            folder.rmdir()
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return names
