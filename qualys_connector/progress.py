"""Live progress of a run's long phases: the small interface lower layers call.

The pipeline, delivery, the QualysGuard plugin, the Qualys polling loop and censys sync report
what they are doing through a ``Progress``; the edge decides whether anyone watches (a terminal
gets a live display, cron gets ``NO_PROGRESS``, which does nothing) and hands one down. Lower
layers never know which. Calls are cheap but not free: callers report every N hosts or messages,
or per chunk, never per finding.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Progress(Protocol):
    def phase(self, name: str, total: float | None = None) -> None:
        """A new phase starts (``waiting``, ``downloading``, ``parsing``, ``writing``, ``sending``,
        ``reading``); ``total`` is what its main count runs up to, when known."""

    def update(self, **counts: float) -> None:
        """The phase's counts so far (``bytes=``, ``hosts=``, ``findings=``, ``acked=``, ...)."""

    def done(self) -> None:
        """The run (or this template) is over: the display shows its last state."""


class NoProgress:
    """Nobody is watching (cron, a pipe, a log file, ``-quiet``): every call does nothing."""

    def phase(self, name: str, total: float | None = None) -> None:
        pass

    def update(self, **counts: float) -> None:
        pass

    def done(self) -> None:
        pass


NO_PROGRESS: Progress = NoProgress()

__all__ = ["NO_PROGRESS", "NoProgress", "Progress"]
