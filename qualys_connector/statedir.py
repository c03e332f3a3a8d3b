"""Where a run keeps what outlives it (delivery records, locks), in directories only we can write.

State directory: ``-statedir=DIR`` (``--state-dir`` for censys-qualys), else ``$QC_STATE_DIR``,
else ``$XDG_STATE_HOME/qualys-connector`` (``~/.local/state/qualys-connector``), else, for a user
without a home directory, ``/var/tmp/qualys-connector-<uid>``. Lock directory: ``$QC_LOCK_DIR``,
else ``locks/`` inside the state directory. Neither ever depends on ``TMPDIR``: two runs of one
configuration must find the same lock whatever their environment.

A directory we create gets mode 0700. One that exists must belong to the running user and be
closed to group and others: a lock or record another user can replace is not ours to trust.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from .errors import ConfigError

APP = "qualys-connector"
STATE_ENV = "QC_STATE_DIR"
LOCK_ENV = "QC_LOCK_DIR"


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/qualys-connector``, ``~/.local/state/qualys-connector`` or the fixed fallback."""
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / APP
    home = os.path.expanduser("~")
    if home and home != "~" and os.path.isabs(home) and home != "/":
        return Path(home) / ".local" / "state" / APP
    return Path("/var/tmp") / f"{APP}-{os.geteuid()}"


def state_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The state directory, created (0700) and checked; ConfigError (exit 1) when it is unusable."""
    if explicit:
        return private_dir(explicit, "state directory", "choose another with -statedir=DIR / --state-dir")
    if os.environ.get(STATE_ENV):
        return private_dir(os.environ[STATE_ENV], "state directory", f"choose another with {STATE_ENV}")
    return private_dir(default_state_dir(), "state directory", f"or choose another with -statedir=DIR or {STATE_ENV}")


def lock_dir(explicit_state: str | os.PathLike | None = None) -> Path:
    """``$QC_LOCK_DIR``, else ``locks/`` in the state directory; created (0700) and checked."""
    if os.environ.get(LOCK_ENV):
        return private_dir(os.environ[LOCK_ENV], "lock directory", f"choose another with {LOCK_ENV}")
    return private_dir(state_dir(explicit_state) / "locks", "lock directory",
                       "choose another state directory with -statedir=DIR, or set QC_LOCK_DIR")


def private_dir(path: str | os.PathLike, what: str, hint: str) -> Path:
    """Create ``path`` (mode 0700, parents as usual) or check that the existing one is ours alone."""
    path = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"the {what} {path} exists but is not a directory", hint) from None
    except OSError as exc:
        raise ConfigError(f"cannot create the {what} {path}: {exc.strerror}", hint) from None
    check_private_dir(path, what)
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"the {what} {path} is not writable by this user", hint)
    return path


def check_private_dir(path: Path, what: str) -> None:
    """Refuse a directory owned by someone else or writable by group/others, saying what to do."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"cannot use the {what} {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"the {what} {path} is not a directory")
    if info.st_uid != os.geteuid():
        raise ConfigError(f"the {what} {path} belongs to uid {info.st_uid}, not to this user (uid {os.geteuid()})",
                          "use a directory of your own; another user could replace its files")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(f"the {what} {path} is writable by group or others (mode {stat.S_IMODE(info.st_mode):04o})",
                          f"run chmod 700 {path}")


def create_private(path: str | os.PathLike) -> BinaryIO:
    """Open ``path`` for writing (truncated) as a file only we can read: mode 0600 whatever the
    umask, also when it existed with a wider mode. For files that hold vulnerability data."""
    fd = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
    except OSError:
        os.close(fd)
        raise
    return os.fdopen(fd, "wb")
