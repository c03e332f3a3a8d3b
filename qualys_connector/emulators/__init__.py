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


def start_listening(emulator, host: str, port: int, port_file: str | None, *, tls_dir: str | None = None) -> None:
    """Start ``emulator`` and announce its port; every failure is one click error line."""
    import click
    try:
        emulator.start()
    except OSError as exc:
        if tls_dir and exc.filename:  # start() also writes the --tls certificate: a file error is that
            reason = "a file of that name exists" if isinstance(exc, FileExistsError) else exc.strerror
            raise click.ClickException(f"cannot write the TLS certificate into {tls_dir}: {reason}; "
                                       "give --tls a directory that can be created and written to")
        raise click.ClickException(f"cannot listen on {host} port {port}: {exc.strerror}")
    try:
        announce_port(port_file, emulator.port)
    except OSError as exc:
        emulator.stop()
        raise click.ClickException(f"cannot write the port to {port_file}: {exc.strerror}; "
                                   "give --port-file a path in an existing, writable directory")


def wait_for_stop_signal() -> None:
    """Block until SIGTERM or SIGINT: the emulators run until they are told to stop."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
