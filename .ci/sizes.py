"""The size limits of the house rules, checked in `make lint`: no source file under packages/ over 600
lines (alembic migrations aside: each is a frozen record of one schema change, read once), no class over
400 lines (counted by ast from its `class` line to its last line, decorators and docstring included).

A file or class over its limit fails the check unless it is named in `EXCEPTIONS`. The list is empty (the
big files were split in issue 15) and is meant to stay so: split a file rather than name it there. A
named exception that is back within its limit fails too, so an entry cannot outlive its reason.

Run: python .ci/sizes.py [root]  (exit 1 and one line per finding when something is over).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_FILE_LINES = 600
MAX_CLASS_LINES = 400

# "path" for a file, "path::Class" for a class (paths relative to the repository root).
EXCEPTIONS: frozenset[str] = frozenset()


def _is_migration(path: Path) -> bool:
    return "migrations" in path.parts and "versions" in path.parts


def findings(root: Path) -> list[str]:
    """Every file and class over its limit under root/packages, as `name: what` lines."""
    found: list[str] = []
    for path in sorted((root / "packages").rglob("*.py")):
        if _is_migration(path) or ".venv" in path.parts:
            continue
        name = path.relative_to(root).as_posix()
        source = path.read_text(encoding="utf-8")
        lines = len(source.splitlines())
        if lines > MAX_FILE_LINES:
            found.append(f"{name}: {lines} lines (limit {MAX_FILE_LINES})")
        for node in ast.walk(ast.parse(source, filename=name)):
            if isinstance(node, ast.ClassDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                length = (node.end_lineno or node.lineno) - first + 1
                if length > MAX_CLASS_LINES:
                    found.append(f"{name}::{node.name}: {length} lines (limit {MAX_CLASS_LINES})")
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent
    over = findings(root)
    failing = [f for f in over if f.split(": ", 1)[0] not in EXCEPTIONS]
    named = {f.split(": ", 1)[0] for f in over}
    stale = sorted(EXCEPTIONS - named)
    for line in failing:
        print(f"over the limit: {line}")
    for name in stale:
        print(f"within its limit now, remove it from EXCEPTIONS in .ci/sizes.py: {name}")
    allowed = len(over) - len(failing)
    if allowed:
        print(f"{allowed} known exception(s) still over the limit (EXCEPTIONS in .ci/sizes.py)")
    return 1 if failing or stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
