"""Output paths (``-csvfile``): checked before a long run, then published from the spool.

A regular file (or a symbolic link to one: the target is replaced, the link kept) is written aside
in its own directory and renamed over, so a reader never sees half a file. A FIFO, a character
device (``/dev/null``, ``/dev/stdout``) or ``-`` (standard output) is a stream: it is written
directly, in order, and never replaced. Anything else (a directory, a socket, a block device,
``/proc`` and ``/sys`` files, where no file can be created beside) is refused before Qualys is asked:
replacing a path that is not a regular file once turned a root run's ``/dev/null`` into a file.
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

from . import tempnames
from .diskfull import writing
from .errors import UsageError
from .stopping import interruptible_sleep

STDOUT = "-"
_STREAM_LOCK = threading.Lock()     # process-multiple: one template's lines at a time on a stream


@dataclass(frozen=True)
class OutputTarget:
    """Where the output goes: ``file`` (replaced atomically) or ``stream`` (written in order)."""
    given: str          # as the user wrote it, for messages
    kind: str           # "file" | "stream"
    path: str           # file: the real path (links followed); stream: the path, or "-"

    @property
    def directory(self) -> str | None:
        """Where the spool lives: beside a file (so the rename is atomic), else the temp directory."""
        return os.path.dirname(self.path) if self.kind == "file" else None


def _kind(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        return "stream"
    return None


def _describe(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def resolve(path: str, what: str = "-csvfile") -> OutputTarget:
    """Classify the output path; raise a UsageError (exit 1) for one we must not write."""
    if path == STDOUT:
        return OutputTarget(path, "stream", STDOUT)
    real = os.path.realpath(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise UsageError(f"{what} {path}: {exc.strerror}", "give a file name in a writable directory") from None
    if mode is not None:
        kind = _kind(mode)
        if kind is None:
            raise UsageError(f"{what} {path} is {_describe(mode)}: refused, only a regular file, a FIFO, "
                             "a character device or - (standard output) is written",
                             "give a file name")
        if kind == "stream":
            if not os.access(path, os.W_OK):
                raise UsageError(f"{what} {path} is not writable")
            return OutputTarget(path, "stream", path)
    directory = os.path.dirname(real)
    if not os.path.isdir(directory):
        raise UsageError(f"the directory of {what} {path} does not exist")
    if not os.access(directory, os.W_OK):
        raise UsageError(f"the directory of {what} {path} is not writable")
    return OutputTarget(path, "file", real)


def check_output_path(path: str, what: str) -> None:
    """A file we will write at the end of a long run: refuse a bad path now, not after the download.

    For a file, the write-aside is tried in its directory: ``/proc/version`` looks like a regular
    file, but nothing can be created in ``/proc``.
    """
    target = resolve(path, what)
    if target.kind != "file":
        return
    try:
        fd, probe = tempfile.mkstemp(prefix=".qc-probe-", dir=target.directory)
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot create a file in {target.directory} ({exc.strerror}); "
                         "refused", "give a regular file in a writable directory") from None
    os.close(fd)
    os.unlink(probe)


def is_stream(path: str | None) -> bool:
    """``-`` or an existing FIFO or character device: written as is, never renamed or replaced."""
    if not path:
        return False
    if path == STDOUT:
        return True
    try:
        return _kind(os.stat(path).st_mode) == "stream"
    except OSError:
        return False


def make_spool(path: str | None, what: str = "-csvfile") -> tuple[int, str]:
    """The spool (mode 0600, ``mkstemp``): beside a file output so the rename is atomic, else in tmp."""
    directory = resolve(path, what).directory if path else None
    if directory and not os.path.isdir(directory):
        raise UsageError(f"the directory of {what} {path} does not exist")
    spool_dir = directory or tempfile.gettempdir()
    tempnames.sweep(spool_dir, (tempnames.SPOOL,))
    tempnames.sweep(tempfile.gettempdir(), tempnames.ALL)     # what runs killed by SIGKILL left
    with writing("the spool of host input lines", directory=spool_dir):
        return tempfile.mkstemp(prefix=tempnames.prefix(tempnames.SPOOL), suffix=".csv", dir=directory)


def publish(spool: str, path: str, what: str = "-csvfile", *, stop: threading.Event | None = None) -> None:
    """Make the finished spool the output: rename it over a file, or copy it in order to a stream.

    The kind is looked at again here (the run may have taken hours); a path that is no longer a
    regular file, FIFO or character device is refused, never replaced. A FIFO without a reader is
    waited for, as ``cat > fifo`` would, until ``stop`` is set (SIGTERM).
    """
    target = resolve(path, what)
    try:
        if target.kind == "file":
            os.replace(spool, target.path)
        elif target.path == STDOUT:
            _copy_to_stdout(spool)
        else:
            _copy_to_stream(spool, target.path, what, stop)
    except OSError as exc:
        raise UsageError(f"cannot write {what} {path}: {exc.strerror}",
                         "choose a file name in a writable directory") from None


def _open_stream(path: str, what: str, stop: threading.Event | None) -> int:
    """No O_CREAT and no O_TRUNC: if the FIFO or device is gone, fail rather than create a file.
    Opened non-blocking so that a FIFO nobody reads yet (ENXIO) can be waited for interruptibly."""
    flags = os.O_WRONLY | os.O_CLOEXEC | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
    while True:
        try:
            fd = os.open(path, flags)
            break
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
        if stop is None:
            time.sleep(0.2)
        else:
            interruptible_sleep(stop, 0.2, f"stopped while waiting for a reader of {what} {path}")
    os.set_blocking(fd, True)
    return fd


def _copy_to_stream(spool: str, path: str, what: str, stop: threading.Event | None) -> None:
    fd = _open_stream(path, what, stop)
    with open(fd, "wb") as out:
        if _kind(os.fstat(fd).st_mode) != "stream":
            raise UsageError(f"{what} {path} changed into a regular file or worse during the run; "
                             "nothing written", "run again")
        with open(spool, "rb") as src, _STREAM_LOCK:
            shutil.copyfileobj(src, out, 1 << 20)


def _copy_to_stdout(spool: str) -> None:
    out = sys.stdout.buffer
    with open(spool, "rb") as src, _STREAM_LOCK:
        try:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
        except BrokenPipeError:
            # The reader went away (``| head``): no "Exception ignored" at exit from a later flush.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            raise
