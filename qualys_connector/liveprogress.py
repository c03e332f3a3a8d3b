"""The live display a person sees at a terminal (edge): one rich progress row per run or template.

Chosen by the edge only when standard error is a terminal that stderr logging goes to, and
neither ``-quiet``, ``NO_COLOR`` nor ``TERM=dumb`` says no; everywhere else the run gets
``progress.NO_PROGRESS`` and nothing is ever drawn (no escape codes in a log file, a pipe or
cron's mail). While the display is live, sys.stderr goes through rich's console and the stderr
log sink is pointed at it, so log lines print above the rows instead of through them.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING

from . import logsetup
from .progress import NO_PROGRESS, Progress

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress as RichProgress

REFRESH_EVERY = 0.25    # seconds between two pushes of a row's counts to rich (updates between are only stored)


def wanted(stream=None, *, quiet: bool = False, stderr_logging: bool = True, environ=None) -> bool:
    """A live display only for a person: a terminal on stderr that the log goes to, and no opt-out."""
    stream = sys.stderr if stream is None else stream
    environ = os.environ if environ is None else environ
    if quiet or not stderr_logging or "NO_COLOR" in environ or environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Terminal:
    """The live display; ``row(label)`` hands out one ``progress.Progress`` per run or template."""

    def __init__(self, stream=None):
        # rich is imported only for a terminal: runs from cron or a pipe do not pay for it
        from rich.console import Console
        from rich.progress import BarColumn, Progress as RichProgress, SpinnerColumn, TaskProgressColumn, \
            TextColumn, TimeElapsedColumn
        self._stream = sys.stderr if stream is None else stream
        self.console = Console(file=self._stream)
        self.bars = RichProgress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=24),
                                 TaskProgressColumn(), TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
                                 console=self.console, refresh_per_second=4, redirect_stdout=False,
                                 redirect_stderr=True)
        self._lock = threading.Lock()

    def __enter__(self) -> "Terminal":
        self.bars.start()
        logsetup.stderr_to(_LogLines(self.console))     # log lines print above the rows, unwrapped
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.bars.stop()
        finally:
            logsetup.stderr_to(self._stream)    # the real stderr again

    def row(self, label: str = "") -> "Row":
        with self._lock:
            return Row(self.bars, self.bars.add_task(label or "starting", total=None, detail=""), label)


class _LogLines:
    """A stream for the stderr log sink while rows are live: each whole line goes out through the
    console (above the rows) exactly as written: no wrapping, markup or highlighting."""

    def __init__(self, console: Console):
        self._console, self._pending = console, ""

    def write(self, text: str) -> int:
        lines = (self._pending + text).split("\n")
        self._pending = lines.pop()
        for line in lines:
            self._console.out(line, highlight=False)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._console.out(self._pending, highlight=False)
            self._pending = ""


class Row:
    """One row: its phase, the counts given so far, a rate of the first count; pushed 4 times a second."""

    def __init__(self, bars: RichProgress, task, label: str):
        self._bars, self._task, self._label = bars, task, label
        self._name, self._total, self._counts = "", None, {}
        self._started = self._pushed = time.monotonic()

    def phase(self, name: str, total: float | None = None) -> None:
        self._push(drawn=bool(self._counts))    # the last counts of a short phase are drawn once too
        self._name, self._total, self._counts = name, total, {}
        self._started = time.monotonic()
        self._push(drawn=True)          # a short phase is drawn at least once

    def update(self, **counts) -> None:
        self._counts.update(counts)
        now = time.monotonic()
        if now - self._pushed >= REFRESH_EVERY:
            self._pushed = now
            self._push()

    def done(self) -> None:
        self._push(finished=True)

    def _push(self, finished: bool = False, drawn: bool = False) -> None:
        counts = self._counts
        main = next(iter(counts), None)
        completed = counts.get(main) if isinstance(counts.get(main), (int, float)) else None
        total = self._total if self._total else None
        if finished and total is None and completed is not None:
            total = completed or 1
        description = f"{self._label + ' ' if self._label else ''}{self._name}".strip()
        self._bars.update(self._task, description=description, total=total, completed=completed or 0,
                          detail=self._detail(main, completed), refresh=drawn or finished)
        if finished:
            self._bars.stop_task(self._task)

    def _detail(self, main, completed) -> str:
        parts = [_show(key, value, self._total if key == main else None) for key, value in self._counts.items()]
        elapsed = time.monotonic() - self._started
        if main and completed and elapsed > 0.5 and main not in ("percent", "waited"):
            rate = completed / elapsed
            parts.append(f"{_size(rate)}/s" if main.endswith("bytes") else f"{rate:,.0f} {main}/s")
        return "  ".join(parts)


def _show(key: str, value, total) -> str:
    if isinstance(value, str):
        return value
    if key.endswith("bytes"):
        text = _size(value) + (f" of {_size(total)}" if total else "")
        return text if key == "bytes" else f"{key[:-len('bytes')].rstrip('_')} {text}"
    if key in ("waited", "left"):
        return f"{key.replace('left', 'max_wait left')} {_duration(value)}"
    if key == "percent":
        return f"{value:.0f}%"
    return f"{key} {value:,.0f}" + (f" of {total:,.0f}" if total else "")


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"    # pragma: no cover


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class NoTerminal:
    """Nobody watches: rows are ``NO_PROGRESS`` and nothing is drawn."""

    def __enter__(self) -> "NoTerminal":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def row(self, label: str = "") -> Progress:
        return NO_PROGRESS


def choose(quiet: bool = False) -> Terminal | NoTerminal:
    """The display for this run: live rows at a person's terminal, nothing anywhere else."""
    return Terminal() if wanted(quiet=quiet, stderr_logging=logsetup.stderr_logging()) else NoTerminal()
