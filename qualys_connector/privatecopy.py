"""Files that appear complete or not at all: a kept report, metrics, positions, small records.

Each is written next to its destination under a temporary name (mode 0600 from ``mkstemp``),
synced, and renamed over it only when complete; on any failure (a full disk, a stop) the partial
file is removed, so a reader sees the old file or the new one, never half of one.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import BinaryIO, Callable

from .diskfull import writing


def replace_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], object], *,
                       mode: int | None = None) -> None:
    """Call ``write`` on a temporary file beside ``path``, sync it, then rename it over ``path``.

    The file is 0600 unless ``mode`` says otherwise (metrics a collector of another user reads).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, part = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".part", dir=directory)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, path)
    except BaseException:
        try:
            os.unlink(part)
        except FileNotFoundError:
            pass
        raise


def copy_private(src: str, dest: str, what: str) -> None:
    """``keep_report``: a copy that is complete or absent; a full disk is ``DiskFull`` (exit 1)."""
    with writing(what, dest), open(src, "rb") as source:
        replace_atomically(dest, lambda out: shutil.copyfileobj(source, out, 1 << 20))
