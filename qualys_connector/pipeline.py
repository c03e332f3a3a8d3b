"""One run of a plugin: produce host input lines to a file, then write them out or send them.

Production always finishes before anything goes to the FMC: a report that turns out to be
broken half-way sends nothing. The lines go to a spool file (never memory), which becomes the
``-csvfile`` output (``outpath.publish``: an atomic rename onto a file, a copy to a stream), or is
sent over TLS.

The records of a run live in ``runinfo`` (Options, Summary), what a plugin is and gets in
``plugin`` (InputPlugin, Job), the early path checks in ``outpath``; they are re-exported here.
"""
from __future__ import annotations

import os
import threading

from .clearing import Clearing, PeerHosts, open_clearing
from .delivery import send_file
from .diskfull import writing
from .errors import ClearingHeld, ConnectorError, UsageError
from .hostinput.client import HostInputClient
from .logsetup import add_secret, get_logger
from .outpath import check_output_path, make_spool, publish
from .plugin import InputPlugin, Job, find_plugin
from .progress import NO_PROGRESS, Progress
from .runinfo import Options, Summary
from .statedir import state_dir
from .stopping import sleeper

__all__ = ["CSV_MAX_SIZE", "InputPlugin", "Job", "Options", "Summary", "check_output_path", "lock_key",
           "prepare", "run"]

# MAX_SIZE assumed for -csvfile, where no FMC announces one: the emulator's default. The value of
# real FMCs is not published (docs/host-input.md §2.1 [?]).
CSV_MAX_SIZE = 65536


def prepare(options: Options, log) -> tuple[InputPlugin, object]:
    """Check the plugin, its configuration and the certificate before any long work starts."""
    plugin = find_plugin(options.plugin)
    config = plugin.load_config(options.plugininfo or plugin.default_plugininfo(), options.template_id)
    if options.csvfile:
        check_output_path(options.csvfile, "-csvfile")
        if options.server:
            log.info("-csvfile given: -server %s is ignored, nothing is sent (only its delivery record is read, "
                     "to show what would be cleared)", options.server)
        return plugin, config
    if not options.server:
        raise UsageError("no -server and no -csvfile given",
                         "send with -server=FMC_ADDRESS or write a file with -csvfile=FILE")
    return plugin, config


def lock_key(options: Options, plugin: InputPlugin) -> str:
    return plugin.lock_key(options.plugininfo)


def start_clearing(options: Options, plugin: InputPlugin, config, peers: PeerHosts | None = None) -> Clearing | None:
    """The run's clearing (README "Keeping the FMC current"), or None for a plugin that never clears.

    The record of the target is read when the target is known: always when sending, and for a
    dry run only when -server names the FMC too.
    """
    scope_of = getattr(plugin, "clear_scope", None)
    scope = scope_of(config) if scope_of is not None and config is not None else None
    if scope is None:
        return None
    server = options.server if options.server else None
    return open_clearing(state_dir(options.statedir), server, options.port, scope, peers=peers)


def held_error(clearing: Clearing, done: str) -> ClearingHeld:
    """The exit-2 error of a run whose clears the safety valve held back."""
    plan = clearing.plan
    return ClearingHeld(f"{plan.counted} of the {plan.base} hosts delivered last time would have been cleared, more than "
                        f"max_clear ({clearing.scope.max_clear}): nothing was cleared, the rest was {done}",
                        "check the report template; if those hosts really are gone or clean, raise max_clear "
                        "in QualysGuard.yaml for one run (e.g. max_clear: 100%)")


def run(options: Options, *, plugin: InputPlugin | None = None, config=None, log=None,
        stop: threading.Event | None = None, summary: Summary | None = None,
        progress: Progress = NO_PROGRESS, peers: PeerHosts | None = None) -> Summary:
    """Run one job; raises a ConnectorError on failure, with ``summary`` filled as far as it got."""
    log = log or get_logger()
    stop = stop or threading.Event()
    summary = summary or Summary()
    if plugin is None:
        plugin, config = prepare(options, log)
    identity = None
    if not options.csvfile:
        # Only a send needs the certificate code (and cryptography): a dry run does not import it.
        from .hostinput.pkcs12 import client_context, find_pkcs12, fmc_trust, load_identity, report_trust
        add_secret(options.password)
        identity = load_identity(find_pkcs12(options.pkcs12), options.password)
        log.info("client certificate %s (%s)", identity.path, identity.subject)
        trust = fmc_trust(identity, options.fmcca or getattr(config, "fmc_ca", None), insecure=options.insecure)
        report_trust(trust, log)
    clearing = None
    fd, spool = make_spool(options.csvfile)
    try:
        clearing = start_clearing(options, plugin, config, peers)
        summary.outcome = "producing"
        with writing("the spool of host input lines", spool), os.fdopen(fd, "wb", buffering=1 << 20) as out:
            job = Job(options.plugininfo or plugin.default_plugininfo(), out, summary, log, stop,
                      template_id=options.template_id, config=config, sleep=sleeper(stop),
                      max_size=CSV_MAX_SIZE if options.csvfile else None,
                      statedir=options.statedir, dry_run=bool(options.csvfile), progress=progress,
                      clearing=clearing, resync=options.resync)
            plugin.produce(job)
            if clearing is not None:
                clearing.write(out, summary)      # after the results and their ScanFlush
        if options.csvfile:
            publish(spool, options.csvfile, stop=stop)
            log.info("wrote %d commands to %s", summary.commands, options.csvfile)
            summary.outcome = "written"
            if clearing is not None:
                summary.hosts_cleared = clearing.plan.cleared     # lines written for review
            if clearing is not None and clearing.plan.held:     # a dry run never writes the record
                raise held_error(clearing, "written")
            return summary
        to_send = spool
        if job.checked_file is not None:      # a file the plugin checked whole: sent from where it lies
            if clearing is not None or os.path.getsize(spool):
                raise AssertionError("a plugin handed a checked file over and wrote lines as well")
            job.checked_file.still_same()
            to_send = job.checked_file.path
        if os.path.getsize(to_send) == 0:     # e.g. an incremental pull that found no change
            log.info("nothing to send: the FMC was not contacted")
        else:
            summary.outcome = "sending"
            context = client_context(identity, trust)
            with HostInputClient(options.server, options.port, context, ipv6=options.ipv6,
                                 timeout=options.timeout) as client:
                log.info("connected to the FMC at %s, MAX_SIZE %d", client.where, client.max_size)
                send_file(to_send, client, shorten=plugin.SHORTEN, stats=summary.delivery, stop=stop,
                          live=progress)
        summary.outcome = "delivered"
        # Only now: the FMC acknowledged every DATA message without error. Caches first, the
        # record last: a cache that fails to commit leaves the record (and its watermark) as it
        # was, so the next run delivers the same again.
        for commit in job.after_delivery:
            commit()
        if clearing is not None:
            clearing.commit()
            summary.hosts_cleared = clearing.plan.cleared
            if clearing.plan.held:
                raise held_error(clearing, "delivered")
        return summary
    except ClearingHeld as exc:
        summary.exit_code = exc.exit_code
        raise
    except ConnectorError as exc:
        summary.outcome = "failed"
        summary.exit_code = exc.exit_code
        raise
    finally:
        if clearing is not None:
            clearing.close()
        if spool and os.path.exists(spool):
            os.unlink(spool)
