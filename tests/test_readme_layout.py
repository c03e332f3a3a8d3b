"""The README's layout section names the files that exist, and every product module is in it.

The section is a tree: indentation (two spaces a level) nests under the directory of the line
above; the first column (up to two spaces) holds comma-separated names, a trailing ``/`` for
a directory; the rest of the line describes them.
"""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def layout_block(readme: str) -> list[str]:
    section = readme.split("\n## Layout and development\n", 1)[1]
    block = section.split("```\n", 2)[1]
    return [line for line in block.splitlines() if line.strip()]


def named_paths(lines: list[str]) -> list[str]:
    """Every path the tree names, relative to the repository."""
    stack: list[str] = []
    paths = []
    for line in lines:
        indent = len(line) - len(line.lstrip(" "))
        assert indent % 2 == 0, f"odd indentation in the layout section: {line!r}"
        level = indent // 2
        assert level <= len(stack), f"indented under no directory: {line!r}"
        del stack[level:]
        names = [n.strip() for n in re.split(r"\s{2,}", line.strip())[0].split(",")]
        for name in names:
            paths.append("".join(stack) + name)
        if len(names) == 1 and names[0].endswith("/"):
            stack.append(names[0])
    return paths


def test_every_path_named_in_the_layout_section_exists():
    paths = named_paths(layout_block((REPO / "README.md").read_text()))
    assert "qualys_connector/report/reader.py" in paths          # the parser sees the nesting
    missing = [p for p in paths if not (REPO / p).exists()]
    assert missing == []


def test_every_product_module_is_named_in_the_layout_section():
    named = set(named_paths(layout_block((REPO / "README.md").read_text())))
    modules = [p.relative_to(REPO).as_posix() for package in ("qualys_connector", "input_plugins")
               for p in (REPO / package).rglob("*.py") if "emulators" not in p.parts]
    # a package's __init__.py counts as named when only its directory is listed
    unnamed = [m for m in sorted(modules) if m not in named
               and not (m.endswith("/__init__.py") and m[: -len("__init__.py")] in named)]
    assert unnamed == []


def test_the_parser_reads_nesting_and_lists():
    lines = ["a/    x", "  b.py, c/    y", "  d/", "    e.py", "f.txt  z"]
    assert named_paths(lines) == ["a/", "a/b.py", "a/c/", "a/d/", "a/d/e.py", "f.txt"]
