"""Emulators of the systems the toolkit talks to: FMC host input, Qualys API, Censys ASM API.

Each has a Python API (start/stop on a free loopback port, state to inspect, faults to inject)
and a console command. The helpers below are what the three commands share.
"""
from __future__ import annotations

import os
import signal
import threading


def announce_port(path: str | None, port: int) -> None:
    """Write the bound port to ``path`` atomically, so a script using ``--port 0`` can find it."""
    if path:
        with open(path + ".tmp", "w") as fh:
            fh.write(str(port))
        os.replace(path + ".tmp", path)


def wait_for_stop_signal() -> None:
    """Block until SIGTERM or SIGINT: the emulators run until they are told to stop."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
