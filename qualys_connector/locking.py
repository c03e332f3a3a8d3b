"""One run at a time per configuration: cron must never start a second copy on the same job.

The lock is an ``flock`` on a file named after the configuration's absolute path, in
``$QC_LOCK_DIR`` (default: a per-user directory under the system temp dir). The kernel drops
the lock when the process dies, so a crashed run never leaves a stale lock behind.
"""
from __future__ import annotations

import hashlib
import os
import tempfile

from filelock import FileLock, Timeout

from .errors import ConfigError, LockHeld


def lock_path(key: str) -> str:
    directory = os.environ.get("QC_LOCK_DIR") or os.path.join(
        tempfile.gettempdir(), f"qualys-connector-{os.getuid()}")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    digest = hashlib.sha256(os.path.abspath(key).encode()).hexdigest()[:16]
    return os.path.join(directory, f"{digest}.lock")


class RunLock:
    """``with RunLock(config_path):`` — raises LockHeld at once if another run holds it."""

    def __init__(self, key: str, path: str | None = None):
        self.key = key
        self.path = path or lock_path(key)
        self._lock = FileLock(self.path)

    def __enter__(self) -> "RunLock":
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise LockHeld(f"another run is already working on {self.key} (lock {self.path})") from None
        except OSError as exc:
            raise ConfigError(f"cannot create the lock file {self.path}: {exc.strerror}",
                              "make its directory writable for this user (or set QC_LOCK_DIR / --state-dir)") from None
        return self

    def __exit__(self, *exc) -> None:
        self._lock.release()
