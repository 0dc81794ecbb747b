"""Checks shared by the ``snfseq`` commands, and how they put a folder of outputs in place.

Every check runs before any work and raises a one-line ``ValueError`` (or
``FileNotFoundError``, ``FileExistsError``) naming the option and the value at fault, which
:func:`snfseq.cli.main` prints as ``snfseq COMMAND: error: ...`` with exit status 2. No output
is replaced without ``--force``: an existing one is an error that says so.

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
    "VIDEO_SUFFIXES",
    "check_counts",
    "check_inputs",
    "check_motion",
    "check_output_file",
    "check_report_folder",
    "checked",
    "write_into",
]

import argparse
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from snfseq.cli.common import resolved_device
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
    "threads": 1,
    "checkpoint_every": 1,
    "chains": 1,
    "steps": 1,
    "features": 1,
    "step": 0,
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


def check_output_file(
    output: str | os.PathLike[str], allowed: Sequence[str], force: bool, option: str = "--output"
) -> None:
    """Refuses an output file with another suffix than ``allowed``, in a missing folder, or
    already there unless ``force``.

    Example:
        >>> check_output_file("model.ckpt", (".pt",), force=False)
        Traceback (most recent call last):
        ...
        ValueError: --output model.ckpt must end in .pt
    """
    path = Path(output)
    if path.suffix.lower() not in allowed:
        raise ValueError(f"{option} {path} must end in {' or '.join(allowed)}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output folder not found: {path.parent}; create it first")
    if path.exists() and not force:
        raise FileExistsError(f"{option} {path} exists; pass --force to replace it")


def check_report_folder(output: str | os.PathLike[str], force: bool) -> Path:
    """The report folder to create: refuses a file, a missing parent folder, and a non-empty
    folder unless ``force`` (then the command replaces its files in it, or, as ``backtest``
    does, the whole folder).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     (Path(tmp) / "old.csv").write_text("x")
        ...     check_report_folder(tmp, force=False)
        Traceback (most recent call last):
        ...
        FileExistsError: --output ... is not empty; pass --force to replace it
    """
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--output {folder} is a file, not a folder")
    if not folder.resolve().parent.is_dir():
        raise FileNotFoundError(
            f"output folder not found: {folder.resolve().parent}; create it first"
        )
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise FileExistsError(f"--output {folder} is not empty; pass --force to replace it")
    return folder


def check_motion(args: argparse.Namespace) -> None:
    """The checks of the keypoint and motion-transfer commands (``demo``, ``extract``,
    ``train``, ``forecast``, ``render``, ``stream``): inputs, outputs (suffix, folder,
    ``--force``), layouts and coordinates, resumable training, sample counts, the stream's
    lists.

    Example:
        >>> import argparse
        >>> check_motion(argparse.Namespace(command="demo", output="new-demo", force=False,
        ...                                 layout="mesh10", device="auto"))
    """
    inputs = list(getattr(args, "keypoints", None) or []) if args.command == "train" else []
    inputs += [getattr(args, name) for name in _INPUTS.get(args.command, ())]
    check_inputs(inputs)
    if args.command in _OUTPUTS:
        check_output_file(args.output, _OUTPUTS[args.command], args.force)
    if args.command in ("demo", "stream"):
        check_report_folder(args.output, args.force)
    if args.command in ("demo", "train") and args.layout not in ("auto", "none"):
        get_layout(args.layout)
    if args.command == "demo":
        wanted, picked = (
            resolved_device(args.device),
            "cuda" if torch.cuda.is_available() else "cpu",
        )
        if wanted != picked:
            raise ValueError(
                f"--device {args.device}: snfseq demo trains on {picked} here (it has no device "
                "setting); CUDA_VISIBLE_DEVICES= (empty) keeps it off the GPU"
            )
    if args.command == "train":
        coords = args.coords.split(",")
        if len(set(coords)) != len(coords) or not set(coords) <= {"x", "y", "z"}:
            raise ValueError(f"--coords must be distinct names among x, y, z, got {args.coords}")
        _check_checkpoint(args)
    if args.command in ("render", "stream") and args.frames is not None:
        if args.frames <= args.context:
            raise ValueError(f"--frames must be > --context {args.context}, got {args.frames}")
    if args.command == "render":
        check_output_file(Path(args.output).with_suffix(".json"), (".json",), args.force, "scores")
        for name in ("samples", "best"):
            if getattr(args, name) > args.num_samples:
                flag = f"--{name}"
                raise ValueError(f"{flag} must be <= --num-samples {args.num_samples}")
    if args.command == "stream":
        _check_stream(args)


def _check_checkpoint(args: argparse.Namespace) -> None:
    """Refuses resumable-training options without a checkpoint file, and a checkpoint file
    that would be overwritten without ``--resume`` or ``--force``."""
    if args.checkpoint is None:
        for flag in ("resume", "checkpoint_every", "checkpoint_minutes"):
            if getattr(args, flag):
                raise ValueError(f"--{flag.replace('_', '-')} needs --checkpoint FILE")
        return
    path = Path(args.checkpoint)
    if args.checkpoint_minutes is not None and not args.checkpoint_minutes > 0:
        raise ValueError(f"--checkpoint-minutes must be > 0, got {args.checkpoint_minutes}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"checkpoint folder not found: {path.parent}; create it first")
    if path.resolve() == Path(args.output).resolve():
        raise ValueError("--checkpoint must be another file than --output (the trained model)")
    if path.exists() and not (args.resume or args.force):
        raise FileExistsError(
            f"--checkpoint {path} exists; pass --resume to continue from it, or --force to "
            "start afresh over it"
        )


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
    args.variant = list(dict.fromkeys(args.variant))  # repeats count once
    if args.burst is not None and not args.burst >= 1:
        raise ValueError(f"--burst must be >= 1, got {args.burst}")
    if args.held_out is not None and not 0 < args.held_out < 1:
        raise ValueError(f"--held-out must be a fraction in (0, 1), got {args.held_out}")
    if args.held_out is not None and args.start_frame is not None:
        raise ValueError("give --start-frame or --held-out, not both")


def checked(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``command`` run after :func:`check_motion` of its options.

    Example:
        >>> import argparse
        >>> run = checked(lambda args: 0)
        >>> run(argparse.Namespace(command="forecast", model="missing.pt", keypoints=None))
        Traceback (most recent call last):
        ...
        FileNotFoundError: not found: missing.pt
    """

    def run(args: argparse.Namespace) -> int:
        check_motion(args)
        return command(args)

    return run


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
