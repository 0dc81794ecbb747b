"""The documentation site builds in strict mode and shows what it is generated from.

One ``mkdocs build --strict`` (a warning fails it: a missing included file, a broken link, a
docstring griffe cannot read) into a temporary folder, then checks of the pages against
their sources: every benchmark results file is on a page with its tables, the command-line
reference lists every subcommand and option of the parser, the API pages hold the public
functions with their examples rendered as code.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

for module, package in (
    ("mkdocs", "mkdocs"),
    ("material", "mkdocs-material"),
    ("mkdocstrings_handlers.python", "mkdocstrings[python]"),
):
    pytest.importorskip(module, reason=f"the docs need {package} (the dev extra installs it)")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SEPARATOR_ROW = re.compile(r"^\|[\s:|-]+\|$")
MARKUP = re.compile(r"[`\[\]\\<>&]")  # cells whose Markdown would change their text


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built from the working tree into a temporary folder (once for this module)."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", "mkdocs.yml", "-d", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    warnings = [line for line in done.stderr.splitlines() if not line.startswith("INFO")]
    assert done.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(warnings[-40:])
    return out


def page_text(site: Path, page: str) -> str:
    """A built page's visible text, whitespace collapsed."""
    path = site / page / "index.html" if page else site / "index.html"
    assert path.is_file(), f"page {page!r} was not built"
    text = re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8"))
    return " ".join(html.unescape(text).split())


def results_files() -> list[Path]:
    return sorted(p for p in RESULTS.glob("*.md") if not p.stem.endswith("_quick"))


def plain_table_row(markdown: str) -> list[str]:
    """The cells of the first table row that Markdown renders as written (bold aside)."""
    for line in markdown.splitlines():
        if line.startswith("|") and not SEPARATOR_ROW.match(line) and not MARKUP.search(line):
            return [cell.replace("**", "").strip() for cell in line.strip().strip("|").split("|")]
    raise AssertionError("no table row without inline markup")


def test_home_page_has_getting_started(site: Path) -> None:
    text = page_text(site, "")
    for expected in ("bash scripts/setup.sh", "bash scripts/test.sh", "snfseq demo"):
        assert expected in text
    assert "SNFSEQ_CACHE_DIR" in text and "~/.cache/snfseq" in text


def test_every_benchmark_results_file_is_shown_with_its_tables(site: Path) -> None:
    files = results_files()
    assert files, "no benchmark results to show"
    for results in files:
        source = ROOT / "docs" / "benchmarks" / results.name
        assert source.is_file(), f"no page docs/benchmarks/{results.name} for {results.name}"
        include = f'--8<-- "benchmarks/results/{results.name}"'
        assert include in source.read_text(), f"{source.name} does not include {results.name}"
        row = " ".join(" ".join(plain_table_row(results.read_text())).split())
        assert row in page_text(site, f"benchmarks/{results.stem}"), (results.name, row)


def test_cli_reference_lists_every_subcommand_and_option(site: Path) -> None:
    import argparse

    from snfseq.cli import build_parser

    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    page = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert len(commands.choices) >= 7
    for name, subparser in commands.choices.items():
        heading = f'id="snfseq-{name}"'
        assert heading in page, f"no section for `snfseq {name}`"
        section = page.split(heading, 1)[1].split("<h2", 1)[0]
        for action in subparser._actions:
            if isinstance(action, argparse._HelpAction):
                continue  # every command has it; the page leaves it out
            for option in action.option_strings:
                assert option in section, f"`snfseq {name}` lacks {option} on the CLI page"


def test_api_reference_renders_public_functions_with_examples_as_code(site: Path) -> None:
    pages = {
        "metrics": ["snfseq.metrics.energy_score", "snfseq.metrics.crps"],
        "model": ["snfseq.model.SequenceFlow"],
        "data": ["snfseq.data.cache_dir", "snfseq.data.face_sequences"],
        "kernels": ["snfseq.kernels.MALA"],
    }
    for page, names in pages.items():
        built = (site / "reference" / "api" / page / "index.html").read_text(encoding="utf-8")
        for name in names:
            assert f'id="{name}"' in built, f"{name} is not on reference/api/{page}"
    data_page = (site / "reference" / "api" / "data" / "index.html").read_text(encoding="utf-8")
    # `Example:` doctests are highlighted Python, not quotes (docs/hooks/griffe_examples.py).
    assert '<span class="gp">&gt;&gt;&gt; </span>' in data_page
    assert "&gt;&gt;&gt;" not in " ".join(
        re.findall(r"<blockquote>.*?</blockquote>", data_page, re.S)
    )
    # Sphinx roles are shown as code, not as `:func:` text (docs/hooks/repository_files.py).
    assert ":func:" not in page_text(site, "reference/api/data")


def test_guide_figures_are_served_from_the_results_folder(site: Path) -> None:
    refinement = (site / "refinement" / "index.html").read_text(encoding="utf-8")
    assert 'src="../benchmarks/results/quality.png"' in refinement
    assert (site / "benchmarks" / "results" / "quality.png").is_file()
