"""Griffe extension: a docstring's ``Example:`` section is parsed as Google's ``Examples:``.

snfseq's docstrings head their doctests ``Example:`` (the house style). Griffe's Google parser
reads only ``Examples:`` as the examples section and turns ``Example:`` into an admonition whose
``>>>`` lines render as nested quotes, and whose outputs (``[2, 2, 1]``) read as Markdown
reference links. Renaming the heading before parsing shows them as code, as written.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

# A section heading sits at the docstring's own indentation (column 0 once griffe dedents it).
_HEADING = re.compile(r"^Example:[ \t]*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _HEADING.sub("Examples:", obj.docstring.value)
