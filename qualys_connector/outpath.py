"""Output paths checked before a long run, so a typo fails in a second, not after the download."""
from __future__ import annotations

import os

from .errors import UsageError


def check_output_path(path: str, what: str) -> None:
    """A file we will write at the end of a long run: refuse a bad path now, not after the download."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"{what} {path} is a directory", "give a file name")
    if not os.path.isdir(directory):
        raise UsageError(f"the directory of {what} {path} does not exist")
    if not os.access(directory, os.W_OK):
        raise UsageError(f"the directory of {what} {path} is not writable")
