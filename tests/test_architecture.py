"""docs/architecture.md tells the truth: its import table is what the modules import."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "snfseq"


def _room(module: str) -> str:
    """``snfseq.kernels.base`` -> ``kernels``; ``snfseq.model`` -> ``model``."""
    return module.split(".")[1] if "." in module else module


def _imports() -> dict[str, set[str]]:
    """Rooms each room imports at module level (``TYPE_CHECKING`` blocks and lazy imports of
    heavy optional packages inside functions are not arrows)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        if name == "snfseq":
            continue
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        room = _room(name)
        graph.setdefault(room, set())
        for node in ast.parse(path.read_text()).body:
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")
                base = base[: len(base) - node.level + 1] if node.level else []
                module = ".".join(base + [node.module]) if node.module else ".".join(base)
                if module == "snfseq":
                    targets = [f"snfseq.{alias.name}" for alias in node.names]
                elif module.startswith("snfseq."):
                    targets = [module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("snfseq.")]
            graph[room] |= {_room(t) for t in targets} - {room}
    return graph


def _documented() -> dict[str, set[str]]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    table = text.split("## Imports", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \|(.*?)\|$", table, flags=re.MULTILINE)
    return {room: set(re.findall(r"`(\w+)`", deps)) for room, deps in rows}


def test_the_documented_import_table_is_what_the_code_imports() -> None:
    assert _documented() == _imports()


def test_no_room_imports_a_room_on_its_own_floor_or_above() -> None:
    graph, floor = _imports(), {}

    def height(room: str) -> int:
        if room not in floor:
            floor[room] = 1 + max((height(d) for d in graph[room]), default=-1)
        return floor[room]

    for room, deps in graph.items():
        assert all(height(dep) < height(room) for dep in deps), room
