"""``censys-emulator``: the Censys ASM logbook API on loopback."""
from __future__ import annotations

import json
import os

import click

from .. import announce_port, wait_for_stop_signal

from .server import CensysEmulator


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535), help="0 = a free port.")
@click.option("--port-file", metavar="FILE", help="Write the port here once listening.")
@click.option("--api-key-env", default="CENSYS_EMULATOR_API_KEY", show_default=True, metavar="VAR",
              help="Environment variable holding the accepted API key.")
@click.option("--events", "events_file", metavar="FILE", help="A JSON list of logbook events to serve.")
@click.option("--generate", type=int, default=0, help="Serve N generated events.")
@click.option("--page-size", type=int, default=100, show_default=True)
def main(host, port, port_file, api_key_env, events_file, generate, page_size):
    """Serve POST /api/v1/logbook-cursor and GET /api/v1/logbook until SIGTERM/SIGINT."""
    key = os.environ.get(api_key_env)
    if not key:
        raise click.UsageError(f"set the accepted API key in the environment variable {api_key_env}")
    events = None
    if events_file:
        try:
            with open(events_file) as fh:
                events = json.load(fh)
        except (OSError, ValueError) as exc:
            raise click.BadParameter(f"{events_file}: {exc}", param_hint="--events")
        if not isinstance(events, list):
            raise click.BadParameter(f"{events_file} must hold a JSON list of events", param_hint="--events")
    emulator = CensysEmulator(host, port, api_key=key, events=events, generate=generate, page_size=page_size)
    emulator.start()
    announce_port(port_file, emulator.port)
    click.echo(f"Censys ASM emulator at {emulator.url} ({emulator.last_id} events)", err=True)
    wait_for_stop_signal()
    emulator.stop()
    click.echo(f"served {emulator.requests} requests", err=True)


if __name__ == "__main__":
    main()
