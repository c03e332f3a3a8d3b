"""The repository's documentation stands on its own.

Nothing a user checks out may point at research notes outside the repository, and every
``docs/<file>.md §N.N`` reference must land on a section that exists.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THIS = "tests/test_docs.py"

# Written split so that this file does not match itself if the exclusion is ever dropped.
OUTSIDE = re.compile("|".join([r"\.\./" + "shared", "shared/" + "specs", "DESIGN" + r"\.md",
                               "/work/" + "shared"]))
DOC_REF = re.compile(r"docs/([\w.-]+\.md) §(\d+(?:\.\d+)*[a-z]?)")


def tracked_files() -> list[str]:
    if shutil.which("git") is None or not os.path.exists(os.path.join(REPO, ".git")):
        pytest.skip("not a git checkout: the tracked files are unknown")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    return [name for name in out.decode().split("\0") if name and name != THIS]


def read_text(name: str) -> str | None:
    try:
        with open(os.path.join(REPO, name), encoding="utf-8") as handle:
            return handle.read()
    except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
        return None     # binary files, or deleted in the work tree but not yet in the index


def mentions_outside(names) -> list[str]:
    found = []
    for name in names:
        text = read_text(name)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{name}:{number}: {line.strip()}")
    return found


def is_user_doc(name: str) -> bool:
    return name == "README.md" or (name.startswith("docs/") and name.endswith(".md"))


def test_readme_and_docs_name_no_file_outside_the_repository():
    docs = [name for name in tracked_files() if is_user_doc(name)]
    assert "README.md" in docs and any(name.startswith("docs/") for name in docs)
    assert mentions_outside(docs) == []


def test_no_other_tracked_file_but_python_names_a_file_outside_the_repository():
    others = [name for name in tracked_files() if not name.endswith(".py") and not is_user_doc(name)]
    assert mentions_outside(others) == []


def test_no_python_file_names_a_file_outside_the_repository():
    python = [name for name in tracked_files() if name.endswith(".py")]
    assert mentions_outside(python) == []


def section_numbers(markdown: str) -> set[str]:
    """The numbers of headings like ``## 1. Title``, ``### 1.4 Title`` or ``### 2.1b Title``."""
    return set(re.findall(r"^#+\s+(\d+(?:\.\d+)*[a-z]?)\.?\s", markdown, flags=re.MULTILINE))


def test_section_numbers_are_read_from_headings():
    text = "## 1. Import\n### 1.4 ScanFlush\n### 2.1b Latency\nnot a heading 3.2\n"
    assert section_numbers(text) == {"1", "1.4", "2.1b"}


def test_every_docs_section_reference_names_a_file_and_a_heading_that_exist():
    references = []
    for name in tracked_files():
        text = read_text(name)
        if text is not None:
            references += [(name, doc, section) for doc, section in DOC_REF.findall(text)]
    assert references, "README.md refers to docs/host-input.md §2.1 at least"
    broken = []
    for name, doc, section in references:
        path = os.path.join(REPO, "docs", doc)
        if not os.path.isfile(path):
            broken.append(f"{name}: docs/{doc} does not exist")
            continue
        with open(path, encoding="utf-8") as handle:
            if section not in section_numbers(handle.read()):
                broken.append(f"{name}: docs/{doc} has no section {section}")
    assert broken == []


@pytest.mark.parametrize("doc", ["host-input.md", "qualys-api.md", "censys-api.md"])
def test_the_protocol_docs_have_unique_section_numbers(doc):
    with open(os.path.join(REPO, "docs", doc), encoding="utf-8") as handle:
        numbers = re.findall(r"^#+\s+(\d+(?:\.\d+)*[a-z]?)\.?\s", handle.read(), flags=re.MULTILINE)
    assert numbers and len(numbers) == len(set(numbers))
