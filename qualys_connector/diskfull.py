"""Disk full while writing (the -csvfile spool, the report spool, the download): one line, exit 1.

``ENOSPC`` (no space), ``EDQUOT`` (quota) and ``EFBIG`` (file-size limit, ``ulimit -f``) are the
machine's state, not a bug of ours: they become ``DiskFull`` naming what was being written and
where. Every other ``OSError`` passes through unchanged.
"""
from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from typing import Iterator

from .errors import DiskFull

FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def is_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in FULL


def disk_full(exc: OSError, what: str, path: str | os.PathLike | None = None, *,
              directory: str | os.PathLike | None = None) -> DiskFull:
    if directory is None and path:
        directory = os.path.dirname(os.path.abspath(os.fspath(path)))
    where = f" in {os.fspath(directory)}" if directory else ""
    reason = "file-size limit reached" if exc.errno == errno.EFBIG else (exc.strerror or "no space left")
    return DiskFull(f"cannot write {what}{where}: {reason}")


@contextmanager
def writing(what: str, path: str | os.PathLike | None = None, *,
            directory: str | os.PathLike | None = None) -> Iterator[None]:
    """Turn a full disk met while writing ``what`` (at ``path``, or in ``directory``) into ``DiskFull``."""
    try:
        yield
    except OSError as exc:
        if is_full(exc):
            raise disk_full(exc, what, path, directory=directory) from None
        raise
