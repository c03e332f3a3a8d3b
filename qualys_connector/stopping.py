"""The one interruptible sleep: every wait of the tools ends at once when a stop is requested.

It lives below the command edge (which installs the signal handlers that set the event) so
that the run itself and the API clients can wait without importing the edge.
"""
from __future__ import annotations

import threading
from typing import Callable

from .errors import Interrupted


def interruptible_sleep(stop: threading.Event, seconds: float, why: str = "stopped on request") -> None:
    """Wait ``seconds`` unless ``stop`` is set first; then raise ``Interrupted`` at once."""
    if stop.wait(max(0.0, seconds)):
        raise Interrupted(why)


def sleeper(stop: threading.Event) -> Callable[[float], None]:
    """``interruptible_sleep`` bound to ``stop``: what the API clients take as their ``sleep``."""
    def sleep(seconds: float) -> None:
        interruptible_sleep(stop, seconds)
    return sleep
