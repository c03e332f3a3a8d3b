"""Logging as the Perl tools did it (levels 0-3, stderr/syslog/logfile sinks), minus their leaks.

Level numbers: 0 error, 1 warning, 2 info (default), 3 debug. Several sinks may be combined;
none given means stderr. There may be no syslog socket (containers, this CI): then one
warning on stderr and the run carries on with the other sinks.

Secrets: every configured password is registered with ``add_secret`` and a filter replaces it
in every record, at every level, whatever code logged it.
"""
from __future__ import annotations

import contextvars
import logging
import logging.handlers
import os
import sys

LOGGER_NAME = "qualys_connector"
LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}
_FORMAT = "%(asctime)s [%(levelname)s] %(message)s"
_SYSLOG_PATHS = ("/dev/log", "/var/run/syslog")

_secrets: set[str] = set()
_label: contextvars.ContextVar[str] = contextvars.ContextVar("qc_log_label", default="")


def get_logger(name: str | None = None) -> logging.Logger:
    return logging.getLogger(LOGGER_NAME if not name else f"{LOGGER_NAME}.{name}")


def add_secret(value: str | None) -> None:
    """Never print ``value``: it is masked in every log record from now on."""
    if value and len(value) >= 1:
        _secrets.add(value)


def log_summary(log: logging.Logger, message: str, *args) -> None:
    """The summary is the last line of every run whatever ``-level`` says: cron mails and log
    greps rely on it. Logged as INFO, but past the level check (``Logger.handle`` skips it)."""
    if log.disabled:
        return
    log.handle(log.makeRecord(log.name, logging.INFO, "(summary)", 0, message, args or None, None))


def log_internal_error(log: logging.Logger, exc: BaseException, level_option: str = "-level=3") -> None:
    """A bug, not a user's mistake: one error line, the traceback only at debug level."""
    log.debug("internal error", exc_info=exc)
    log.error("internal error (%s: %s); please report it with the output of %s",
              type(exc).__name__, exc, level_option)


def set_label(text: str) -> None:
    """Prefix every record of this thread (e.g. ``template 424242: ``), for runs side by side."""
    _label.set(text)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "******")
    return text


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        label = _label.get()
        if _secrets or label:
            message = record.getMessage()
            if label and not message.startswith(label):
                message = label + message
            record.msg, record.args = redact(message), None
        return True


def configure(level: int = 2, *, syslog: bool = False, stderr: bool = False,
              logfile: str | None = None, ident: str = "qualys-connector") -> logging.Logger:
    """Set up the toolkit's logger; safe to call again (handlers are replaced)."""
    log = logging.getLogger(LOGGER_NAME)
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    log.setLevel(LEVELS.get(level, logging.INFO))
    log.propagate = False
    formatter = logging.Formatter(_FORMAT)
    handlers: list[logging.Handler] = []
    problems: list[str] = []
    if syslog:
        address = next((p for p in _SYSLOG_PATHS if os.path.exists(p)), None)
        if address is None:
            problems.append("no syslog socket on this host (/dev/log); logging to stderr instead")
            stderr = True
        else:
            try:
                handler = logging.handlers.SysLogHandler(address=address,
                                                         facility=logging.handlers.SysLogHandler.LOG_USER)
                handler.ident = f"{ident}[{os.getpid()}]: "
                handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
                handlers.append(handler)
            except OSError as exc:
                problems.append(f"cannot open syslog ({exc.strerror}); logging to stderr instead")
                stderr = True
    if logfile:
        try:
            handler = logging.FileHandler(logfile, mode="a", encoding="utf-8")
        except OSError as exc:
            problems.append(f"cannot open log file {logfile}: {exc.strerror}; logging to stderr instead")
            stderr = True
        else:
            handler.setFormatter(formatter)
            handlers.append(handler)
    if stderr or not handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter)
        handlers.append(handler)
    for handler in handlers:
        handler.addFilter(_RedactingFilter())
        log.addHandler(handler)
    for problem in problems:
        log.warning(problem)
    return log
