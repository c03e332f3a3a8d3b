"""Streaming reader of Qualys ASSET_DATA_REPORT XML: flat memory, nothing trusted.

One pass of lxml ``iterparse`` over the downloaded file validates the whole document, keeps the
glossary (one entry per distinct QID: the only thing that grows with the report) and spools the
hosts inside ``ip_ranges`` compactly to a temp file; ``Report.hosts()`` then reads the spool back
and joins each finding with the glossary. Qualys writes the GLOSSARY *after* HOST_LIST, so a
single pass meets every finding before its title and severity; spooling is what makes one pass
enough (two passes would cost twice the parse). Because ``open_report`` returns only after the
whole file parsed, a truncated or malformed report yields no host at all: nothing is sent.

Hostile input: entities are never resolved, no DTD or network is loaded, and a document that
declares entities in its DOCTYPE (XML bombs, XXE) is refused before parsing.
"""
from __future__ import annotations

import html
import ipaddress
import os
import pickle
import re
import tempfile
from dataclasses import dataclass
from typing import Callable, Collection, Iterator

from lxml import etree

from .errors import QualysError, ReportFormatError
from .hostinput.commands import clean_text
from .logsetup import get_logger
from .records import Finding, Host, Vuln

log = get_logger()

PROGRESS_EVERY = 10_000
_TAGS = ("HOST", "VULN_DETAILS", "HOSTS", "ERROR")
_HTML_TAG = re.compile(r"<[^>]*>")
_CUT_HINT = "the download was probably cut short or damaged: run again, or check the saved report"


@dataclass
class ReportStats:
    hosts_total: int = 0
    hosts_kept: int = 0
    hosts_outside_ranges: int = 0
    hosts_bad_address: int = 0
    findings_total: int = 0
    findings_kept: int = 0
    findings_filtered: int = 0
    duplicates_dropped: int = 0
    qids_without_glossary: int = 0
    glossary_entries: int = 0


def html_to_text(text: str | None) -> str:
    """THREAT/TITLE text: HTML tags removed, entities decoded (they sit inside CDATA), one line."""
    if not text:
        return ""
    return clean_text(html.unescape(_HTML_TAG.sub(" ", text)))


class Report:
    """A fully parsed report: the glossary in memory, the kept hosts in a spool file."""

    def __init__(self, glossary: dict[int, Vuln], spool_path: str, stats: ReportStats, min_severity: int):
        self.glossary = glossary
        self.stats = stats
        self._spool = spool_path
        self._min_severity = min_severity

    def hosts(self) -> Iterator[Host]:
        glossary, minimum, stats = self.glossary, self._min_severity, self.stats
        missing: set[int] = set()
        with open(self._spool, "rb") as fh:
            load = pickle.Unpickler(fh).load
            while True:
                try:
                    ip, os_text, dns, netbios, raw = load()
                except EOFError:
                    break
                findings = []
                for qid, kind, port, proto in raw:
                    vuln = glossary.get(qid)
                    if vuln is None:
                        if qid not in missing:
                            missing.add(qid)
                            stats.qids_without_glossary += 1
                            log.debug("QID %d is not in the report's glossary; sent as 'QID %d'", qid, qid)
                    elif vuln.severity is not None and vuln.severity < minimum:
                        stats.findings_filtered += 1
                        continue
                    findings.append(Finding(qid, kind, port, proto))
                stats.findings_kept += len(findings)
                yield Host(ip, os_text, dns, netbios, findings)

    def close(self) -> None:
        if self._spool and os.path.exists(self._spool):
            os.unlink(self._spool)
        self._spool = None

    def __enter__(self) -> "Report":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_report(path: str, *, include: Callable[[str], bool] = lambda ip: True,
                vuln_types: Collection[str] = ("Vuln", "Practice"), min_severity: int = 1,
                progress: Callable[[int], None] | None = None, spool_dir: str | None = None) -> Report:
    """Parse ``path`` completely; raises ReportFormatError / QualysError, never yields half a report."""
    _refuse_entity_declarations(path)
    fd, spool = tempfile.mkstemp(prefix=".qc-hosts-", suffix=".spool", dir=spool_dir)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as out:
            glossary, stats = _parse(path, out, include, frozenset(vuln_types), progress)
        return Report(glossary, spool, stats, min_severity)
    except BaseException:
        os.unlink(spool)
        raise


def _refuse_entity_declarations(path: str) -> None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536)
    except OSError as exc:
        raise ReportFormatError(f"cannot read the report {path}: {exc.strerror}") from None
    if not head.strip():
        raise ReportFormatError("the report is empty (0 bytes of XML)", _CUT_HINT)
    root_start = re.search(rb"<(?![?!])", head)
    prologue = head[:root_start.start()] if root_start else head
    if b"<!ENTITY" in prologue:
        raise ReportFormatError("the report declares XML entities in its DOCTYPE; refused without "
                                "expanding them (Qualys reports never do this)",
                                "the file is not a genuine Qualys report")


def _parse(path, out, include, vuln_types, progress):
    stats = ReportStats()
    glossary: dict[int, Vuln] = {}
    dump = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump
    context = etree.iterparse(path, events=("end",), tag=_TAGS, resolve_entities=False, no_network=True,
                              load_dtd=False, huge_tree=True, remove_comments=True)
    try:
        for _, elem in context:
            tag = elem.tag
            if tag == "HOST":
                _host(elem, stats, include, vuln_types, dump)
                if progress and stats.hosts_total % PROGRESS_EVERY == 0:
                    progress(stats.hosts_total)
            elif tag == "VULN_DETAILS":
                vuln = _vuln(elem)
                if vuln is not None:
                    glossary[vuln.qid] = vuln
            elif tag == "ERROR" and elem.getparent() is not None and elem.getparent().tag in ("ASSET_DATA_REPORT", "HOST"):
                if elem.getparent().tag == "ASSET_DATA_REPORT":
                    raise ReportFormatError(f"Qualys wrote an error into the report: {clean_text(elem.text)}",
                                            "run again; if it persists, check the template in Qualys")
            elem.clear(keep_tail=False)
            parent = elem.getparent()
            if parent is not None:
                while elem.getprevious() is not None:
                    del parent[0]
        root = context.root
    except etree.XMLSyntaxError as exc:
        line = getattr(exc, "lineno", None) or (exc.position[0] if getattr(exc, "position", None) else None)
        raise ReportFormatError(f"the report is not complete, well-formed XML "
                                f"({_short(exc.msg)}{f', line {line}' if line else ''})", _CUT_HINT) from None
    if root is None:
        raise ReportFormatError("the report holds no XML element", _CUT_HINT)
    if root.tag == "SIMPLE_RETURN":
        code = root.findtext("RESPONSE/CODE")
        text = clean_text(root.findtext("RESPONSE/TEXT"))
        raise QualysError(f"Qualys returned an error instead of the report: CODE {code}: {text}",
                          code=code, text=text)
    if root.tag != "ASSET_DATA_REPORT":
        raise ReportFormatError(f"the file is not an ASSET_DATA_REPORT (its root element is <{root.tag}>)",
                                "the template must produce an XML scan report")
    stats.glossary_entries = len(glossary)
    return glossary, stats


def _short(message: str) -> str:
    return (message or "syntax error").split("\n")[0][:160]


def _host(elem, stats: ReportStats, include, vuln_types, dump) -> None:
    stats.hosts_total += 1
    ip_text = v6 = os_text = dns = netbios = None
    vulns = None
    for child in elem:
        tag = child.tag
        if tag == "IP":
            ip_text = (child.text or "").strip()
            v6 = child.get("v6")
        elif tag == "OPERATING_SYSTEM":
            os_text = child.text
        elif tag == "DNS":
            dns = child.text
        elif tag == "NETBIOS":
            netbios = child.text
        elif tag == "VULN_INFO_LIST":
            vulns = child
    address = (v6 or ip_text or "").strip()
    try:
        address = str(ipaddress.ip_address(address))
    except ValueError:
        stats.hosts_bad_address += 1
        log.warning("skipped a host with an unusable address %r", address[:60])
        return
    count = len(vulns) if vulns is not None else 0
    stats.findings_total += count
    if not include(address):
        stats.hosts_outside_ranges += 1
        return
    stats.hosts_kept += 1
    seen = set()
    findings = []
    if vulns is not None:
        for info in vulns:
            qid = kind = port = proto = None
            for field in info:
                tag = field.tag
                if tag == "QID":
                    qid = field.text
                elif tag == "TYPE":
                    kind = field.text
                elif tag == "PORT":
                    port = field.text
                elif tag == "PROTOCOL":
                    proto = field.text
            try:
                qid = int(qid)
            except (TypeError, ValueError):
                log.warning("skipped a finding of %s without a numeric QID", address)
                continue
            kind = (kind or "").strip()
            if kind not in vuln_types:
                stats.findings_filtered += 1
                continue
            try:
                port = int(port) if port and port.strip() else None
            except ValueError:
                port = None
            proto = proto.strip().lower() or None if proto else None
            key = (qid, port, proto)
            if key in seen:
                stats.duplicates_dropped += 1
                continue
            seen.add(key)
            findings.append((qid, kind, port, proto))
    dump((address, os_text, dns, netbios, findings))


def _vuln(elem) -> Vuln | None:
    qid = title = severity = category = threat = None
    cves: list[str] = []
    bids: list[str] = []
    for child in elem:
        tag = child.tag
        if tag == "QID":
            qid = child.text
        elif tag == "TITLE":
            title = child.text
        elif tag == "SEVERITY":
            severity = child.text
        elif tag == "CATEGORY":
            category = child.text
        elif tag == "THREAT":
            threat = child.text
        elif tag == "CVE_ID_LIST":
            cves = [i.strip() for i in (c.findtext("ID") for c in child) if i and i.strip()]
        elif tag == "BUGTRAQ_ID_LIST":
            bids = [i.strip() for i in (c.findtext("ID") for c in child) if i and i.strip()]
    if qid is None:
        ident = elem.get("id") or ""
        qid = ident[4:] if ident.startswith("qid_") else None
    try:
        qid = int(qid)
    except (TypeError, ValueError):
        return None
    try:
        sev = int(severity) if severity is not None else None
    except ValueError:
        sev = None
    return Vuln(qid, html_to_text(title) or f"QID {qid}", sev, clean_text(category) or None,
                html_to_text(threat), tuple(cves), tuple(bids))
