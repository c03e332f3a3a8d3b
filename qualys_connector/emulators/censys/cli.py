"""``censys-emulator``: the Censys ASM logbook API on loopback."""
from __future__ import annotations

import json
import os

import click

from .. import start_listening, wait_for_stop_signal

from .server import MODES, CensysEmulator, _when


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535), help="0 = a free port.")
@click.option("--port-file", metavar="FILE", help="Write the port here once listening.")
@click.option("--api-key-env", default="CENSYS_EMULATOR_API_KEY", show_default=True, metavar="VAR",
              help="Environment variable holding the accepted API key.")
@click.option("--events", "events_file", metavar="FILE", help="A JSON list of logbook events to serve.")
@click.option("--generate", type=click.IntRange(0), default=0, help="Serve N generated events.")
@click.option("--page-size", type=click.IntRange(1), default=100, show_default=True)
@click.option("--fault", "mode", type=click.Choice(MODES),
              help="Misbehave on every page: repeat the cursor, serve ids that do not advance, or never end.")
def main(host, port, port_file, api_key_env, events_file, generate, page_size, mode):
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
        for number, event in enumerate(events, 1):
            problem = _event_problem(event)
            if problem:
                raise click.BadParameter(f"{events_file}: event {number} {problem}", param_hint="--events")
    emulator = CensysEmulator(host, port, api_key=key, events=events, generate=generate, page_size=page_size,
                               mode=mode)
    start_listening(emulator, host, port, port_file)
    click.echo(f"Censys ASM emulator at {emulator.url} ({emulator.last_id} events)", err=True)
    wait_for_stop_signal()
    emulator.stop()
    click.echo(f"served {emulator.requests} requests", err=True)


def _event_problem(event) -> str | None:
    """What is wrong with one scripted event, caught here rather than as a traceback mid-request."""
    if not isinstance(event, dict):
        return f"is {json.dumps(event)}, not a JSON object"
    if "id" in event and (not isinstance(event["id"], int) or isinstance(event["id"], bool)):
        return f"has id {json.dumps(event['id'])}: ids are integers"
    if "timestamp" in event:
        try:
            _when(event["timestamp"])
        except (TypeError, ValueError, AttributeError):
            return f"has timestamp {json.dumps(event['timestamp'])}: expected ISO-8601, e.g. 2026-01-01T00:00:00.000Z"
    return None


if __name__ == "__main__":
    main()
