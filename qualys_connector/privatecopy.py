"""A private copy that is either complete or absent (``keep_report``).

The copy is written next to its destination under a temporary name (mode 0600) and renamed
over it only when complete; on any failure (a full disk, a stop) the partial file is removed,
so a truncated file never looks like a saved report. A full disk is ``DiskFull`` (exit 1).
"""
from __future__ import annotations

import os
import shutil
import tempfile

from .diskfull import writing


def copy_private(src: str, dest: str, what: str) -> None:
    directory = os.path.dirname(os.path.abspath(dest))
    with writing(what, dest):
        fd, part = tempfile.mkstemp(prefix=f".{os.path.basename(dest)}.", suffix=".part", dir=directory)
    try:
        with writing(what, dest):
            with open(src, "rb") as source, os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            os.replace(part, dest)
    except BaseException:
        try:
            os.unlink(part)
        except FileNotFoundError:
            pass
        raise
