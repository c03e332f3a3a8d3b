"""Which hosts a run clears on the FMC, and the lines that do it (README "Keeping the FMC current").

A host is cleared (every result of our scanner removed) when the source lists it with nothing
to send (no finding left after ``vuln_types``, ``min_severity`` and VULN_STATUS Fixed), or when
the previous successful run of the same job delivered it and this one did not
(``remove_missing``). The safety valve ``max_clear`` holds back every clear of a run that would
clear too much of what was delivered last time: an empty or mis-scoped report never wipes the FMC.

The order on the wire, after the plugin's results and their ``ScanFlush``:

    DeleteScanResult,<ip>,"<scanner_name>"      one per cleared host
    ScanUpdate

``ScanFlush`` does not run queued ``DeleteScanResult`` commands; ``ScanUpdate`` does, and then
*merges* whatever results are queued (docs/host-input.md §1.4). So the deletes come after the
``ScanFlush`` (which has emptied the queue of results, applied in replace mode) and are run by a
``ScanUpdate`` of their own: nothing is merged by mistake, and no delete is left queued for an
FMC that might drop it at ``ScanFlush`` or at the end of the connection. A cleared host never
got a result in this run, so the order between its delete and the results does not matter.
"""
from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .deliveryrecord import ClearScope, DeliveryRecord, Target
from .hostinput import encode_line
from .hostinput.builders import delete_scan_results, scan_update
from .logsetup import get_logger

log = get_logger()


@dataclass
class ClearPlan:
    """What ``Clearing.write`` decided."""

    would_clear: int = 0        # hosts the run would clear
    counted: int = 0            # of them, what the valve counts (delivered last time)
    base: int = 0               # what the valve compares with
    cleared: int = 0            # clear lines written (0 when held)
    held: bool = False          # the valve held every clear back


class PeerHosts:
    """process-multiple: the hosts each template of this run delivered, per target without job.

    A template does not clear a host that another template of the run delivered under the same
    scanner (and FMC, domain, source): that host is not gone, it moved. A scratch SQLite file,
    shared by the worker threads under one lock.
    """

    def __init__(self, directory: str | os.PathLike | None = None):
        fd, self._path = tempfile.mkstemp(prefix=".qc-peers-", suffix=".sqlite", dir=directory)
        os.close(fd)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        self._db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
                               "CREATE TABLE hosts (grp TEXT, job TEXT, ip TEXT, PRIMARY KEY (grp, ip, job)) WITHOUT ROWID;")

    def register(self, target: Target, record: DeliveryRecord) -> None:
        rows = ((target.group(), target.job, ip) for ip in record.current_hosts())
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR IGNORE INTO hosts VALUES (?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def delivered_by_other(self, target: Target, ip: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM hosts WHERE grp = ? AND ip = ? AND job != ? LIMIT 1",
                                    (target.group(), ip, target.job)).fetchone() is not None

    def close(self) -> None:
        self._db.close()
        try:
            os.unlink(self._path)
        except FileNotFoundError:
            pass


class Clearing:
    """One run's clearing: the plugin notes hosts, the core writes the lines and commits."""

    def __init__(self, record: DeliveryRecord, scope: ClearScope, *, use_record: bool,
                 peers: PeerHosts | None = None):
        self.record, self.scope, self.peers = record, scope, peers
        self.use_record = use_record        # False: a dry run without -server (no target known)
        self.plan = ClearPlan()
        self.partial = False                # the source lists only what changed (changes_only)
        self.watermark: str | None = None   # the source's position, kept in the record at commit

    # what the plugin may read and say about its source
    @property
    def previous_watermark(self) -> str | None:
        """The watermark of the previous successful delivery to this target, or None."""
        return self.record.watermark if self.use_record and self.record.exists else None

    def changes_only(self) -> None:
        """The source lists only the hosts that changed since ``previous_watermark`` (an incremental
        pull): a host it does not list is unchanged, not gone. So no host of the record counts as
        missing, the record keeps them, and it forgets the hosts this run clears."""
        self.partial = True

    # the plugin's side, one call per host of the source
    def sent(self, ip: str) -> None:
        """``ip`` got results in this run."""
        self.record.add_current(ip)

    def absent(self, ip: str) -> None:
        """``ip`` is in the source without anything to send: its results are cleared."""
        self.record.add_absent(ip)

    # the core's side
    def write(self, out: BinaryIO, summary) -> ClearPlan:
        """After production: append the clear lines (or none, when the valve holds) to ``out``.

        Counts the lines into ``summary.commands``; ``summary.hosts_cleared`` is the caller's to
        set once the lines were delivered (or written, in a dry run).
        """
        record, scope, plan = self.record, self.scope, self.plan
        missing = self.use_record and record.exists and scope.remove_missing and not self.partial
        if self.peers is not None:
            self.peers.register(record.target, record)
        if record.exists and self.use_record:
            # The valve counts the hosts that hold results from us as far as we know: those of the
            # previous record, cleared because they left the report or have no findings left.
            # Hosts without findings that were not delivered last time never count (nothing of
            # ours is known to be there); with no record, nothing counts.
            plan.base = record.previous_count
            plan.counted = record.count_to_clear(include_missing=missing, previous_only=True)
        plan.would_clear = record.count_to_clear(include_missing=missing, previous_only=False)
        if plan.counted and not scope.max_clear.allows(plan.counted, plan.base):
            plan.held = True
            log.warning("not clearing any of the %d host(s) this run would clear: %d of the %d hosts delivered "
                        "last time is more than max_clear (%s); everything else is sent", plan.would_clear,
                        plan.counted, plan.base, scope.max_clear)
            return plan
        debug = log.isEnabledFor(10)
        lines = []
        for ip in record.to_clear(include_missing=missing):
            if self.peers is not None and self.peers.delivered_by_other(record.target, ip):
                log.debug("not clearing %s: another template of this run delivered it", ip)
                continue
            if debug:
                log.debug("clearing the %s results of %s", scope.scanner_name, ip)
            lines.append(encode_line(delete_scan_results(ip, scope.scanner_name)))
            plan.cleared += 1
            if len(lines) >= 5000:
                out.write(b"".join(lines))
                lines.clear()
        if plan.cleared:
            lines.append(encode_line(scan_update()))
            out.write(b"".join(lines))
            summary.commands += plan.cleared + 1
        if plan.cleared:
            log.info("clearing %d host(s) on the FMC (without findings now, or gone from the report)", plan.cleared)
        return plan

    def commit(self) -> None:
        """After the FMC acknowledged everything: the record becomes this run's hosts.

        When the valve held, the previous hosts stay in it too (their results are still there,
        so a later run must still be able to clear them). The watermark moves to the source's
        only when nothing was held back: a held full pull leaves none (the next run pulls
        everything again), a held incremental run keeps the previous one (the next run sees the
        held hosts again).
        """
        held = self.plan.held
        if self.partial:
            self.record.commit(watermark=self.record.watermark if held else self.watermark,
                               keep_missing=True, forget_absent=not held)
        else:
            self.record.commit(watermark=None if held else self.watermark, keep_missing=held)
        log.info("delivery record %s updated", self.record.path)

    def close(self) -> None:
        self.record.close()


def open_clearing(state_dir: Path, server: str | None, port: int, scope: ClearScope, *,
                  peers: PeerHosts | None = None) -> Clearing:
    """The clearing of one run. ``server`` None (a dry run without -server): no record is read."""
    target = Target(server or "", port, scope.domain, scope.source_name, scope.scanner_name, scope.job)
    record = DeliveryRecord.open(state_dir, target, previous=server is not None)
    return Clearing(record, scope, use_record=server is not None, peers=peers)


__all__ = ["ClearPlan", "ClearScope", "Clearing", "PeerHosts", "open_clearing"]
