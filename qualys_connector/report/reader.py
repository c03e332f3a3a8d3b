"""``open_report``: one streaming pass that validates the whole report before anything is yielded.

The pass (lxml ``iterparse``, end events of the bulky repeated elements only, each cleared and
its earlier siblings deleted) keeps the glossary in memory (one entry per distinct QID) and
spools the hosts inside ``include`` to a temp file. ``open_report`` returns only after the
closing tag of the root was parsed, so a truncated or malformed file raises before a single
host is yielded: nothing of it reaches the FMC. Qualys writes the GLOSSARY *after* HOST_LIST,
so severities are only known at the end; the min_severity filter is therefore applied when
the spool is read back (and counted at the end of the pass, so the stats are complete when
``open_report`` returns). Spooling costs a small fraction of the parse; a second pass over the
XML would cost a whole one.
"""
from __future__ import annotations

from operator import attrgetter
from typing import Callable, Collection, Hashable, Iterator

from lxml import etree

from ..errors import QualysReportError, ReportFormatError
from ..text import clean_text
from ..logsetup import get_logger
from ..progress import NO_PROGRESS, Progress
from ..records import Finding, Host, Vuln
from .glossary import placeholder, vuln_from_element
from .hosts import FindingTable, HostReader
from .spool import Spool
from .stats import ReportStats
from .xmlguard import CUT_HINT, PARSER_OPTIONS, inspect_root, simple_return_error, translated, undeclared_entity

log = get_logger("report")

PROGRESS_EVERY = 10_000
LIVE_EVERY = 500          # hosts between two updates of a live display (a terminal; else a no-op)
# Elements that repeat once per host or per QID; everything else is small and left alone.
# RISK_SCORE_PER_HOST/HOSTS is per host, RANGE (targets, NO_RESULTS) can be numerous too.
_EVENT_TAGS = ("HOST", "VULN_DETAILS", "HOSTS", "RANGE", "ERROR")


class Report:
    """A report that parsed completely: glossary in memory, kept hosts in a spool file.

    Use as a context manager; ``close`` deletes the spool. ``hosts()`` may be iterated more than
    once (each time from the spool).
    """

    def __init__(self, glossary: dict[int, Vuln], stats: ReportStats, spool: Spool,
                 deliverable: list[Finding | None]):
        self.glossary = glossary
        self.stats = stats
        self._spool: Spool | None = spool
        self._deliverable = deliverable     # finding id -> Finding, or None when below min_severity

    def hosts(self) -> Iterator[Host]:
        """Kept hosts in report order; findings filtered, deduplicated, in report order."""
        if self._spool is None:
            raise ValueError("the report is closed")
        table = self._deliverable
        for ip, os_text, dns, netbios, ids in self._spool.read():
            findings = [f for f in map(table.__getitem__, ids) if f is not None]
            yield Host(ip=ip, os=os_text, dns=dns, netbios=netbios, findings=findings)

    def vuln(self, qid: int) -> Vuln:
        """The glossary entry of ``qid``, or a ``QID <n>`` placeholder when the glossary lacks it."""
        return self.glossary.get(qid) or placeholder(qid)

    @property
    def spool_path(self) -> str | None:
        return self._spool.path if self._spool else None

    def close(self) -> None:
        if self._spool is not None:
            self._spool.remove()
            self._spool = None

    def __enter__(self) -> "Report":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_report(path: str, *, include: Callable[[str], bool] = lambda ip: True,
                vuln_types: Collection[str] = ("Vuln", "Practice"), min_severity: int = 1,
                progress: Callable[[int], None] | None = None, spool_dir: str | None = None,
                distinct_by: Callable[[Finding], Hashable] = attrgetter("key"),
                live: Progress = NO_PROGRESS) -> Report:
    """Parse ``path`` completely, or raise; never returns half a report.

    Raises ReportFormatError (truncated, malformed, hostile, not a report), QualysError (a
    SIMPLE_RETURN error envelope), QualysReportError (an ERROR inside the report),
    InputFileError (the file cannot be read). ``include`` gets the address the FMC will see;
    ``progress(hosts_seen)`` is called every PROGRESS_EVERY hosts (exceptions it raises,
    such as a stop request, abort the parse and remove the spool). A host's findings are
    distinct by ``distinct_by(finding)``: (qid, port, protocol) unless the caller says otherwise.
    """
    root_tag = inspect_root(path)
    if root_tag == "SIMPLE_RETURN":
        raise simple_return_error(path)
    if root_tag != "ASSET_DATA_REPORT":
        raise ReportFormatError(f"the file is not an ASSET_DATA_REPORT (its root element is <{root_tag}>)",
                                "the template must be a scan template with XML output")
    stats = ReportStats()
    table = FindingTable(vuln_types, distinct_by)
    spool = Spool(spool_dir)
    try:
        with translated(path):
            glossary = _one_pass(path, HostReader(stats, table, include), spool, stats, progress, live)
        spool.finish()
        deliverable = _join(glossary, table, min_severity, stats)
        log.debug("report parsed: %s", stats.as_dict())
        return Report(glossary, stats, spool, deliverable)
    except BaseException:
        spool.remove()
        raise


def _one_pass(path: str, read_host: HostReader, spool: Spool, stats: ReportStats,
              progress: Callable[[int], None] | None, live: Progress = NO_PROGRESS) -> dict[int, Vuln]:
    glossary: dict[int, Vuln] = {}
    add = spool.add
    with open(path, "rb") as source:     # a file object, so a live display can show the bytes read
        return _parse(source, path, read_host, add, stats, progress, live, glossary)


def _parse(source, path: str, read_host, add, stats, progress, live, glossary) -> dict[int, Vuln]:
    context = etree.iterparse(source, events=("end",), tag=_EVENT_TAGS, remove_comments=True,
                              remove_pis=True, **PARSER_OPTIONS)
    for _, elem in context:
        tag = elem.tag
        if tag == "HOST":
            record = read_host(elem)
            if record is not None:
                add(record)
            if progress is not None and stats.hosts_total % PROGRESS_EVERY == 0:
                progress(stats.hosts_total)
            if stats.hosts_total % LIVE_EVERY == 0:
                live.update(read_bytes=source.tell(), hosts=stats.hosts_total, findings=stats.findings_total)
        elif tag == "VULN_DETAILS":
            _add_vuln(elem, glossary, stats)
        elif tag == "ERROR":
            parent = elem.getparent()
            # DTD (reconstructed, docs/qualys-api.md §3.1): ASSET_DATA_REPORT (ERROR | (HEADER, ...)). The shape
            # of ERROR (text, a ``number`` attribute as in other Qualys DTDs) is unverified.
            if parent is not None and parent.getparent() is None:   # <ASSET_DATA_REPORT><ERROR>
                text = clean_text(elem.text) or "no text given"
                raise QualysReportError(f"Qualys wrote an error instead of the report: {text}",
                                        "run again; if it persists, check the report template in Qualys",
                                        code=elem.get("number"), text=text)
            continue   # a HOST's ERROR: left for the HOST handler, which meets it next
        elem.clear(keep_tail=False)
        parent = elem.getparent()
        if parent is not None:
            while elem.getprevious() is not None:
                del parent[0]
    if context.root is None:  # pragma: no cover - inspect_root has seen an element
        raise ReportFormatError("the report holds no XML element", CUT_HINT)
    entity = undeclared_entity(context.error_log, path)   # libxml2 only warns with a DOCTYPE
    if entity is not None:
        raise entity
    stats.glossary_entries = len(glossary)
    return glossary


def _add_vuln(elem, glossary: dict[int, Vuln], stats: ReportStats) -> None:
    vuln = vuln_from_element(elem)
    if vuln is None:
        stats.glossary_invalid += 1
        log.warning("ignored a glossary entry without a numeric QID (id=%r)", (elem.get("id") or "")[:40])
    elif vuln.qid in glossary:
        log.debug("QID %d appears twice in the glossary; the first entry is used", vuln.qid)
    else:
        glossary[vuln.qid] = vuln


def _join(glossary: dict[int, Vuln], table: FindingTable, min_severity: int,
          stats: ReportStats) -> list[Finding | None]:
    """Which distinct findings survive min_severity, now that the whole glossary is known."""
    deliverable: list[Finding | None] = []
    missing: set[int] = set()
    for finding, count in zip(table.findings, table.counts):
        vuln = glossary.get(finding.qid)
        if vuln is None:
            # Kept: the FMC still learns the QID (as "QID <n>"); losing it silently would be worse.
            if count and finding.qid not in missing:
                missing.add(finding.qid)
                log.debug("QID %d is not in the report's glossary; it is sent as 'QID %d'",
                          finding.qid, finding.qid)
            keep = True
        else:
            # An unknown severity passes: better an extra finding than a silently lost one.
            keep = vuln.severity is None or vuln.severity >= min_severity
        if keep:
            stats.findings_kept += count
            deliverable.append(finding)
        else:
            stats.findings_filtered_severity += count
            deliverable.append(None)
    stats.qids_without_glossary = len(missing)
    stats.findings_filtered = (stats.findings_filtered_type + stats.findings_filtered_severity
                               + stats.findings_filtered_status)
    return deliverable
