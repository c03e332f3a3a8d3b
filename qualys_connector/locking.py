"""One run at a time per configuration: cron must never start a second copy on the same job.

The lock is an ``flock`` on a file named after the configuration's absolute path, in the lock
directory of ``statedir`` (``$QC_LOCK_DIR``, else ``locks/`` in the state directory; never under
``TMPDIR``). The kernel drops the lock when the process dies, so a crashed run never leaves a
stale lock behind; the empty lock file itself stays, which is harmless. The file is opened
without following symbolic links, in a directory only we can write.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import stat

from .errors import ConfigError, LockHeld
from .statedir import lock_dir


def lock_path(key: str, state: str | None = None) -> str:
    """The lock file for configuration ``key`` (creates and checks the lock directory)."""
    digest = hashlib.sha256(os.path.abspath(key).encode()).hexdigest()[:16]
    return os.path.join(lock_dir(state), f"{digest}.lock")


class RunLock:
    """``with RunLock(config_path):`` — raises LockHeld at once if another run holds it.

    ``path`` names the lock file directly (censys-qualys keeps it in its state directory);
    ``state_dir`` is the ``-statedir`` option, when given. Only a lock another process holds
    is LockHeld (exit 75); a lock file that cannot be opened is a ConfigError (exit 1).
    """

    def __init__(self, key: str, path: str | None = None, *, state_dir: str | None = None):
        self.key = key
        self._path = path
        self._state_dir = state_dir
        self._fd: int | None = None

    @property
    def path(self) -> str:
        if self._path is None:
            self._path = lock_path(self.key, self._state_dir)
        return self._path

    def __enter__(self) -> "RunLock":
        path = self.path
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, 0o600)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ConfigError(f"the lock file {path} is a symbolic link; refusing to follow it",
                                  "remove the link; the lock directory must hold only this tool's files") from None
            raise ConfigError(f"cannot create the lock file {path}: {exc.strerror}",
                              "make its directory writable for this user (or set QC_LOCK_DIR / -statedir)") from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            os.close(fd)
            raise ConfigError(f"the lock file {path} is not a regular file of this user",
                              "remove it; the lock directory must hold only this tool's files")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeld(f"another run is already working on {self.key} (lock {path})") from None
        except OSError as exc:
            os.close(fd)
            raise ConfigError(f"cannot lock {path}: {exc.strerror}",
                              "put the lock directory on a local file system (QC_LOCK_DIR)") from None
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)      # closing drops the flock
            self._fd = None
