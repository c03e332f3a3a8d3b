"""Deterministic, streaming generator of realistic ASSET_DATA_REPORT XML.

It writes the shape Qualys writes (docs/qualys-api.md §3, tests/data/sample_asset_data_report.xml):
DOCTYPE with an external DTD URL, HEADER, RISK_SCORE_PER_HOST (one HOSTS per host), HOST_LIST,
GLOSSARY *after* the hosts (or first, on request), APPENDICES and a comment after the root.
Hosts carry what real ones carry besides the fields the connector reads (HOST_ID, ASSET_TAGS,
NETBIOS, QG_HOSTID, ASSET_GROUPS); findings are mostly ``Ig`` (in a real report of a demo
subscription 209 of 301 are), whose RESULT is often a long TSV table and which have no
VULN_STATUS; the others carry CVSS_FINAL/CVSS3_FINAL; glossary entries have CVSS scores,
CORRELATION and vendor references. So benchmarks on generated reports cost what real ones do.

Every host is made from its own seeded random generator, so ``expected_findings`` can say what
the report holds without parsing XML — an independent answer for the "nothing lost" tests —
and a million hosts cost no memory (only the set of QIDs used is kept, for the glossary).
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


# RESULT texts: Ig findings mostly hold long TSV tables (open ports, installed software,
# certificates...), the others a line or two. Built once; each finding picks one.
_TABLE_KINDS = [("Port\tService\tDescription\tProduct", lambda i: f"{1000 + 7 * i}\tunknown\tservice {i}\tdaemon/{i}.{i % 7}"),
                ("Package\tInstalled Version", lambda i: f"lib{chr(97 + i % 26)}{i}-common\t{i % 9}.{i % 13}.{i}-1ubuntu{i % 4}"),
                ("NAME\tVALUE", lambda i: f"HKLM\\SOFTWARE\\Vendor{i}\\Key\t0x{i * 2654435761 % 2**32:08x}"),
                ("CIPHER\tKEY-EXCHANGE\tAUTHENTICATION\tMAC\tENCRYPTION(KEY-STRENGTH)\tGRADE",
                 lambda i: f"ECDHE-RSA-AES{128 << i % 2}-GCM-SHA{256 + 128 * (i % 2)}\tECDH\tRSA\tAEAD\tAESGCM({128 << i % 2})\tA")]
_RESULT_COUNT = 64


def _results() -> list[str]:
    """RESULT elements: the first half long tables (for Ig), the second half short texts."""
    out = []
    for k in range(_RESULT_COUNT // 2):
        head, row = _TABLE_KINDS[k % len(_TABLE_KINDS)]
        rows = 2 + (k * 37) % 30                      # 2..31 rows, ~16 on average
        out.append('<RESULT format="table">' + _cdata("\n".join([head] + [row(i) for i in range(rows)])) + "</RESULT>")
    for k in range(_RESULT_COUNT // 2):
        out.append("<RESULT>" + _cdata(f"Vulnerable version detected: {k}.{k % 5}.{k * 3} &lt; {k}.{k % 5 + 1}.0"
                                       + ("\nPath: /usr/lib/x86_64-linux-gnu/" + "lib" * (k % 4)) * (k % 3)) + "</RESULT>")
    return out


# Where a QID is usually found: a TCP or UDP service, ICMP, or the host itself (no port).
_HOME = [(port, "tcp") for port in _SERVICES] + [(53, "udp"), (123, "udp"), (161, "udp"), (None, "icmp")] + [(None, None)] * 6


def _qids(distinct_qids: int) -> list[int]:
    return [10000 + 37 * k for k in range(distinct_qids)]


def _host(index: int, seed: int, vulns_per_host: int, qids: list[int], ipv6_every: int, base: int):
    """(ip text, v6 or None, os, findings[(qid, type, port, proto, ssl, result)]) for host ``index``."""
    rng = random.Random(seed * 1_000_003 + index)
    ip = str(ipaddress.IPv4Address(base + index + 1))
    v6 = None
    if ipv6_every and index % ipv6_every == ipv6_every - 1:
        v6 = str(ipaddress.IPv6Address(0x20010DB8 << 96 | (index + 1)))
        ip = str(ipaddress.IPv4Address(index + 1))  # Qualys's IPv4 placeholder for a mapped IPv6 host
    findings = []
    ig_pool = len(qids) // 13 + 1      # information gathered: a few common QIDs, on nearly every host
    for _ in range(vulns_per_host):
        kind = rng.choices(("Vuln", "Practice", "Ig"), (21, 10, 69))[0]
        qid = qids[rng.randrange(ig_pool if kind == "Ig" else len(qids))]
        roll = rng.random()
        if roll < 0.8:                 # a QID is mostly found on the service it is about,
            port, proto = _HOME[qid % len(_HOME)]
        else:                          # else on one of a few others (not on any port at all)
            port, proto = _HOME[(qid // 3 + 1 + int(roll * 15) % 3) % len(_HOME)]
        result = rng.randrange(_RESULT_COUNT // 2) + (0 if kind == "Ig" else _RESULT_COUNT // 2)
        findings.append((qid, kind, port, proto, port in (443, 8443), result))
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
    results = _results()
    write(b'<?xml version="1.0" encoding="UTF-8" ?>\n'
          b'<!DOCTYPE ASSET_DATA_REPORT SYSTEM "https://qualysguard.qualys.com/asset_data_report.dtd">\n'
          b"<ASSET_DATA_REPORT>\n<HEADER>\n<COMPANY><![CDATA[Emulated Example Corp]]></COMPANY>\n"
          b"<USERNAME>emulator</USERNAME>\n<GENERATION_DATETIME>2026-01-01T00:00:00Z</GENERATION_DATETIME>\n"
          b"<TEMPLATE><![CDATA[Emulated Technical Report]]></TEMPLATE>\n<TARGET><USER_ASSET_GROUPS>"
          b"<ASSET_GROUP_TITLE><![CDATA[All]]></ASSET_GROUP_TITLE></USER_ASSET_GROUPS></TARGET>\n"
          + f"<RISK_SCORE_SUMMARY><TOTAL_VULNERABILITIES>{hosts * vulns_per_host + (hosts + 49) // 50}"
            f"</TOTAL_VULNERABILITIES><AVG_SECURITY_RISK>2.9</AVG_SECURITY_RISK>"
            f"<BUSINESS_RISK>21/100</BUSINESS_RISK></RISK_SCORE_SUMMARY>\n</HEADER>\n".encode())
    _write_risk_scores(write, hosts, vulns_per_host, ipv6_every, base)
    used: set[int] = set()
    if glossary_first:
        used.update(qids)
        _write_glossary(write, sorted(used), seed)
    write(b"<HOST_LIST>\n")
    buffer: list[str] = []
    for index in range(hosts):
        ip, v6, os_text, findings = _host(index, seed, vulns_per_host, qids, ipv6_every, base)
        v6_attr = f' v6="{v6}"' if v6 else ""
        netbios = f"<NETBIOS><![CDATA[WIN-{index:07X}]]></NETBIOS>\n" if "Windows" in os_text else ""
        parts = [f'<HOST>\n<IP network_id="0"{v6_attr}>{ip}</IP>\n<TRACKING_METHOD>IP</TRACKING_METHOD>\n'
                 f"<HOST_ID>{100000 + index}</HOST_ID>\n"
                 f"<ASSET_TAGS>\n<ASSET_TAG><![CDATA[Cloud Agent]]></ASSET_TAG>\n"
                 f"<ASSET_TAG><![CDATA[Site {index % 17}]]></ASSET_TAG>\n</ASSET_TAGS>\n"
                 f"<DNS><![CDATA[host{index}.example.net]]></DNS>\n{netbios}"
                 f"<QG_HOSTID><![CDATA[{seed:08x}-{index >> 16 & 0xffff:04x}-4{index & 0xfff:03x}-8000-{index:012x}]]></QG_HOSTID>\n"
                 f"<OPERATING_SYSTEM>{_cdata(os_text)}</OPERATING_SYSTEM>\n"
                 f"<ASSET_GROUPS><ASSET_GROUP_TITLE><![CDATA[All]]></ASSET_GROUP_TITLE></ASSET_GROUPS>\n"
                 f"<VULN_INFO_LIST>\n"]
        for qid, kind, port, proto, ssl, result in findings:
            used.add(qid)
            parts.append(f'<VULN_INFO>\n<QID id="qid_{qid}">{qid}</QID>\n<TYPE>{kind}</TYPE>\n')
            if port is not None:
                parts.append(f"<PORT>{port}</PORT>\n<SERVICE>{_SERVICES.get(port, 'unknown')}</SERVICE>\n")
            if proto is not None:
                parts.append(f"<PROTOCOL>{proto}</PROTOCOL>\n")
            parts.append(f"<SSL>{'true' if ssl else 'false'}</SSL>\n{results[result]}\n"
                         f"<FIRST_FOUND>2025-11-02T03:14:09Z</FIRST_FOUND>\n<LAST_FOUND>2026-01-01T02:41:37Z</LAST_FOUND>\n"
                         f"<TIMES_FOUND>3</TIMES_FOUND>\n")
            if kind != "Ig":   # Ig findings have no VULN_STATUS (the DTD says so) and no CVSS
                parts.append(f"<VULN_STATUS>Active</VULN_STATUS>\n<CVSS_FINAL>{qid % 100 / 10:.1f}</CVSS_FINAL>\n"
                             f"<CVSS3_FINAL>{qid % 97 / 9.7:.1f}</CVSS3_FINAL>\n")
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


def _write_risk_scores(write, hosts: int, vulns_per_host: int, ipv6_every: int, base: int) -> None:
    """RISK_SCORE_PER_HOST: one HOSTS per host, written before the hosts without generating them."""
    write(b"<RISK_SCORE_PER_HOST>\n")
    buffer = []
    for index in range(hosts):
        v6 = ipv6_every and index % ipv6_every == ipv6_every - 1
        ip = ipaddress.IPv4Address((0 if v6 else base) + index + 1)
        buffer.append(f"<HOSTS>\n<IP_ADDRESS>{ip}</IP_ADDRESS>\n<TOTAL_VULNERABILITIES>"
                      f"{vulns_per_host + (index % 50 == 0)}</TOTAL_VULNERABILITIES>\n"
                      f"<SECURITY_RISK>{index % 50 / 10:.1f}</SECURITY_RISK>\n</HOSTS>\n")
        if len(buffer) >= 1024:
            write("".join(buffer).encode())
            buffer.clear()
    write("".join(buffer).encode())
    write(b"</RISK_SCORE_PER_HOST>\n")


def _glossary_extras(qid: int, seed: int, cves: tuple) -> str:
    """What the connector does not read: CORRELATION, CVSS scores, vendor references."""
    rng = random.Random(seed * 104_729 + qid)
    correlation = ""
    if rng.random() < 0.2:
        ref = cves[0] if cves else f"QID-{qid}"
        correlation = ("<CORRELATION><EXPLOITABILITY><EXPLT_SRC><SRC_NAME><![CDATA[The Exploit-DB]]></SRC_NAME>"
                       f"<EXPLT_LIST><EXPLT><REF>{_cdata(ref)}</REF><DESC>{_cdata(f'Proof of concept for {ref}')}</DESC>"
                       f"<LINK>{_cdata(f'http://www.exploit-db.com/exploits/{qid}')}</LINK></EXPLT></EXPLT_LIST>"
                       "</EXPLT_SRC></EXPLOITABILITY></CORRELATION>\n")
    base, temporal = rng.randint(0, 100) / 10, rng.randint(0, 100) / 10
    cvss = (f"<CVSS_SCORE><CVSS_BASE>{base:.1f} (AV:N/AC:M/Au:N/C:P/I:N/A:N)</CVSS_BASE>"
            f"<CVSS_TEMPORAL>{temporal:.1f} (E:U/RL:OF/RC:C)</CVSS_TEMPORAL></CVSS_SCORE>\n")
    if rng.random() < 0.6:
        cvss += (f"<CVSS3_SCORE><CVSS3_BASE>{base:.1f} (AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:N)</CVSS3_BASE>"
                 f"<CVSS3_TEMPORAL>{temporal:.1f} (E:U/RL:O/RC:C)</CVSS3_TEMPORAL></CVSS3_SCORE>\n")
    if rng.random() < 0.3:
        cvss += (f"<VENDOR_REFERENCE_LIST><VENDOR_REFERENCE><ID>{_cdata(f'VENDOR-{qid}')}</ID>"
                 f"<URL>{_cdata(f'https://vendor.example/advisories/{qid}')}</URL></VENDOR_REFERENCE>"
                 "</VENDOR_REFERENCE_LIST>\n")
    return correlation, cvss


def _write_glossary(write, qids: list[int], seed: int) -> None:
    if not qids:
        return
    write(b"<GLOSSARY>\n<VULN_DETAILS_LIST>\n")
    for qid in qids:
        g = _glossary_entry(qid, seed)
        correlation, cvss = _glossary_extras(qid, seed, g["cve_ids"])
        parts = [f'<VULN_DETAILS id="qid_{qid}">\n<QID id="qid_{qid}">{qid}</QID>\n'
                 f"<TITLE>{_cdata(g['title'].replace(chr(34), '&quot;'))}</TITLE>\n"
                 f"<SEVERITY>{g['severity']}</SEVERITY>\n<CATEGORY>{g['category']}</CATEGORY>\n"
                 f"<THREAT>{_cdata(g['threat'])}</THREAT>\n<IMPACT><![CDATA[Varies.]]></IMPACT>\n"
                 f"<SOLUTION><![CDATA[<P>Update the software.</P>]]></SOLUTION>\n{correlation}<PCI_FLAG>1</PCI_FLAG>\n"
                 f"<LAST_UPDATE>2025-06-01T00:00:00Z</LAST_UPDATE>\n{cvss}"]
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
                      seed: int = 1, network: str = "10.0.0.0/8", types=None, **_ignored) -> Iterator[tuple]:
    """(fmc_ip, qid, port, protocol, type) for every distinct (qid, port, protocol) of every host.

    ``types`` (report TYPEs, e.g. ``("Vuln", "Practice")``) keeps only those, chosen before the
    first of a (qid, port, protocol) wins, as a reader filtering by ``vuln_types`` does: a QID the
    generator made both ``Ig`` and ``Practice`` on one host is then the ``Practice`` finding."""
    qids = _qids(distinct_qids)
    base = int(ipaddress.IPv4Network(network).network_address)
    for index in range(hosts):
        ip, v6, _, findings = _host(index, seed, vulns_per_host, qids, ipv6_every, base)
        seen = set()
        for qid, kind, port, proto, *_ in findings:
            if (types is not None and kind not in types) or (qid, port, proto) in seen:
                continue
            seen.add((qid, port, proto))
            yield (v6 or ip, qid, port, proto, kind)


def expected_glossary(*, seed: int = 1, qids=None, distinct_qids: int = 2000, **_ignored) -> dict[int, dict]:
    """Title (plain text), severity, CVE and Bugtraq ids, plain threat text per QID."""
    return {qid: _glossary_entry(qid, seed) for qid in (qids if qids is not None else _qids(distinct_qids))}
