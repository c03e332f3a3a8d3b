"""Deterministic, streaming generator of realistic ASSET_DATA_REPORT XML.

It writes the shape Qualys writes (sample: ``tests/data/sample_asset_data_report.xml``):
DOCTYPE with an external DTD URL, HEADER, RISK_SCORE_PER_HOST, HOST_LIST, GLOSSARY *after*
the hosts (or first, on request), APPENDICES and a comment after the root. Every host is made
from its own seeded random generator, so ``expected_findings`` can say what the report holds
without parsing XML — an independent answer for the "nothing lost" tests — and a million
hosts cost no memory (only the set of QIDs used is kept, for the glossary).
"""
from __future__ import annotations

import ipaddress
import random
from typing import BinaryIO, Iterator

_VENDORS = ["Apache", "OpenSSL", "Microsoft", "Cisco", "OpenSSH", "nginx", "Oracle", "ISC BIND", "Samba", "PHP"]
_FLAWS = ["remote code execution", "denial of service", "information disclosure", "privilege escalation",
          "weak cipher suites", "cross-site scripting", "authentication bypass", "buffer overflow"]
_CATEGORIES = ["General remote services", "Web server", "Windows", "Local", "TCP/IP", "CGI", "Information gathering"]
_OS = ["Windows Server 2016 Standard 64 bit Edition Version 1607", "Linux 3.x", "Ubuntu / Linux 4.x",
       "Cisco IOS 15.2", "Windows 10 Enterprise 64 bit Edition Version 21H2", "FreeBSD 12.1"]
_SERVICES = {22: "ssh", 80: "http", 443: "http over ssl", 445: "microsoft-ds", 8443: "http over ssl",
             3389: "ms-wbt-server", 123: "ntp", 161: "snmp", 53: "domain", 25: "smtp"}


def _qids(distinct_qids: int) -> list[int]:
    return [10000 + 37 * k for k in range(distinct_qids)]


def _host(index: int, seed: int, vulns_per_host: int, qids: list[int], ipv6_every: int, base: int):
    """(ip text, v6 or None, os, findings[(qid, type, port, proto, ssl)]) for host ``index``."""
    rng = random.Random(seed * 1_000_003 + index)
    ip = str(ipaddress.IPv4Address(base + index + 1))
    v6 = None
    if ipv6_every and index % ipv6_every == ipv6_every - 1:
        v6 = str(ipaddress.IPv6Address(0x20010DB8 << 96 | (index + 1)))
        ip = str(ipaddress.IPv4Address(index + 1))  # Qualys's IPv4 placeholder for a mapped IPv6 host
    findings = []
    for _ in range(vulns_per_host):
        qid = qids[rng.randrange(len(qids))]
        kind = rng.choices(("Vuln", "Practice", "Ig"), (70, 20, 10))[0]
        roll = rng.random()
        if roll < 0.55:
            port, proto = rng.choice(list(_SERVICES)), "tcp"
        elif roll < 0.7:
            port, proto = rng.choice((53, 123, 161, 500)), "udp"
        elif roll < 0.75:
            port, proto = None, "icmp"
        else:
            port, proto = None, None
        findings.append((qid, kind, port, proto, port in (443, 8443)))
    if index % 50 == 0 and findings:
        findings.append(findings[0])          # Qualys repeats a QID on a port now and then
    return ip, v6, _OS[rng.randrange(len(_OS))], findings


def _glossary_entry(qid: int, seed: int) -> dict:
    rng = random.Random(seed * 7_919 + qid)
    vendor, flaw = rng.choice(_VENDORS), rng.choice(_FLAWS)
    title = f'{vendor} "{flaw.title()}" Vulnerability, variant {qid}'
    cves = tuple(f"CVE-{rng.randint(2005, 2025)}-{rng.randint(1000, 49999)}" for _ in range(rng.choice((0, 0, 1, 2, 3))))
    bids = tuple(str(rng.randint(10000, 99999)) for _ in range(rng.choice((0, 0, 0, 1, 2))))
    return {"title": title, "severity": rng.randint(1, 5), "category": rng.choice(_CATEGORIES),
            "threat": (f"<P>The {vendor} service is affected by a {flaw} issue &quot;{qid}&quot;.<BR>"
                       f"An attacker&apos;s request can trigger it &amp; more.</P>"),
            "threat_text": f"The {vendor} service is affected by a {flaw} issue \"{qid}\". "
                           f"An attacker's request can trigger it & more.",
            "cve_ids": cves, "bugtraq_ids": bids}


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def generate_report(out: BinaryIO, *, hosts: int, vulns_per_host: int = 20, distinct_qids: int = 2000,
                    ipv6_every: int = 10, seed: int = 1, glossary_first: bool = False,
                    network: str = "10.0.0.0/8") -> None:
    """Write the report to ``out`` incrementally."""
    qids = _qids(distinct_qids)
    base = int(ipaddress.IPv4Network(network).network_address)
    write = out.write
    write(b'<?xml version="1.0" encoding="UTF-8" ?>\n'
          b'<!DOCTYPE ASSET_DATA_REPORT SYSTEM "https://qualysguard.qualys.com/asset_data_report.dtd">\n'
          b"<ASSET_DATA_REPORT>\n<HEADER>\n<COMPANY><![CDATA[Emulated Example Corp]]></COMPANY>\n"
          b"<USERNAME>emulator</USERNAME>\n<GENERATION_DATETIME>2026-01-01T00:00:00Z</GENERATION_DATETIME>\n"
          b"<TEMPLATE><![CDATA[Emulated Technical Report]]></TEMPLATE>\n<TARGET><USER_ASSET_GROUPS>"
          b"<ASSET_GROUP_TITLE><![CDATA[All]]></ASSET_GROUP_TITLE></USER_ASSET_GROUPS></TARGET>\n</HEADER>\n")
    used: set[int] = set()
    if glossary_first:
        used.update(qids)
        _write_glossary(write, sorted(used), seed)
    write(b"<HOST_LIST>\n")
    buffer: list[str] = []
    for index in range(hosts):
        ip, v6, os_text, findings = _host(index, seed, vulns_per_host, qids, ipv6_every, base)
        v6_attr = f' v6="{v6}"' if v6 else ""
        parts = [f'<HOST>\n<IP network_id="0"{v6_attr}>{ip}</IP>\n<TRACKING_METHOD>IP</TRACKING_METHOD>\n'
                 f"<DNS><![CDATA[host{index}.example.net]]></DNS>\n"
                 f"<OPERATING_SYSTEM>{_cdata(os_text)}</OPERATING_SYSTEM>\n<VULN_INFO_LIST>\n"]
        for qid, kind, port, proto, ssl in findings:
            used.add(qid)
            parts.append(f'<VULN_INFO>\n<QID id="qid_{qid}">{qid}</QID>\n<TYPE>{kind}</TYPE>\n')
            if port is not None:
                parts.append(f"<PORT>{port}</PORT>\n<SERVICE>{_SERVICES.get(port, 'unknown')}</SERVICE>\n")
            if proto is not None:
                parts.append(f"<PROTOCOL>{proto}</PROTOCOL>\n")
            parts.append(f"<SSL>{'true' if ssl else 'false'}</SSL>\n"
                         f'<RESULT format="table"><![CDATA[Port\tState\n{port or "-"}\topen]]></RESULT>\n'
                         f"<FIRST_FOUND>2025-11-02T03:14:09Z</FIRST_FOUND>\n<LAST_FOUND>2026-01-01T02:41:37Z</LAST_FOUND>\n"
                         f"<TIMES_FOUND>3</TIMES_FOUND>\n")
            if kind != "Ig":
                parts.append("<VULN_STATUS>Active</VULN_STATUS>\n")
            parts.append("</VULN_INFO>\n")
        parts.append("</VULN_INFO_LIST>\n</HOST>\n")
        buffer.append("".join(parts))
        if len(buffer) >= 256:
            write("".join(buffer).encode())
            buffer.clear()
    write("".join(buffer).encode())
    write(b"</HOST_LIST>\n")
    if not glossary_first:
        _write_glossary(write, sorted(used), seed)
    write(b"<APPENDICES>\n<TEMPLATE_DETAILS><FILTER_SUMMARY><![CDATA[Status:New, Active, Re-Opened]]>"
          b"</FILTER_SUMMARY></TEMPLATE_DETAILS>\n</APPENDICES>\n</ASSET_DATA_REPORT>\n"
          b"<!-- CONFIDENTIAL AND PROPRIETARY INFORMATION. Generated by the qualys-connector emulator. //-->\n")


def _write_glossary(write, qids: list[int], seed: int) -> None:
    if not qids:
        return
    write(b"<GLOSSARY>\n<VULN_DETAILS_LIST>\n")
    for qid in qids:
        g = _glossary_entry(qid, seed)
        parts = [f'<VULN_DETAILS id="qid_{qid}">\n<QID id="qid_{qid}">{qid}</QID>\n'
                 f"<TITLE>{_cdata(g['title'].replace(chr(34), '&quot;'))}</TITLE>\n"
                 f"<SEVERITY>{g['severity']}</SEVERITY>\n<CATEGORY>{g['category']}</CATEGORY>\n"
                 f"<THREAT>{_cdata(g['threat'])}</THREAT>\n<IMPACT><![CDATA[Varies.]]></IMPACT>\n"
                 f"<SOLUTION><![CDATA[<P>Update the software.</P>]]></SOLUTION>\n<PCI_FLAG>1</PCI_FLAG>\n"
                 f"<LAST_UPDATE>2025-06-01T00:00:00Z</LAST_UPDATE>\n"]
        if g["cve_ids"]:
            parts.append("<CVE_ID_LIST>" + "".join(
                f"<CVE_ID><ID>{_cdata(c)}</ID><URL>{_cdata('https://cve.mitre.org/cgi-bin/cvename.cgi?name=' + c)}</URL></CVE_ID>"
                for c in g["cve_ids"]) + "</CVE_ID_LIST>\n")
        if g["bugtraq_ids"]:
            parts.append("<BUGTRAQ_ID_LIST>" + "".join(
                f"<BUGTRAQ_ID><ID>{_cdata(b)}</ID><URL>{_cdata('http://www.securityfocus.com/bid/' + b)}</URL></BUGTRAQ_ID>"
                for b in g["bugtraq_ids"]) + "</BUGTRAQ_ID_LIST>\n")
        parts.append("</VULN_DETAILS>\n")
        write("".join(parts).encode())
    write(b"</VULN_DETAILS_LIST>\n</GLOSSARY>\n")


def expected_findings(*, hosts: int, vulns_per_host: int = 20, distinct_qids: int = 2000, ipv6_every: int = 10,
                      seed: int = 1, network: str = "10.0.0.0/8", **_ignored) -> Iterator[tuple]:
    """(fmc_ip, qid, port, protocol, type) for every distinct (qid, port, protocol) of every host."""
    qids = _qids(distinct_qids)
    base = int(ipaddress.IPv4Network(network).network_address)
    for index in range(hosts):
        ip, v6, _, findings = _host(index, seed, vulns_per_host, qids, ipv6_every, base)
        seen = set()
        for qid, kind, port, proto, _ in findings:
            if (qid, port, proto) in seen:
                continue
            seen.add((qid, port, proto))
            yield (v6 or ip, qid, port, proto, kind)


def expected_glossary(*, seed: int = 1, qids=None, distinct_qids: int = 2000, **_ignored) -> dict[int, dict]:
    """Title (plain text), severity, CVE and Bugtraq ids, plain threat text per QID."""
    return {qid: _glossary_entry(qid, seed) for qid in (qids if qids is not None else _qids(distinct_qids))}
