"""MkDocs hook: the command-line reference, written from snfseq's argparse parser at build time.

A page that holds the marker line ``<!-- snfseq-cli-reference -->`` gets, in its place, one
section per subcommand of :func:`snfseq.cli.build_parser`: its help line, its usage and a
table of its arguments with their defaults and choices. Nothing is copied by hand, so the page
follows the parser when options change.
"""

from __future__ import annotations

import argparse
import html
import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

MARKER = "<!-- snfseq-cli-reference -->"
USAGE_WIDTH = 90  # fixed, so that the page does not depend on the terminal that builds it


def on_config(config: Any) -> Any:
    # Import snfseq from this checkout even where it is not installed.
    root = str(Path(config.config_file_path).parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER not in markdown:
        return markdown
    try:
        from snfseq.cli import build_parser
    except ImportError as error:
        raise PluginError(f"the CLI reference needs snfseq importable: {error}") from error
    return markdown.replace(MARKER, render_parser(build_parser()))


def render_parser(parser: argparse.ArgumentParser) -> str:
    """Markdown for a parser with subcommands: its usage, then one section per subcommand."""
    parts = [_usage_block(parser)]
    if parser.description:
        parts.append(_escape(parser.description))
    if _options(parser):
        parts.append(_arguments_table(parser))
    for name, subparser, summary in _subcommands(parser):
        parts.append(f"## {parser.prog} {name}")
        if summary:
            parts.append(_escape(summary[0].upper() + summary[1:]) + ".")
        parts.append(_usage_block(subparser))
        parts.append(_arguments_table(subparser))
    return "\n\n".join(parts) + "\n"


def _subcommands(
    parser: argparse.ArgumentParser,
) -> list[tuple[str, argparse.ArgumentParser, str | None]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {choice.dest: choice.help for choice in action._choices_actions}
            return [
                (name, subparser, summaries.get(name)) for name, subparser in action.choices.items()
            ]
    raise PluginError(f"parser {parser.prog!r} has no subcommands")


def _usage_block(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(prog=parser.prog, width=USAGE_WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return "```text\n" + formatter.format_help().strip() + "\n```"


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The parser's arguments, less ``--help`` and the subcommands (documented on their own)."""
    skipped = (argparse._HelpAction, argparse._SubParsersAction)
    return [action for action in parser._actions if not isinstance(action, skipped)]


def _arguments_table(parser: argparse.ArgumentParser) -> str:
    rows = ["| argument | default | description |", "|---|---|---|"]
    for action in _options(parser):
        rows.append(f"| {_names(action)} | {_default(action)} | {_description(parser, action)} |")
    return "\n".join(rows)


def _names(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    takes_value = action.nargs != 0
    metavar = action.metavar or action.dest.upper()
    value = f" {metavar}" if takes_value else ""
    if action.nargs in ("+", "*"):
        value = f" {metavar} ..."
    elif isinstance(action.nargs, int) and action.nargs > 1:
        value = " " + " ".join([metavar] * action.nargs)
    return ", ".join(f"`{option}{value}`" for option in action.option_strings)


def _default(action: argparse.Action) -> str:
    if action.required or not action.option_strings:
        return "required"
    if action.nargs == 0:  # a flag: store_true/false, store_const, append_const, version
        return (
            {True: "on", False: "off"}.get(action.default, "&nbsp;")
            if isinstance(action.default, bool)
            else "&nbsp;"
        )
    if action.default is None or action.default is argparse.SUPPRESS:
        return "none"
    default = action.default
    if isinstance(default, (list, tuple)):
        default = " ".join(str(item) for item in default)
    return f"`{default}`"


def _description(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    text = ""
    if action.help and action.help is not argparse.SUPPRESS:
        # argparse's own expansion of %(default)s, %(choices)s and the like.
        params = {**vars(action), "prog": parser.prog}
        if action.choices is not None:
            params["choices"] = ", ".join(str(choice) for choice in action.choices)
        text = action.help % params
    notes = []
    if action.choices is not None:
        notes.append("one of " + ", ".join(f"`{choice}`" for choice in action.choices))
    if isinstance(action, argparse._AppendAction):
        notes.append("repeatable")
    if action.type is not None and getattr(action.type, "__name__", None) in ("int", "float"):
        notes.append(action.type.__name__)
    described = _escape(text)
    if notes:
        described = f"{described} ({'; '.join(notes)})" if described else "; ".join(notes)
    return described or "&nbsp;"


def _escape(text: str) -> str:
    """Plain text safe in a Markdown table cell: no raw HTML, no column breaks."""
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")
