"""Host detections as the QualysGuard plugin's source: the same ``hosts()`` / ``vuln(qid)`` / ``stats``
as a parsed report (``report.Report``), read from the Host List Detection API and the KnowledgeBase.

Two passes, so that ``vuln(qid)`` is known while hosts stream: pass 1 pages through every detection
page (``DetectionPull``), keeps each host inside ``ip_ranges`` as one compact record in a spool file
(``report/spool.py``) and collects the distinct QIDs; then one KnowledgeBase lookup for those QIDs
(the cache asks Qualys only for the ones it has not seen); pass 2 (``hosts()``) reads the spool
back. Memory grows with the distinct QIDs, never with hosts or pages; a page that is cut off or
unparseable raises in pass 1, before anything is written.

Rules, as README "Pulling detections instead of reports" says: TYPE is mapped to the report's
words (``report_type``) and filtered by ``vuln_types``; SEVERITY below ``min_severity`` is dropped
(an unknown severity passes, as in the report); ``Fixed`` detections count as absent; one finding
per QID/port/protocol as the FMC sees it (``Finding.fmc_key``).
"""
from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

from ..logsetup import get_logger
from ..records import Finding, Host, Vuln
from ..report.glossary import html_to_text
from ..report.spool import Spool
from .detections import DetectionPull, Post, report_type
from .knowledgebase import KnowledgeBase

log = get_logger("detections")

TYPES = ("Vuln", "Practice", "Ig")
FIXED = "Fixed"
PROGRESS_EVERY = 10_000


@dataclass(slots=True)
class DetectionStats:
    """Counts of one pull; ``hosts_total = hosts_kept + hosts_outside_ranges + hosts_bad_address``."""

    pages: int = 0
    hosts_total: int = 0             # HOSTs on all pages
    hosts_kept: int = 0              # yielded by hosts()
    hosts_outside_ranges: int = 0
    hosts_bad_address: int = 0
    hosts_only_fixed: int = 0        # every detection Fixed: nothing to send (kept out of hosts_kept
                                     # unless fixed_hosts: then yielded without findings, to be cleared)
    detections_total: int = 0        # DETECTIONs of hosts inside ip_ranges
    findings_kept: int = 0
    fixed_dropped: int = 0
    findings_filtered_type: int = 0
    findings_filtered_severity: int = 0
    duplicates_dropped: int = 0      # same QID/port/protocol as the FMC sees it, on one host
    qids: int = 0                    # distinct QIDs kept
    qids_without_kb: int = 0         # of those, unknown to the KnowledgeBase: sent as "QID n"
    kb_calls: int = 0                # KnowledgeBase calls this run made (the cache answered the rest)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def qualys_ips(ranges) -> str | None:
    """``ip_ranges`` as Qualys's ``ips`` parameter, or None: send no ``ips`` when every address is
    wanted, or when the ranges hold IPv6 (Qualys's ``ips`` would then leave IPv6-only hosts out);
    the local check applies in every case."""
    if ranges is None or getattr(ranges, "everything", False):
        return None
    entries = [e.strip() for e in str(ranges).split(",") if e.strip()]
    if not entries or any(":" in e for e in entries):
        return None
    return ",".join(entries)


def _address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.split("%", 1)[0]))
    except ValueError:
        return None


class DetectionSource:
    """Use as a context manager: entering makes pass 1 and the KnowledgeBase lookup."""

    def __init__(self, post: Post, kb: KnowledgeBase, form: dict[str, str], *,
                 include: Callable[[str], bool] = lambda ip: True, vuln_types=("Vuln", "Practice"),
                 min_severity: int = 1, tmpdir: str | None = None,
                 progress: Callable[[int], None] | None = None, fixed_hosts: bool = False):
        self.pull = DetectionPull(post, form, tmpdir=tmpdir)
        # fixed_hosts: a host whose detections are all Fixed is yielded without findings (an
        # incremental pull: its results are cleared), not left out.
        self.fixed_hosts = fixed_hosts
        self.kb, self.include, self.tmpdir, self.progress = kb, include, tmpdir, progress
        self.vuln_types, self.min_severity = frozenset(vuln_types), min_severity
        self.stats = DetectionStats()
        self._spool: Spool | None = None
        self._vulns: dict[int, Vuln] = {}

    @property
    def datetime(self) -> str | None:
        """The first page's DATETIME (the next incremental pull's ``vm_processed_after``)."""
        return self.pull.datetime

    def __enter__(self) -> "DetectionSource":
        self._spool = Spool(self.tmpdir)
        try:
            qids = self._read()
            self._spool.finish()
            self._lookup(qids)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._spool is not None:
            self._spool.remove()
            self._spool = None

    def _read(self) -> set[int]:
        stats, qids = self.stats, set()
        for host in self.pull:
            stats.hosts_total += 1
            if self.progress and stats.hosts_total % PROGRESS_EVERY == 0:
                self.progress(stats.hosts_total)
            address = _address(host.ip)
            if address is None:
                stats.hosts_bad_address += 1
                log.warning("skipped Qualys host %d: its address %r is not an IPv4 or IPv6 address",
                            host.id, host.ip[:60])
                continue
            if not self.include(address):
                stats.hosts_outside_ranges += 1
                continue
            flat: list = []
            seen: set = set()
            fixed = 0
            for d in host.detections:
                stats.detections_total += 1
                if d.status == FIXED:
                    fixed += 1
                    continue
                kind = report_type(d.type)
                if kind not in self.vuln_types:
                    stats.findings_filtered_type += 1
                    continue
                if d.severity is not None and d.severity < self.min_severity:
                    stats.findings_filtered_severity += 1
                    continue
                finding = Finding(d.qid, kind, d.port, d.protocol.lower() if d.protocol else None)
                if finding.fmc_key in seen:
                    stats.duplicates_dropped += 1
                    continue
                seen.add(finding.fmc_key)
                flat += (finding.qid, TYPES.index(kind), finding.port, finding.protocol)
                qids.add(finding.qid)
            stats.fixed_dropped += fixed
            if host.detections and fixed == len(host.detections):
                stats.hosts_only_fixed += 1
                if not self.fixed_hosts:
                    continue
            stats.hosts_kept += 1
            stats.findings_kept += len(flat) // 4
            self._spool.add((address, host.os or None, host.dns or None, flat))
        stats.pages = self.pull.pages
        return qids

    def _lookup(self, qids: set[int]) -> None:
        calls = self.kb.calls
        found = self.kb.lookup(qids)
        self.stats.kb_calls = self.kb.calls - calls
        self.stats.qids = len(qids)
        missing = qids - found.keys()
        self.stats.qids_without_kb = len(missing)
        if missing:
            log.warning("%d QIDs are not in Qualys's KnowledgeBase (e.g. %s); they are sent as 'QID <n>'",
                        len(missing), min(missing))
        for qid, v in found.items():
            self._vulns[qid] = Vuln(qid=qid, title=html_to_text(v.title) or f"QID {qid}",
                                    threat=html_to_text(v.diagnosis), cve_ids=tuple(v.cve_ids),
                                    bugtraq_ids=tuple(v.bugtraq_ids))

    def hosts(self) -> Iterator[Host]:
        for address, os_text, dns, flat in self._spool.read():
            findings = [Finding(flat[i], TYPES[flat[i + 1]], flat[i + 2], flat[i + 3]) for i in range(0, len(flat), 4)]
            yield Host(ip=address, os=os_text, dns=dns, findings=findings)

    def vuln(self, qid: int) -> Vuln:
        """The KnowledgeBase entry of ``qid``, or a ``QID <n>`` placeholder when Qualys has none."""
        return self._vulns.get(qid) or Vuln(qid=qid, title=f"QID {qid}")
