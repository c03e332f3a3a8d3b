"""The command edge shared by qualys-connector, process-multiple and censys-qualys.

Three things every command needs, written once so they cannot drift apart:

* stop signals: SIGTERM/SIGINT set a ``threading.Event`` that worker threads poll and,
  by default, raise ``Interrupted`` in the main thread (``StopSignals``);
* the one interruptible sleep (``interruptible_sleep`` / ``sleeper``): every wait of the
  tools (Qualys polling and back-off, Censys back-off, the run loop) ends at once on a stop;
* the exit-code policy: an error's exit code follows its CLASS (``errors.py``), and turning
  an error into its one line plus exit code happens here (``fail``), nowhere else.

Nothing below the command modules imports them; they import this.
"""
from __future__ import annotations

import signal
import threading
from typing import Callable

import click

from .errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, ConnectorError, Interrupted, LockHeld
from .logsetup import log_internal_error
from .stopping import interruptible_sleep, sleeper  # noqa: F401  (re-exported for the commands)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


# ---------------------------------------------------------------- stopping
class StopSignals:
    """SIGTERM/SIGINT → ``stop`` set (for worker threads) and ``Interrupted`` in the main thread.

    ``raise_interrupted=False`` only sets the event, for a loop that waits on it itself (the
    censys-qualys run loop). Outside the main thread signal handlers cannot be installed, so
    the context does nothing there. The previous handlers come back on exit.
    """

    def __init__(self, stop: threading.Event | None = None, *, raise_interrupted: bool = True):
        self.stop = stop if stop is not None else threading.Event()
        self.raise_interrupted = raise_interrupted
        self.received: signal.Signals | None = None
        self._previous: dict = {}

    def _handler(self, signum, _frame):
        self.received = signal.Signals(signum)
        self.stop.set()
        if self.raise_interrupted:
            raise Interrupted(f"stopped by {self.received.name}",
                              "temporary files were removed; run again to deliver everything")

    @property
    def name(self) -> str:
        """The signal that arrived, for the log ("a stop request" when none did)."""
        return self.received.name if self.received else "a stop request"

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


# ---------------------------------------------------------------- exit codes
def exit_code(exc: BaseException) -> int:
    """The exit code for an error: its class decides (``type(exc).exit_code``), never the instance.

    click's usage errors (bad or missing option, unknown command) exit 1 like ours, not click's 2;
    anything else that is not a ``ConnectorError`` is a bug (or an abort) and exits 2.
    """
    if isinstance(exc, ConnectorError):
        return type(exc).exit_code
    if isinstance(exc, (click.UsageError, click.exceptions.NoArgsIsHelpError)):
        return EXIT_USAGE
    return EXIT_FAILURE


def outcome(exc: BaseException) -> str:
    """The word the summary line ends with for a run that ended with ``exc``."""
    if isinstance(exc, Interrupted):
        return "interrupted"
    if isinstance(exc, LockHeld):
        return "locked"
    return "failed"


def fail(exc: BaseException, log=None, *, emit: Callable[[str], None] | None = None,
         level_option: str = "-level=3", suffix: str = "") -> int:
    """Say what went wrong in one line and return the exit code: THE place errors end.

    A ``ConnectorError`` is its message and hint (``suffix`` appended), logged at error level
    or given to ``emit`` (before logging is set up); anything else is a bug: one line saying
    so, the traceback only at debug level.
    """
    if isinstance(exc, ConnectorError):
        line = f"{exc}{suffix}"
    else:
        line = (f"internal error ({type(exc).__name__}: {exc}); please report it with the output "
                f"of {level_option}")
    if emit is not None:
        if not isinstance(exc, ConnectorError) and log is not None:
            log.debug("internal error", exc_info=exc)
        emit(line)
    elif isinstance(exc, ConnectorError):
        log.error("%s", line)
    else:
        log_internal_error(log, exc, level_option)
    return exit_code(exc)


__all__ = ["EXIT_OK", "EXIT_USAGE", "EXIT_FAILURE", "STOP_SIGNALS", "StopSignals", "interruptible_sleep",
           "sleeper", "exit_code", "outcome", "fail"]
