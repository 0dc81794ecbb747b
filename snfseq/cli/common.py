"""What every ``snfseq`` command shares: the common options, the help format, one-line errors,
reading input files, and the run-time settings (seed, threads, device, native logs).

Every subcommand takes the common options (:func:`add_common_options`): ``--config``,
``--seed``, ``--device``, ``--threads``, ``--quiet``, ``--verbose``, ``--force`` and
``--version``. :func:`running` applies them around a command; :func:`error_line` is the one
line an error becomes, which :func:`snfseq.cli.main` prints with exit status 2.

Example:
    >>> parser = Parser(prog="snfseq example", formatter_class=HelpFormatter)
    >>> add_common_options(parser)
    >>> args = parser.parse_args(["--threads", "1", "-q"])
    >>> args.config, args.seed, args.device, args.threads, args.quiet, args.verbose, args.force
    (None, 0, 'auto', 1, True, False, False)
"""

from __future__ import annotations

__all__ = [
    "HelpFormatter",
    "Parser",
    "UsageError",
    "add_common_options",
    "check_device",
    "error_line",
    "is_main_process",
    "load_keypoints",
    "load_model",
    "native_logs_hidden",
    "reading",
    "resolved_device",
    "running",
]

import argparse
import os
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import torch
import xarray as xr

from snfseq import data
from snfseq.data.datasets import _native_output_silenced
from snfseq.model import SequenceFlow
from snfseq.runtime import seeded
from snfseq.version import __version__

# Errors that carry their own explanation: their message is the whole line. Any other error
# is unexpected (a bug, or a library failing): its line names its type and how to see more.
_EXPLAINED = (ValueError, FileNotFoundError, FileExistsError, ImportError, NotImplementedError)
# The most characters of a library's message kept in a one-line error.
_MESSAGE_CHARS = 300


class UsageError(Exception):
    """A command line that argparse refused, with the program it was meant for.

    Example:
        >>> str(UsageError("snfseq train", "unrecognized arguments: --epoch"))
        'snfseq train: error: unrecognized arguments: --epoch; see snfseq train --help'
    """

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(f"{prog}: error: {message}; see {prog} --help")


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors raise :class:`UsageError` instead of printing the usage
    and exiting, so that :func:`snfseq.cli.main` reports them in one line with exit status 2.

    Example:
        >>> Parser(prog="snfseq x").parse_args(["--nope"])
        Traceback (most recent call last):
        ...
        snfseq.cli.common.UsageError: snfseq x: error: unrecognized arguments: --nope; see ...
    """

    def error(self, message: str) -> NoReturn:
        raise UsageError(self.prog, message)


class HelpFormatter(argparse.HelpFormatter):
    """Help with each option's default after its text (lists shown as on the command line);
    options without a default say in their own text what happens when they are not given.
    A description keeps its line breaks (its example lines), each line wrapped on its own.

    Example:
        >>> parser = argparse.ArgumentParser(prog="x", formatter_class=HelpFormatter)
        >>> _ = parser.add_argument("--lead", type=int, nargs="+", default=[1, 4], help="leads")
        >>> "leads (default: 1 4)" in parser.format_help()
        True
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines = []
        for line in text.splitlines():
            hang = indent + " " * (len(line) - len(line.lstrip()))
            wrapped = textwrap.fill(line, width, initial_indent=indent, subsequent_indent=hang)
            lines.append(wrapped or indent)
        return "\n".join(lines)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            not action.option_strings
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or "%(default)" in text
        ):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        return f"{text} (default: {str(shown).replace('%', '%%')})"


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Adds the options every command takes (see the module).

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_common_options(parser)
        >>> parser.parse_args(["--device", "cpu", "--force"]).force
        True
    """
    common = parser.add_argument_group("common options")
    common.add_argument(
        "--config",
        metavar="FILE",
        help="TOML file of option values: `epochs = 20` at the top applies to every command "
        "with that option, under a [COMMAND] table to that command only; options given on "
        "the command line win over the file, the file over the defaults (default: none)",
    )
    common.add_argument(
        "--seed", type=int, default=0, help="random seed: the same seed gives the same result"
    )
    common.add_argument(
        "--device",
        default="auto",
        help="torch device: cpu, cuda, cuda:N; auto is CUDA when available, else the CPU "
        "(extract runs MediaPipe on the CPU whatever the device)",
    )
    common.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="torch CPU threads (default: torch's own, one per core or $OMP_NUM_THREADS); on "
        "a machine busy with other work, 1 thread is often faster",
    )
    common.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    common.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="on an error, the full traceback; and the native libraries' logs (MediaPipe, "
        "TensorFlow Lite), hidden otherwise",
    )
    common.add_argument(
        "--force",
        action="store_true",
        help="replace existing outputs (without it, an existing output is an error)",
    )
    common.add_argument("--version", action="version", version=f"snfseq {__version__}")


def check_device(name: str) -> str:
    """Refuses a device name torch does not know, or a CUDA device this machine lacks.

    Example:
        >>> check_device("auto"), check_device("cpu")
        ('auto', 'cpu')
        >>> check_device("gpu")
        Traceback (most recent call last):
        ...
        ValueError: --device 'gpu' is not a torch device; use auto, cpu, cuda or cuda:N
    """
    if name == "auto":
        return name
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(
            f"--device {name!r} is not a torch device; use auto, cpu, cuda or cuda:N"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: CUDA is not available here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise ValueError(f"--device {name}: this machine has {count} CUDA device(s)")
    elif device.type != "cpu":
        raise ValueError(f"--device {name}: snfseq runs on cpu or cuda, not {device.type}")
    return name


def resolved_device(name: str) -> str:
    """The device ``--device`` names, ``auto`` resolved: CUDA when available, else the CPU.

    Example:
        >>> resolved_device("cpu")
        'cpu'
    """
    if name != "auto":
        return name
    return "cuda" if torch.cuda.is_available() else "cpu"


def is_main_process() -> bool:
    """Whether this process writes outputs: the only one, or rank 0 under ``torchrun``.

    Example:
        >>> is_main_process()  # not under torchrun
        True
    """
    return int(os.environ.get("RANK", 0)) == 0


@contextmanager
def native_logs_hidden() -> Iterator[None]:
    """Hides what native code writes to the standard streams (MediaPipe's TensorFlow Lite
    and absl logs) while Python's own output (messages, progress bars) still shows.

    Python's ``sys.stdout`` and ``sys.stderr``, where they write to file descriptors 1 and 2,
    are moved to copies of those descriptors for the block; then
    :func:`snfseq.data.datasets._native_output_silenced` points 1 and 2 at the null device.

    Example:
        >>> with native_logs_hidden():
        ...     print("still shown")
        still shown
    """
    moved: list[tuple[str, Any]] = []
    for name, descriptor in (("stdout", 1), ("stderr", 2)):
        stream = getattr(sys, name)
        try:
            writes_there = stream.fileno() == descriptor
        except (AttributeError, OSError, ValueError):  # pytest's capture, a StringIO
            writes_there = False
        if writes_there:
            stream.flush()
            copy = os.fdopen(
                os.dup(descriptor), "w", buffering=1, encoding=stream.encoding, errors="replace"
            )
            moved.append((name, stream))
            setattr(sys, name, copy)
    try:
        with _native_output_silenced():
            yield
    finally:
        for name, stream in moved:
            getattr(sys, name).close()
            setattr(sys, name, stream)


@contextmanager
def running(args: argparse.Namespace) -> Iterator[None]:
    """Applies the common options around a command: ``--device`` checked, ``--threads`` set
    (and restored), every random stream seeded from ``--seed`` (and restored), and the
    native libraries' logs hidden unless ``--verbose``.

    Example:
        >>> args = argparse.Namespace(seed=0, device="cpu", threads=1, verbose=True)
        >>> before = torch.get_num_threads()
        >>> with running(args):
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """
    check_device(args.device)
    threads = torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolved_device(args.device)
    try:
        with seeded(args.seed, [device] if device.startswith("cuda") else []):
            if args.verbose:
                yield
            else:
                with native_logs_hidden():
                    yield
    finally:
        torch.set_num_threads(threads)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 3] + "..."


def error_line(error: BaseException, verbose: bool = False) -> str:
    """The one line an error is reported as: its message for the errors that explain
    themselves (bad options, missing or unreadable files), else its type, its message and,
    unless ``verbose``, how to see the traceback.

    Example:
        >>> error_line(ValueError("--epochs must be >= 1, got 0"))
        '--epochs must be >= 1, got 0'
        >>> error_line(RuntimeError("CUDA out of\\nmemory"))
        'RuntimeError: CUDA out of memory (unexpected; --verbose shows the traceback)'
    """
    if isinstance(error, _EXPLAINED):
        return _one_line(error) or type(error).__name__
    hint = "" if verbose else " (unexpected; --verbose shows the traceback)"
    return f"{type(error).__name__}: {_one_line(error)}{hint}"


@contextmanager
def reading(path: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Names the file in any error raised while reading it that does not name it already
    (xarray, numpy and torch errors seldom do).

    Example:
        >>> with reading("clip.nc", "a keypoint file"):
        ...     raise OSError("NetCDF: Unknown file format")
        Traceback (most recent call last):
        ...
        ValueError: cannot read clip.nc as a keypoint file: OSError: NetCDF: Unknown file format
    """
    try:
        yield
    except FileNotFoundError:
        raise
    except Exception as error:
        message = _one_line(error)
        if str(path) in message or Path(path).name in message:
            raise
        raise ValueError(
            f"cannot read {path} as {what}: {type(error).__name__}: {message}"
        ) from error


def load_keypoints(path: str) -> xr.DataArray:
    """The keypoints of a file, with errors that name it.

    Example:
        >>> load_keypoints("missing.nc")
        Traceback (most recent call last):
        ...
        FileNotFoundError: keypoint file not found: missing.nc
    """
    with reading(path, "a keypoint file (dims time, keypoint, coord)"):
        return data.load_keypoints(path)


def load_model(path: str, device: str) -> SequenceFlow:
    """A model from ``snfseq train`` on ``device`` (``auto``: CUDA when available).

    Example:
        >>> load_model("missing.pt", "cpu")
        Traceback (most recent call last):
        ...
        FileNotFoundError: ...missing.pt...
    """
    with reading(path, "a model from snfseq train"):
        return SequenceFlow.load(path, map_location=resolved_device(device))
