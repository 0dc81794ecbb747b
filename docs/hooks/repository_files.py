"""MkDocs hook: benchmark figures in the site, and docstrings' Sphinx roles shown as code.

The guides in ``docs/`` link figures as the repository holds them
(``../benchmarks/results/quality.png``), which a reader on a code host follows as is. MkDocs
sees only ``docs/``, so this hook serves every figure of ``benchmarks/results/`` at the same
place in the site (``benchmarks/results/quality.png``, read from the repository at build
time, never copied into ``docs/``) and rewrites links that leave ``docs/`` for one of them.
A link that leaves ``docs/`` for anything else is left alone, and MkDocs reports it.

Docstrings cross-reference in Sphinx's roles (``:class:`~snfseq.Forecast```), which
mkdocstrings prints as they are; the role is dropped here and the name kept as code (the last
component only when the name starts with ``~``, the title of ``title <target>``, as Sphinx
does).
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

SERVED = ("benchmarks/results",)  # repository folders whose figures the site serves
FIGURES = ("*.png", "*.svg")

_LINK = re.compile(r"(\]\()([^)\s]+)")
_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):<code>(~?)([^<]*)</code>")


def on_files(files: Files, config: Any) -> Files:
    root = Path(config.config_file_path).parent
    for folder in SERVED:
        for pattern in FIGURES:
            for figure in sorted((root / folder).glob(pattern)):
                files.append(
                    File(
                        f"{folder}/{figure.name}",
                        src_dir=str(root),
                        dest_dir=config.site_dir,
                        use_directory_urls=config.use_directory_urls,
                    )
                )
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    page_folder = posixpath.dirname(page.file.src_uri)
    docs_in_repository = posixpath.relpath(
        Path(config.docs_dir).resolve().as_posix(),
        Path(config.config_file_path).parent.resolve().as_posix(),
    )

    def rewrite(match: re.Match[str]) -> str:
        target = match.group(2)
        if "://" in target or target.startswith(("#", "/", "mailto:")):
            return match.group(0)
        path, _, anchor = target.partition("#")
        inside_docs = posixpath.normpath(posixpath.join(page_folder, path))
        if not inside_docs.startswith("../"):
            return match.group(0)
        in_repository = posixpath.normpath(posixpath.join(docs_in_repository, inside_docs))
        if not in_repository.startswith(tuple(f"{folder}/" for folder in SERVED)):
            return match.group(0)
        relative = posixpath.relpath(in_repository, page_folder or ".")
        return match.group(1) + relative + (f"#{anchor}" if anchor else "")

    return _LINK.sub(rewrite, markdown)


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    def plain(match: re.Match[str]) -> str:
        name = match.group(2)
        if name.endswith("&gt;") and " &lt;" in name:  # ``title <target>``: keep the title
            name = name.partition(" &lt;")[0]
        elif match.group(1):
            name = name.rsplit(".", 1)[-1]
        return f"<code>{name}</code>"

    return _ROLE.sub(plain, html)
