"""One run of a plugin: produce host input lines to a file, then write them out or send them.

Production always finishes before anything goes to the FMC: a report that turns out to be
broken half-way sends nothing. The lines go to a spool file (never memory), which becomes the
``-csvfile`` output by an atomic rename, or is sent over TLS.
"""
from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import BinaryIO, Callable

import input_plugins

from .delivery import DeliveryStats, send_file
from .errors import ConnectorError, Interrupted, UsageError
from .hostinput.client import DEFAULT_PORT, HostInputClient
from .hostinput.pkcs12 import client_context, find_pkcs12, fmc_trust, load_identity, report_trust
from .logsetup import add_secret, get_logger


# MAX_SIZE assumed for -csvfile, where no FMC announces one: the emulator's default. The value of
# real FMCs is not published (host-input spec §2.1 [?]).
CSV_MAX_SIZE = 65536


@dataclass
class Options:
    """What the command line asked for (after Perl spellings were normalised)."""

    plugin: str = "QualysGuard"
    server: str | None = None
    port: int = DEFAULT_PORT
    plugininfo: str | None = None
    ipv6: bool = False
    pkcs12: str | None = None
    password: str | None = None
    csvfile: str | None = None
    template_id: str | None = None      # process-multiple overrides template_id per run
    timeout: float = 120.0
    # hardening: where state and locks live, and how the FMC's certificate is checked
    statedir: str | None = None
    fmcca: str | None = None
    insecure: bool = False


@dataclass
class Summary:
    label: str = ""
    hosts: int = 0
    findings: int = 0
    commands: int = 0
    delivery: DeliveryStats = field(default_factory=DeliveryStats)
    started: float = field(default_factory=time.monotonic)
    outcome: str = "not started"
    exit_code: int = 0

    def line(self) -> str:
        d = self.delivery
        label = f"template {self.label}: " if self.label else ""
        return (f"Summary: {label}hosts={self.hosts} findings={self.findings} "
                f"commands={self.commands} data_messages={d.messages_acked}/{d.messages_total} "
                f"replies_with_errors={d.replies_with_errors} "
                f"elapsed={time.monotonic() - self.started:.1f}s result={self.outcome}")


@dataclass
class Job:
    """What a plugin gets: where to write, what to count, how to notice a stop request."""

    plugininfo: str | None
    out: BinaryIO
    summary: Summary
    log: object
    stop: threading.Event
    template_id: str | None = None
    config: object = None
    sleep: Callable[[float], None] = time.sleep
    qualys_client: object = None
    # Longest line a plugin may write, or None: when sending, delivery shortens lines to the
    # MAX_SIZE the FMC announces; with -csvfile there is no FMC to ask.
    max_size: int | None = None

    def check_stop(self) -> None:
        if self.stop.is_set():
            raise Interrupted("stopped on request")

    def interruptible_sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Interrupted("stopped on request")


def prepare(options: Options, log) -> tuple[object, object]:
    """Check the plugin, its configuration and the certificate before any long work starts."""
    plugin = input_plugins.load(options.plugin)
    config = None
    if plugin.NAME == "QualysGuard":
        job = Job(options.plugininfo or plugin.default_plugininfo(), None, Summary(), log,
                  threading.Event(), template_id=options.template_id)
        config = plugin.load_config(job)
    if options.csvfile:
        check_output_path(options.csvfile, "-csvfile")
        if options.server:
            log.info("-csvfile given: -server %s is ignored, nothing is sent", options.server)
        return plugin, config
    if not options.server:
        raise UsageError("no -server and no -csvfile given",
                         "send with -server=FMC_ADDRESS or write a file with -csvfile=FILE")
    return plugin, config


def check_output_path(path: str, what: str) -> None:
    """A file we will write at the end of a long run: refuse a bad path now, not after the download."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"{what} {path} is a directory", "give a file name")
    if not os.path.isdir(directory):
        raise UsageError(f"the directory of {what} {path} does not exist")
    if not os.access(directory, os.W_OK):
        raise UsageError(f"the directory of {what} {path} is not writable")


def lock_key(options: Options, plugin) -> str:
    if plugin.NAME == "QualysGuard":
        return os.path.abspath(options.plugininfo or plugin.default_plugininfo())
    return os.path.abspath(options.plugininfo or "csv")


def run(options: Options, *, plugin=None, config=None, log=None, stop: threading.Event | None = None,
        summary: Summary | None = None) -> Summary:
    """Run one job; raises a ConnectorError on failure, with ``summary`` filled as far as it got."""
    log = log or get_logger()
    stop = stop or threading.Event()
    summary = summary or Summary()
    if plugin is None:
        plugin, config = prepare(options, log)
    identity = None
    if not options.csvfile:
        add_secret(options.password)
        identity = load_identity(find_pkcs12(options.pkcs12), options.password)
        log.info("client certificate %s (%s)", identity.path, identity.subject)
        trust = fmc_trust(identity, options.fmcca or getattr(config, "fmc_ca", None), insecure=options.insecure)
        report_trust(trust, log)
    target_dir = os.path.dirname(os.path.abspath(options.csvfile)) if options.csvfile else None
    if target_dir and not os.path.isdir(target_dir):
        raise UsageError(f"the directory of -csvfile {options.csvfile} does not exist")
    fd, spool = tempfile.mkstemp(prefix=".qc-spool-", suffix=".csv", dir=target_dir)
    try:
        summary.outcome = "producing"
        with os.fdopen(fd, "wb", buffering=1 << 20) as out:
            job = Job(options.plugininfo or plugin.default_plugininfo(), out, summary, log, stop,
                      template_id=options.template_id, config=config, sleep=_sleeper(stop),
                      max_size=CSV_MAX_SIZE if options.csvfile else None)
            plugin.produce(job)
        if options.csvfile:
            try:
                os.replace(spool, options.csvfile)
            except OSError as exc:
                raise UsageError(f"cannot write -csvfile {options.csvfile}: {exc.strerror}",
                                 "choose a file name in a writable directory") from None
            spool = None
            log.info("wrote %d commands to %s", summary.commands, options.csvfile)
            summary.outcome = "written"
            return summary
        summary.outcome = "sending"
        context = client_context(identity, trust)
        with HostInputClient(options.server, options.port, context, ipv6=options.ipv6,
                             timeout=options.timeout) as client:
            log.info("connected to the FMC at %s, MAX_SIZE %d", client.where, client.max_size)
            send_file(spool, client, shorten=plugin.SHORTEN, stats=summary.delivery, stop=stop)
        summary.outcome = "delivered"
        return summary
    except ConnectorError as exc:
        summary.outcome = "failed"
        summary.exit_code = exc.exit_code
        raise
    finally:
        if spool and os.path.exists(spool):
            os.unlink(spool)


def _sleeper(stop: threading.Event) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        if stop.wait(seconds):
            raise Interrupted("stopped on request")
    return sleep
