"""``process-multiple``: the QualysGuard plugin once per template ID, one failure not stopping the rest.

With ``-csvfile=Out.csv`` each template writes ``<ID>_Out.csv`` beside it, as the Perl
``process_multiple.pl`` did. ``--jobs N`` runs templates side by side, never more at once
than the concurrency limit Qualys reports (``X-Concurrency-Limit-Limit``), since a report
launch over the limit only earns a 409.
"""
from __future__ import annotations

import dataclasses
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from . import metrics
from .edge import StopSignals, fail, outcome
from .errors import EXIT_OK, ConnectorError, Interrupted, UsageError
from .locking import RunLock
from .liveprogress import NoTerminal
from .logsetup import log_summary, set_label
from .outpath import is_stream
from .statedir import state_dir
from .clearing import PeerHosts
from .pipeline import Options, Summary, lock_key, prepare, run


def template_ids(multiinfo: str) -> list[str]:
    ids = [part.strip() for part in multiinfo.split(",")]
    if not ids or any(not part.isdigit() for part in ids):
        raise UsageError(f"-multiinfo={multiinfo!r} must be template IDs separated by commas",
                         "for example -multiinfo=424242,535353")
    return list(dict.fromkeys(ids))


def csv_name(csvfile: str | None, template_id: str) -> str | None:
    """``<ID>_<name>`` beside a file; a stream (``-``, a FIFO, ``/dev/null``) gets every template in turn."""
    if not csvfile or is_stream(csvfile):
        return csvfile or None
    directory, name = os.path.split(csvfile)
    return os.path.join(directory, f"{template_id}_{name}")


def concurrency_cap(config, jobs: int, log) -> int:
    """Ask Qualys once how many calls may run at once, and never run more templates than that."""
    if jobs <= 1 or config is None or config.report_file:
        return jobs
    from .qualys.api import QualysClient
    try:
        with QualysClient.for_config(config) as client:
            limit = client.probe_concurrency_limit()
    except ConnectorError as exc:
        log.warning("could not learn Qualys's concurrency limit (%s); running one template at a time", exc)
        return 1
    if limit and limit < jobs:
        log.info("Qualys allows %d concurrent calls: running %d templates at once, not %d", limit, limit, jobs)
        return limit
    return jobs


def run_multiple(options: Options, multiinfo: str, jobs: int, log, reporter=None, display=None) -> int:
    display = display or NoTerminal()      # one live row per template at a terminal
    stop = threading.Event()
    try:    # a bad -multiinfo, YAML or option: logged to the chosen sinks, then the summary
        if reporter:
            reporter.check()
        ids = template_ids(multiinfo)
        base_plugin, base_config = prepare(dataclasses.replace(options, template_id=ids[0]), log)
        if getattr(base_config, "pull", None) == "detections":
            raise UsageError("process-multiple runs report templates, but QualysGuard.yaml says pull: detections",
                             "run qualys_connector once (one detection pull covers every host), or set pull: report")
    except ConnectorError as exc:
        code = fail(exc, log)
        if reporter:    # operations hook: one failed series per template named
            reporter.write([metrics.Run("failed", code, 0.0, {}, {"template": t})
                            for t in dict.fromkeys(i.strip() for i in multiinfo.split(",") if i.strip())], log)
        log_summary(log, "Summary: templates=%d ok=0 failed=0 (nothing started)",
                    len([i for i in multiinfo.split(",") if i.strip()]))
        return code
    summaries = {tid: Summary(label=tid) for tid in ids}

    def one(template_id: str) -> None:
        summary = summaries[template_id]
        summary.started = time.monotonic()
        opts = dataclasses.replace(options, template_id=template_id,
                                   csvfile=csv_name(options.csvfile, template_id))
        set_label(f"template {template_id}: ")
        row = display.row(f"template {template_id}")
        try:
            if stop.is_set():
                raise Interrupted("stopped before this template started")
            plugin, config = prepare(opts, log)
            log.info("starting")
            run(opts, plugin=plugin, config=config, log=log, stop=stop, summary=summary, progress=row,
                peers=peers)
        except Exception as exc:     # an error, even a bug, must not stop the other templates
            summary.outcome = "interrupted" if isinstance(exc, Interrupted) else "failed"
            summary.exit_code = fail(exc, log)
        finally:
            row.done()
            set_label("")
            log_summary(log, summary.line())

    worst = EXIT_OK
    peers = None    # templates sharing a scanner_name never clear a host another one delivered
    try:
        with RunLock(lock_key(options, base_plugin), state_dir=options.statedir):
            peers = PeerHosts(state_dir(options.statedir))
            with StopSignals(stop), display:
                width = concurrency_cap(base_config, jobs, log)
                if width <= 1:
                    for tid in ids:
                        one(tid)
                else:
                    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="template") as pool:
                        futures = [pool.submit(one, tid) for tid in ids]
                        try:
                            for future in futures:
                                future.result()
                        except Interrupted:
                            stop.set()
                            pool.shutdown(wait=True, cancel_futures=True)
                            raise
    except ConnectorError as exc:
        worst = fail(exc, log)
        if outcome(exc) == "locked":
            for s in summaries.values():
                s.outcome = "locked"
    finally:
        if peers is not None:
            peers.close()
    failed = [tid for tid, s in summaries.items() if s.exit_code]
    for s in summaries.values():
        worst = max(worst, s.exit_code)
    done = [tid for tid, s in summaries.items() if s.outcome in ("delivered", "written")]
    not_done = [t for t in ids if t not in done]
    if reporter:    # operations hook: one series per template; a template that did not succeed shows `worst`
        reporter.write([metrics.from_summary(s, exit_code=s.exit_code or (0 if t in done else worst), template=t)
                        for t, s in summaries.items()], log)
    log_summary(log, "Summary: templates=%d ok=%d failed=%d%s", len(ids), len(done), len(failed),
                f" ({', '.join(f'{t}: {summaries[t].outcome}' for t in not_done)})" if not_done else "")
    return worst
