"""Secrets from the environment, directly (``X``) or from a file it names (``X_FILE``).

The ``_FILE`` form is how Kubernetes and Docker hand secrets over: a mounted file, never an
environment value that ``ps e``, ``docker inspect`` or a crash dump can show. Rules, the same
for every secret: both forms set is an error naming both; a file that cannot be read or is empty
is an error naming the variable and the path (never an empty secret); exactly one trailing
newline is stripped, since ``echo pw > file`` and ``kubectl create secret --from-file`` add one.
"""
from __future__ import annotations

import os

from .errors import ConfigError

SUFFIX = "_FILE"


def read_secret(name: str) -> str | None:
    """The value of ``name``, or of the file ``name_FILE`` points at; None when neither is set."""
    direct = os.environ.get(name) or None
    file_name = name + SUFFIX
    path = os.environ.get(file_name) or None
    if direct is not None and path is not None:
        raise ConfigError(f"both {name} and {file_name} are set",
                          f"unset one of them: {name} holds the secret itself, {file_name} the file holding it")
    if path is None:
        return direct
    try:
        with open(path, encoding="utf-8") as fh:
            value = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise ConfigError(f"{file_name}={path}: cannot read the file ({reason})",
                          "mount the secret file there, readable by this user") from None
    if value.endswith("\n"):
        value = value[:-1]
    if not value:
        raise ConfigError(f"{file_name}={path}: the file is empty",
                          f"write the secret into it, or unset {file_name}")
    return value
