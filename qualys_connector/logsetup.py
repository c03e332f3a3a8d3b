"""Logging as the Perl tools did it (levels 0-3, stderr/syslog/logfile sinks), minus their leaks.

Level numbers: 0 error, 1 warning, 2 info (default), 3 debug. Several sinks may be combined;
none given means stderr. There may be no syslog socket (containers, this CI): then one
warning on stderr and the run carries on with the other sinks.

Secrets: every URL is logged through ``mask_url`` (the password of ``user:password@`` becomes
``******``), and a last-resort filter on every sink masks URL userinfo again and every password
registered with ``add_secret`` of at least ``MIN_MASKED`` characters, wherever it occurs. A shorter
one cannot be told from ordinary words (a password ``x`` would turn ``exist`` into ``e******ist``,
``the`` every article): the filter leaves it alone, and we warn once that it is too short.

A sink that fails (disk full, closed descriptor, syslog gone) is reported once, in one line on
stderr, and dropped; the other sinks carry on. If none is left, stderr takes over, so the summary
line is never lost. A new ``-logfile`` is created mode 0600 whatever the umask: logs name hosts.
"""
from __future__ import annotations

import contextvars
import logging
import logging.handlers
import os
import re
import sys

LOGGER_NAME = "qualys_connector"
LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}
_FORMAT = "%(asctime)s [%(levelname)s] %(message)s"
_SYSLOG_PATHS = ("/dev/log", "/var/run/syslog")

MIN_MASKED = 8          # shortest secret the last-resort filter masks in free text
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s@?#]*)@")

_secrets: set[str] = set()
_short_secret_warned = False
_label: contextvars.ContextVar[str] = contextvars.ContextVar("qc_log_label", default="")


def get_logger(name: str | None = None) -> logging.Logger:
    return logging.getLogger(LOGGER_NAME if not name else f"{LOGGER_NAME}.{name}")


def add_secret(value: str | None) -> None:
    """Never print ``value``: it is masked in every log record from now on (if long enough)."""
    global _short_secret_warned
    if not value:
        return
    if len(value) >= MIN_MASKED:
        _secrets.add(value)
    elif not _short_secret_warned:
        _short_secret_warned = True
        get_logger().warning("a configured password is shorter than %d characters: the log filter cannot mask "
                             "it without garbling ordinary words (nothing logs it on purpose); prefer a longer one",
                             MIN_MASKED)


def mask_url(url: str | None) -> str:
    """``https://user:pw@host/x`` → ``https://user:******@host/x`` (a bare ``token@`` is masked whole).

    Every place that logs or reports a URL goes through this: proxy URLs may carry credentials."""
    return _mask_userinfo(url) if url else (url or "")


def _mask_userinfo(text: str) -> str:
    def repl(match: re.Match) -> str:
        user, colon, _ = match.group("userinfo").partition(":")
        shown = f"{user}:******" if colon else "******"
        return f"{match.group('scheme')}{shown}@"
    return _URL_USERINFO.sub(repl, text)


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
    """The last-resort mask: URL userinfo, then every registered secret (each ``MIN_MASKED``+ long)."""
    if "://" in text and "@" in text:
        text = _mask_userinfo(text)
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "******")
    return text


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        label = _label.get()
        message = record.getMessage()
        if label and not message.startswith(label):
            message = label + message
        record.msg, record.args = redact(message), None
        return True


def _say_on_stderr(line: str) -> None:
    """One line straight to fd 2, past logging (which is what failed); silent if fd 2 is gone too."""
    try:
        os.write(2, (line + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


class _DropOnFailure:
    """Mixin for handlers: the first failure is reported once and the sink is dropped.

    logging's default prints a traceback per record and goes on failing. The handler stays in
    the logger's list (removing it while ``callHandlers`` loops would skip the next sink), but
    ignores every record from then on."""

    sink_name = "log sink"
    ident_prefix = ""           # "qualys-connector: ", set by configure()
    failed = False

    def handle(self, record):
        if self.failed:
            return False
        return super().handle(record)

    def handleError(self, record):
        if self.failed:
            return
        self.failed = True
        exc = sys.exc_info()[1]
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        _say_on_stderr(f"{self.ident_prefix}{self.sink_name} failed ({reason}); dropped, "
                       "logging goes on with the other sinks")
        try:
            self.close()
        except Exception:
            pass
        log = logging.getLogger(LOGGER_NAME)
        if all(getattr(h, "failed", False) for h in log.handlers) and not isinstance(self, _StreamSink):
            fallback = _StreamSink(sys.stderr)          # the summary must reach someone
            fallback.setFormatter(logging.Formatter(_FORMAT))
            fallback.addFilter(_RedactingFilter())
            log.addHandler(fallback)                    # appended: this very record reaches it too


class _StreamSink(_DropOnFailure, logging.StreamHandler):
    sink_name = "logging to stderr"


class _SyslogSink(_DropOnFailure, logging.handlers.SysLogHandler):
    sink_name = "logging to syslog"


class _FileSink(_DropOnFailure, logging.FileHandler):
    """``-logfile``: appended to; created mode 0600 when new, whatever the umask."""

    def __init__(self, filename: str):
        self.sink_name = f"log file {filename}"
        super().__init__(filename, mode="a", encoding="utf-8")

    def _open(self):
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)


def stderr_to(stream) -> None:
    """Point the stderr sink at ``stream`` (the live display's console while it runs, then back)."""
    for handler in logging.getLogger(LOGGER_NAME).handlers:
        if isinstance(handler, _StreamSink) and not handler.failed:
            handler.setStream(stream)


def stderr_logging() -> bool:
    """Does the log go to standard error (``-stderr``, or no other sink)? Only then may a display go there."""
    return any(isinstance(h, _StreamSink) for h in logging.getLogger(LOGGER_NAME).handlers)


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
                handler = _SyslogSink(address=address, facility=logging.handlers.SysLogHandler.LOG_USER)
                handler.ident = f"{ident}[{os.getpid()}]: "
                handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
                handlers.append(handler)
            except OSError as exc:
                problems.append(f"cannot open syslog ({exc.strerror}); logging to stderr instead")
                stderr = True
    if logfile:
        try:
            handler = _FileSink(logfile)
        except OSError as exc:
            problems.append(f"cannot open log file {logfile}: {exc.strerror}; logging to stderr instead")
            stderr = True
        else:
            handler.setFormatter(formatter)
            handlers.append(handler)
    if stderr or not handlers:
        handler = _StreamSink(sys.stderr)
        handler.setFormatter(formatter)
        handlers.append(handler)
    for handler in handlers:
        handler.ident_prefix = f"{ident}: "
        handler.addFilter(_RedactingFilter())
        log.addHandler(handler)
    for problem in problems:
        log.warning(problem)
    return log
