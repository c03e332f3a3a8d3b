"""Temporary files that name their owner, and the sweep that removes those of dead runs.

A run killed with SIGKILL cannot remove its spool files; without a sweep they stay in
``TMPDIR`` for ever. So every temporary file or directory of ours is named
``<kind><pid>@<host>-<random>``: the next run removes those of ``kind`` whose process is gone
(same host, same user, no such PID any more). A file of a live process, of another host sharing
the directory, or of another user is never touched.
"""
from __future__ import annotations

import os
import re
import shutil
import socket

from .logsetup import get_logger

log = get_logger()

# The kinds we create: the -csvfile/sending spool, the report's host spool, the download directory.
SPOOL = ".qc-spool-"
REPORT_HOSTS = "qc-report-hosts-"
REPORT_DIR = "qc-report-"
ALL = (SPOOL, REPORT_HOSTS, REPORT_DIR)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())[:40] or "localhost"


def prefix(kind: str) -> str:
    """The ``prefix=`` for tempfile.mkstemp/mkdtemp: ``kind`` plus this process and host."""
    return f"{kind}{os.getpid()}@{_host()}-"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:            # EPERM: it exists, under another user
        return True
    return True


def sweep(directory: str | os.PathLike, kinds: tuple[str, ...]) -> int:
    """Remove what dead runs of this host and user left in ``directory``; returns how many."""
    pattern = re.compile("(" + "|".join(map(re.escape, kinds)) + r")(\d+)@" + re.escape(_host()) + "-")
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    for entry in entries:
        match = pattern.match(entry.name)
        if not match or int(match.group(2)) == os.getpid() or alive(int(match.group(2))):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_uid != os.geteuid():
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError as exc:
            log.debug("could not remove the stale %s: %s", entry.path, exc.strerror)
            continue
        removed += 1
        log.info("removed %s, left behind by a run that was killed (PID %s)", entry.path, match.group(2))
    return removed
