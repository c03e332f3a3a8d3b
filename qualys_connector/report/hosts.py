"""HOST elements -> compact spool records: address checked, findings typed, filtered and deduplicated.

Findings recur across hosts (a few thousand QIDs on a handful of ports), so each distinct
(qid, type, port, protocol) becomes one shared ``Finding`` with a small integer id; a host's
record in the spool is then its address, OS, names and a list of ids. That keeps the spool
small, the per-finding work down to one dict lookup, and the join at read time trivial.
"""
from __future__ import annotations

import html
import ipaddress
import re
from operator import attrgetter
from typing import Callable, Collection, Hashable

from ..text import clean_text
from ..logsetup import get_logger
from ..records import Finding
from .glossary import parse_qid
from .stats import ReportStats

log = get_logger("report")

INVALID = -1           # VULN_INFO without a numeric QID
FILTERED = -2          # TYPE not asked for (vuln_types)
FIXED = -3             # VULN_STATUS Fixed: no current finding
RAW_CACHE_LIMIT = 200_000   # distinct raw (qid, type, port, protocol, status) texts remembered
WARN_LIMIT = 10        # per kind of problem; the rest go to debug level (the counts are in the stats)
# What is read of a VULN_INFO_LIST; everything else in it (RESULT, dates, CVSS...) is skipped in C.
_FIELD_TAGS = ("VULN_INFO", "QID", "TYPE", "PORT", "PROTOCOL", "VULN_STATUS")


class FindingTable:
    """Distinct findings of the kept hosts, each with an id, and how often each was kept.

    Grows with distinct (qid, type, port, protocol), not with hosts: bounded in practice by
    QIDs x ports in use (the raw-text cache in front of it has a hard limit).
    """

    def __init__(self, vuln_types: Collection[str], distinct_by: Callable[[Finding], Hashable] = attrgetter("key")):
        self.findings: list[Finding] = []
        self.counts: list[int] = []
        self.dedup_ids: list[int] = []          # id -> id of its distinct_by key
        self._distinct_by = distinct_by
        self._types = {t.strip().casefold() for t in vuln_types}
        self._by_raw: dict[tuple, int] = {}
        self._by_finding: dict[Finding, int] = {}
        self._by_key: dict[tuple, int] = {}
        self.portless: set[int] = set()         # ids of findings with a port the FMC cannot place
        self.cached = self._by_raw.get

    def lookup(self, raw: tuple) -> int:
        """Id for the raw texts (QID, TYPE, PORT, PROTOCOL, VULN_STATUS) of a VULN_INFO, or FIXED,
        INVALID or FILTERED (in that order of precedence)."""
        code = self._by_raw.get(raw)
        if code is None:
            code = self._resolve(raw)
            if len(self._by_raw) < RAW_CACHE_LIMIT:
                self._by_raw[raw] = code
        return code

    def _resolve(self, raw: tuple) -> int:
        qid_text, kind, port_text, proto, status = raw
        if status is not None and status.strip().casefold() == "fixed":
            return FIXED
        qid = parse_qid(qid_text)
        if qid is None:
            return INVALID
        kind = (kind or "").strip()
        if kind.casefold() not in self._types:
            return FILTERED
        finding = Finding(qid=qid, type=kind, port=_port(port_text, qid),
                          protocol=(proto or "").strip().lower() or None)
        code = self._by_finding.get(finding)
        if code is None:
            code = len(self.findings)
            self.findings.append(finding)
            self.counts.append(0)
            self.dedup_ids.append(self._by_key.setdefault(self._distinct_by(finding), len(self._by_key)))
            self._by_finding[finding] = code
            if finding.port and finding.target == (None, None):
                self.portless.add(code)
        return code


def _port(text: str | None, qid: int) -> int | None:
    if text is None or not text.strip():
        return None
    try:
        port = int(text)
    except ValueError:
        port = -1
    if 0 <= port <= 65535:
        return port
    # Not seen in real reports; the finding is kept at host level rather than lost.
    log.debug("QID %d has an unusable PORT %r; sent without a port", qid, text[:20])
    return None


# A dotted quad as ipaddress writes it (no leading zeros): taken as it is, without ipaddress's
# cost; anything else (IPv6, zone ids, odd forms) goes through ipaddress.
_CANONICAL_V4 = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                           r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")
OS_CACHE_LIMIT = 10_000     # distinct OPERATING_SYSTEM texts remembered (a report has a few hundred),
OS_CACHE_TEXT = 256         # each at most this long: the cache stays under a few MB


def canonical_address(text: str) -> str:
    """The address as the FMC must see it; ValueError when ``text`` is no IPv4/IPv6 address."""
    if _CANONICAL_V4.fullmatch(text):
        return text
    # A zone id (fe80::1%eth0) means nothing to the FMC, which wants a bare address.
    return str(ipaddress.ip_address(text.split("%", 1)[0]))


def _text(value: str | None) -> str | None:
    """OPERATING_SYSTEM / DNS / NETBIOS: CDATA may hold HTML entities; one line, None when empty."""
    if not value:
        return None
    if "&" in value:
        value = html.unescape(value)
    return clean_text(value) or None


def _fields_fast(vulns) -> list[tuple] | None:
    """(QID, TYPE, PORT, PROTOCOL, VULN_STATUS) texts of each VULN_INFO, or None when the list is not plain.

    One C-level walk (``iter`` with the five tags) over the list instead of a Python loop over
    the children of every VULN_INFO: lxml makes no Python object for the children skipped
    (SERVICE, SSL, a long RESULT, dates, CVSS...), which is most of them. Plain means: every
    child of the list is a VULN_INFO and no field appears before the first one; anything else
    (never seen in a real report) is read by ``_fields_exact``, child by child.
    """
    rows: list[tuple] = []
    append = rows.append
    qid = kind = port = proto = status = None
    started = False
    for field in vulns.iter(_FIELD_TAGS):
        tag = field.tag
        if tag == "VULN_INFO":
            if started:
                append((qid, kind, port, proto, status))
            started = True
            qid = kind = port = proto = status = None
        elif not started:
            return None
        elif tag == "QID":
            qid = field.text
        elif tag == "TYPE":
            kind = field.text
        elif tag == "PORT":
            port = field.text
        elif tag == "PROTOCOL":
            proto = field.text
        else:
            status = field.text
    if started:
        append((qid, kind, port, proto, status))
    return rows if len(rows) == len(vulns) else None


def _fields_exact(vulns) -> list[tuple]:
    """``_fields_fast``'s answer for any list: the VULN_INFO children only, read child by child."""
    rows = []
    for info in vulns:
        if info.tag != "VULN_INFO":     # unknown element: ignored, and not a finding
            continue
        qid = kind = port = proto = status = None
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
            elif tag == "VULN_STATUS":
                status = field.text
        rows.append((qid, kind, port, proto, status))
    return rows


def _vuln_count(vulns) -> int:
    return 0 if vulns is None else sum(1 for info in vulns if info.tag == "VULN_INFO")


class HostReader:
    """Turns one HOST element into a spool record (or None), counting everything in ``stats``."""

    def __init__(self, stats: ReportStats, table: FindingTable, include: Callable[[str], bool]):
        self.stats, self.table, self.include = stats, table, include
        self._warned = {"address": 0, "error": 0, "qid": 0}
        self._os_cache: dict[str | None, str | None] = {}

    def __call__(self, elem) -> tuple | None:
        stats = self.stats
        stats.hosts_total += 1
        ip_text = v6 = os_text = dns = netbios = vulns = error = None
        for child in elem:
            tag = child.tag
            if tag == "IP":
                ip_text, v6 = child.text, child.get("v6")
            elif tag == "VULN_INFO_LIST":
                vulns = child
            elif tag == "OPERATING_SYSTEM":
                os_text = child.text
            elif tag == "DNS":
                dns = child.text
            elif tag == "NETBIOS":
                netbios = child.text
            elif tag == "ERROR":   # DTD: HOST (ERROR | (IP, ...)); never seen in a real file
                error = child.text
        if error is not None:
            count = _vuln_count(vulns)
            stats.findings_total += count
            stats.findings_invalid += count
            stats.hosts_with_error += 1
            self._warn("error", "Qualys reported an error instead of the data of host %s: %s; skipped",
                       clean_text(ip_text) or "?", clean_text(error)[:200])
            return None
        # The FMC must see the IPv6 address of a mapped host, not Qualys's IPv4 placeholder.
        # Unverified (docs/qualys-api.md §3.8): no real capture shows IP/@v6; we follow the DTD fragment, and an
        # IPv6 literal in the IP text (newer tenants?) is accepted as well.
        raw_address = (v6 if v6 and v6.strip() else ip_text or "").strip()
        try:
            address = canonical_address(raw_address)
        except ValueError:
            count = _vuln_count(vulns)
            stats.findings_total += count
            stats.findings_invalid += count
            stats.hosts_bad_address += 1
            self._warn("address", "skipped a host whose address %r is not an IPv4 or IPv6 address",
                       raw_address[:60])
            return None
        if not self.include(address):
            count = _vuln_count(vulns)
            stats.findings_total += count
            stats.findings_outside_ranges += count
            stats.hosts_outside_ranges += 1
            return None
        stats.hosts_kept += 1
        ids: list[int] = []
        if vulns is not None:
            stats.findings_total += len(vulns)    # _findings discounts children that are no VULN_INFO
            self._findings(vulns, address, ids)
        os_clean = self._os_cache.get(os_text)    # few distinct OS texts, repeated on every host
        if os_clean is None:
            os_clean = _text(os_text)
            if len(self._os_cache) < OS_CACHE_LIMIT and os_text and len(os_text) <= OS_CACHE_TEXT:
                self._os_cache[os_text] = os_clean
        return (address, os_clean, _text(dns), _text(netbios), ids)

    def _findings(self, vulns, address: str, ids: list[int]) -> None:
        table, stats = self.table, self.stats
        lookup, counts, dedup_ids, portless = table.lookup, table.counts, table.dedup_ids, table.portless
        cached = table.cached          # the hot path: one dict lookup per finding
        seen: set[int] = set()
        fixed = filtered = 0
        rows = _fields_fast(vulns)
        if rows is None:
            rows = _fields_exact(vulns)
            stats.findings_total -= len(vulns) - len(rows)   # children that are no VULN_INFO
        for raw in rows:
            code = cached(raw)
            if code is None:
                code = lookup(raw)
            if code < 0:
                if code == FILTERED:
                    filtered += 1
                elif code == FIXED:
                    # Fixed is no current finding (the template asked for it, or Qualys sent it anyway):
                    # the host counts as without it, so the FMC loses it (README "Keeping the FMC current").
                    fixed += 1
                else:
                    stats.findings_invalid += 1
                    self._warn("qid", "skipped a finding of %s without a numeric QID (%r)",
                               address, (raw[0] or "")[:20])
                continue
            # The product dedups on (qid, port, protocol) (README "What the QualysGuard plugin sends"), or on what the caller's
            # distinct_by says (the QualysGuard plugin: Finding.fmc_key). The spec (§3.4) notes Qualys
            # also repeats a QID per SSL flag, FQDN or INSTANCE; those collapse here on purpose,
            # since the FMC's AddScanResult has no field that could tell them apart.
            key = dedup_ids[code]
            if code in portless:
                stats.ports_without_protocol += 1
                log.debug("%s QID %s port %s has no tcp/udp PROTOCOL: counted at host level%s", address,
                          raw[0], (raw[2] or "").strip()[:10], ", merged with another of this QID" if key in seen else "")
            if key in seen:
                stats.duplicates_dropped += 1
                continue
            seen.add(key)
            ids.append(code)
            counts[code] += 1
        stats.findings_filtered_type += filtered
        stats.findings_filtered_status += fixed

    def _warn(self, kind: str, message: str, *args) -> None:
        self._warned[kind] += 1
        if self._warned[kind] <= WARN_LIMIT:
            log.warning(message, *args)
            if self._warned[kind] == WARN_LIMIT:
                log.warning("further problems of this kind are logged at debug level only")
        else:
            log.debug(message, *args)
