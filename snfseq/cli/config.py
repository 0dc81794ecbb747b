"""``--config FILE``: option values from a TOML file, under those of the command line.

Keys at the top of the file apply to every command that has the option; keys under a
``[COMMAND]`` table apply to that command only, and win over the top ones. Keys are the long
option names, with ``-`` or ``_`` (``num-samples`` or ``num_samples``); values are TOML
values of the option's type: integers, numbers, strings in quotes, ``true``/``false`` for
flags, arrays for options that take several values. Positional arguments (input files) stay
on the command line. Whatever the command line gives wins over the file, and the file over
the defaults::

    seed = 1
    threads = 1

    [train]
    epochs = 20
    hidden = 64
    output = "model.pt"

    [forecast]
    samples = 50
    refinement = "paper"

Example:
    >>> import tempfile
    >>> from snfseq.cli import build_parser
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "run.toml").write_text("seed = 3\\n[train]\\nepochs = 20\\n")
    ...     parser = build_parser()
    ...     argv = ["train", "a.nc", "-o", "m.pt", "--config", f"{tmp}/run.toml", "--seed", "5"]
    ...     apply_config(parser, argv)
    ...     args = parser.parse_args(argv)
    >>> args.epochs, args.seed  # from the file; from the command line, which wins
    (20, 5)
"""

from __future__ import annotations

__all__ = ["apply_config", "config_path", "read_config"]

import argparse
import difflib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# Options a file cannot set: they concern the command line itself.
_NOT_IN_FILES = ("config", "help", "version")


def config_path(argv: Sequence[str]) -> str | None:
    """The ``--config`` file of a command line, if any (the last one given wins).

    Example:
        >>> config_path(["train", "a.nc", "--config=run.toml"]), config_path(["demo"])
        ('run.toml', None)
    """
    found = None
    for index, token in enumerate(argv):
        if token == "--":
            break
        if token == "--config" and index + 1 < len(argv):
            found = argv[index + 1]
        elif token.startswith("--config="):
            found = token.split("=", 1)[1]
    return found


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The contents of a TOML file, with errors that name it.

    Example:
        >>> read_config("missing.toml")
        Traceback (most recent call last):
        ...
        FileNotFoundError: --config file not found: missing.toml
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--config file not found: {file}")
    try:
        with file.open("rb") as handle:
            return tomllib.load(handle)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"--config {file} is not valid TOML: {error}") from None


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise ValueError(f"{parser.prog} has no subcommands")


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The actions of a parser by every name a file may give them (dest, long options)."""
    names: dict[str, argparse.Action] = {}
    for action in parser._actions:
        if action.dest in _NOT_IN_FILES or isinstance(action, argparse._HelpAction):
            continue
        names[action.dest] = action
        for option in action.option_strings:
            if option.startswith("--"):
                names[option[2:].replace("-", "_")] = action
    return names


def _item(action: argparse.Action, value: Any, where: str) -> Any:
    """One value of an option, of the option's type and among its choices."""
    kind = action.type or str
    if isinstance(value, (bool, dict, list)) or kind not in (int, float, str):
        raise ValueError(f"{where} takes a single {getattr(kind, '__name__', 'value')}")
    if kind is int and not isinstance(value, int):
        raise ValueError(f"{where} must be an integer, got {value!r}")
    if kind is float and not isinstance(value, (int, float)):
        raise ValueError(f"{where} must be a number, got {value!r}")
    if kind is str and not isinstance(value, str):
        raise ValueError(f"{where} must be a string (in quotes), got {value!r}")
    converted = kind(value)
    if action.choices is not None and converted not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise ValueError(f"{where} must be one of {choices}, got {value!r}")
    return converted


def _value(action: argparse.Action, value: Any, where: str) -> Any:
    """The value a file gives an option, as the command line would have set it."""
    if action.nargs == 0:  # a flag
        if not isinstance(value, bool):
            raise ValueError(f"{where} is a flag: true or false, got {value!r}")
        return action.const if value else action.default
    several = action.nargs in ("+", "*") or isinstance(action, argparse._AppendAction)
    if isinstance(value, list):
        if not several:
            raise ValueError(f"{where} takes one value, not a list")
        if not value and action.nargs == "+":
            raise ValueError(f"{where} needs at least one value")
        return [_item(action, item, where) for item in value]
    return [_item(action, value, where)] if several else _item(action, value, where)


def _unknown(key: str, known: Sequence[str], place: str, what: str) -> ValueError:
    """The error of a key that names no option, with the nearest option name as a hint."""
    near = difflib.get_close_matches(key.replace("-", "_"), sorted(known), n=1)
    hint = f"; did you mean {near[0].replace('_', '-')!r}?" if near else ""
    return ValueError(f"{place}: {key} is not an option of {what}{hint}")


def _settings(
    values: dict[str, Any], command: str, parser: argparse.ArgumentParser, where: str
) -> dict[str, Any]:
    """What a table sets on ``command``'s parser, by destination."""
    options, settings = _options(parser), {}
    for key, value in values.items():
        action = options.get(key.replace("-", "_"))
        place = f"{where}: {key}"
        if action is None:
            raise _unknown(key, list(options), where, f"snfseq {command}")
        if not action.option_strings:
            raise ValueError(
                f"{place} is an argument of snfseq {command}: give it on the command line"
            )
        settings[action.dest] = _value(action, value, place)
    return settings


def apply_config(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Makes the values of the ``--config`` file of ``argv`` (if any) the defaults of its
    command's parser, checked against the options (see the module).

    Raises:
        FileNotFoundError: For a missing file.
        ValueError: For a file that is not TOML, an unknown option or table, or a value of
            the wrong type, naming the file and the key.
    """
    path = config_path(argv)
    commands = _subcommands(parser)
    command = next((token for token in argv if not token.startswith("-")), None)
    if path is None or command not in commands:
        return  # nothing to read, or argparse reports the command line first
    contents = read_config(path)
    tables = {key: value for key, value in contents.items() if isinstance(value, dict)}
    for name in tables:
        if name not in commands:
            raise ValueError(
                f"--config {path}: [{name}] is not a command; tables are commands "
                f"({', '.join(commands)})"
            )
    shared = {key: value for key, value in contents.items() if key not in tables}
    subparser = commands[command]
    own = _options(subparser)
    everywhere = {name for p in commands.values() for name in _options(p)}
    for key in shared:
        if key.replace("-", "_") not in everywhere:
            raise _unknown(key, list(everywhere), f"--config {path}", "any snfseq command")
    mine = {key: value for key, value in shared.items() if key.replace("-", "_") in own}
    settings = _settings(mine, command, subparser, f"--config {path}")
    settings |= _settings(
        tables.get(command, {}), command, subparser, f"--config {path} [{command}]"
    )
    for action in subparser._actions:
        if action.dest in settings:
            action.required = False  # the file gives it; the command line may still
    subparser.set_defaults(**settings)
