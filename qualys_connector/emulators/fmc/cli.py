"""``fmc-emulator``: mint a PKI, serve the host input protocol, export the network map."""
from __future__ import annotations

import json
import logging
import os
import ssl
import sys

import click

from .. import start_listening, wait_for_stop_signal
from .netmap import NetworkMapError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """An FMC host input service on loopback: TLS + TLV on port 8307, network map in SQLite."""


@main.command("init-pki")
@click.argument("directory")
@click.option("--client-password-env", metavar="VAR",
              help="Encrypt client.pkcs12 with the password in this environment variable.")
def init_pki_command(directory, client_password_env):
    """Mint a CA, the emulator's server certificate and a client PKCS#12 into DIRECTORY."""
    from ..pki import init_pki
    password = os.environ.get(client_password_env) if client_password_env else None
    if client_password_env and not password:
        raise click.UsageError(f"the environment variable {client_password_env} is empty")
    try:
        paths = init_pki(directory, client_password=password)
    except OSError as exc:
        reason = "a file of that name exists" if isinstance(exc, FileExistsError) else exc.strerror
        raise click.ClickException(f"cannot write the PKI into {directory}: {reason}; "
                                   "give a directory that can be created and written to")
    click.echo(f"wrote {paths.ca_cert}, {paths.server_cert}, {paths.server_key},")
    click.echo(f"      {paths.client_pkcs12} (the client certificate), {paths.untrusted_client_pkcs12}")
    click.echo(f"serve with:   fmc-emulator serve --pki {directory}")
    click.echo(f"connect with: qualys-connector -server=127.0.0.1 -pkcs12={paths.client_pkcs12}"
               + (f"  (password from ${client_password_env}: export QC_PKCS12_PASSWORD=\"${client_password_env}\")"
                  if client_password_env else ""))


@main.command("serve")
@click.option("--pki", "pki_dir", required=True, metavar="DIR", help="Directory written by init-pki.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (::1 for IPv6).")
@click.option("--port", default=8307, show_default=True, type=click.IntRange(0, 65535), help="0 = a free port.")
@click.option("--port-file", metavar="FILE", help="Write the port here once listening.")
@click.option("--max-size", default=65536, show_default=True, type=click.IntRange(64, 2**31 - 1),
              help="MAX_SIZE announced to clients.")
@click.option("--db", default=":memory:", show_default=True, help="SQLite file for the network map.")
@click.option("--sink", is_flag=True, help="Only acknowledge (for benchmarks): store nothing.")
@click.option("--accept-unknown-hosts", is_flag=True,
              help="Keep scan results for hosts not in the map (default: drop them, like add_host: n).")
@click.option("--known-host", "known_hosts", multiple=True, metavar="IP", help="Pre-seed the map with a host.")
@click.option("--leaf-domain", "leaf_domains", multiple=True, metavar="NAME",
              help="Multitenancy: the client certificate belongs to Global and NAME is a leaf domain below it "
                   "(repeatable); clients must then send SetDomain before SetSource.")
def serve_command(pki_dir, host, port, port_file, max_size, db, sink, accept_unknown_hosts, known_hosts,
                  leaf_domains):
    """Serve the host input protocol until SIGTERM/SIGINT, then print the map summary."""
    from .server import FMCEmulator
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(levelname)s] %(message)s")
    paths = [os.path.join(pki_dir, name) for name in ("ca.pem", "server.pem", "server.key")]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise click.UsageError(f"{missing[0]} is missing: run fmc-emulator init-pki {pki_dir} first")
    _check_pki(pki_dir, *paths)
    try:
        emulator = FMCEmulator(host, port, ca_cert=paths[0], server_cert=paths[1], server_key=paths[2],
                               max_size=max_size, db=db, sink=sink, accept_unknown_hosts=accept_unknown_hosts,
                               known_hosts=known_hosts, record_messages=False, leaf_domains=leaf_domains)
    except NetworkMapError as exc:
        raise click.ClickException(str(exc))
    start_listening(emulator, host, port, port_file)
    wait_for_stop_signal()
    emulator.stop()
    summary = emulator.netmap.summary()
    s = emulator.stats
    click.echo(f"network map: {summary['hosts']} hosts, {summary['scan_results']} scan results; "
               f"{s.connections} connections, {s.data_messages} DATA messages, {s.error_lines} error lines, "
               f"{s.dropped_unknown_host} results for unknown hosts dropped", err=True)


@main.command("export")
@click.option("--db", required=True, help="SQLite file given to serve --db.")
@click.option("--scanner", metavar="NAME", help="Only this scanner's results (every host is still listed).")
def export_command(db, scanner):
    """Print the network map as JSON: hosts, their results, and per host the results by scanner."""
    from .netmap import NetworkMap
    if not os.path.exists(db):
        raise click.ClickException(f"{db} does not exist: give the file that serve --db wrote "
                                   "(export never creates one)")
    try:
        netmap = NetworkMap(db)
    except NetworkMapError as exc:
        raise click.ClickException(str(exc))
    json.dump(netmap.export(scanner=scanner), sys.stdout, indent=1)
    sys.stdout.write("\n")


def _check_pki(pki_dir, ca_cert, server_cert, server_key):
    """Load the PEM files once here, so a damaged PKI is one line naming the file instead of an ssl traceback."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    again = f"run fmc-emulator init-pki {pki_dir} to mint a new PKI (and a new client.pkcs12)"
    try:
        context.load_verify_locations(cafile=ca_cert)
    except (ssl.SSLError, OSError):
        raise click.ClickException(f"{ca_cert} is not a PEM CA certificate: {again}")
    try:
        context.load_cert_chain(server_cert, server_key)
    except (ssl.SSLError, OSError):
        raise click.ClickException(f"{server_cert} and {server_key} are not a PEM certificate and its key: {again}")


if __name__ == "__main__":
    main()
