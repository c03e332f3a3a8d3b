"""ASSET_DATA_REPORT parsing: what comes out of well-formed reports (docs/qualys-api.md §3, README "What the QualysGuard plugin sends").

Expectations are written from reading the XML fixtures by hand, not from running the parser.
Hostile and broken input: test_report_hostile.py; size and memory: test_report_scale.py.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from qualys_connector.records import Finding, Vuln
from qualys_connector.report import PROGRESS_EVERY, html_to_text, open_report

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "sample_asset_data_report.xml"
ODD = DATA / "report_odd.xml"
ALL = ("Vuln", "Practice", "Ig")


def parse(path, **kw):
    """[(ip, [(qid, type, port, protocol), ...]), ...] and the (closed) report."""
    with open_report(str(path), **kw) as report:
        hosts = [(h.ip, [(f.qid, f.type, f.port, f.protocol) for f in h.findings]) for h in report.hosts()]
    return hosts, report


# ---------------------------------------------------------------- the sample report, by hand
SAMPLE_ALL = [
    ("10.20.30.41", [(6, "Ig", None, None), (82003, "Vuln", None, None), (38601, "Vuln", 443, "tcp"),
                     (370876, "Practice", None, None)]),
    ("10.20.30.57", [(45038, "Ig", None, None), (121695, "Vuln", 123, "udp")]),
    ("2001:db8:85a3::8a2e:370:84", [(6, "Ig", None, None), (38628, "Vuln", 8443, "tcp"),
                                    (121695, "Vuln", 123, "udp")]),
]

SAMPLE_GLOSSARY = {
    6: Vuln(6, "DNS Host Name", 1, "Information gathering",
            "Reports the host name that a DNS lookup returned for the scanned address."),
    38601: Vuln(38601, "SSL/TLS use of weak RC4(Arcfour) cipher", 3, "General remote services",
                "The service still negotiates RC4 cipher suites. Statistical biases in the RC4 keystream let an "
                "observer who collects many encryptions of the same secret recover parts of the plaintext.",
                ("CVE-2013-2566", "CVE-2015-2808"), ("58796", "73684")),
    38628: Vuln(38628, "SSL/TLS Server supports TLSv1.0", 3, "General remote services",
                "The endpoint accepts connections that negotiate TLS 1.0, a protocol version that industry "
                "guidance has retired."),
    45038: Vuln(45038, "Host Scan Time - Scanner", 1, "Information gathering",
                "Shows how long the scanning engine spent assessing this single host."),
    82003: Vuln(82003, "ICMP Timestamp Request", 1, "TCP/IP",
                "The host answers ICMP timestamp requests (type 13) with its current clock value.",
                ("CVE-1999-0524",)),
    121695: Vuln(121695, 'NTP "monlist" Feature Denial of Service Vulnerability', 3, "Local",
                 'The ntpd daemon answers mode 7 MON_GETLIST ("monlist") requests. Because the reply is far '
                 "larger than the request, spoofed queries can be used to reflect and amplify traffic toward "
                 "a third party.", ("CVE-2013-5211",), ("64692",)),
    370876: Vuln(370876, "AMD Processors Multiple Security Vulnerabilities "
                         "(RYZENFALL/MASTERKEY/CHIMERA-FW/FALLOUT)", 4, "Local",
                 "Several flaws in the AMD Secure Processor and chipset firmware were disclosed in 2018. This "
                 "is a potential detection: it is based on the processor model string read from the registry.",
                 ("CVE-2018-8930", "CVE-2018-8931", "CVE-2018-8936")),
}


def test_the_sample_yields_every_host_and_finding_in_report_order():
    hosts, report = parse(SAMPLE, vuln_types=ALL)
    assert hosts == SAMPLE_ALL
    s = report.stats
    assert (s.hosts_total, s.hosts_kept, s.findings_total, s.findings_kept) == (3, 3, 9, 9)
    assert (s.findings_filtered, s.duplicates_dropped, s.qids_without_glossary, s.glossary_entries) == (0, 0, 0, 7)


def test_the_sample_glossary_is_plain_one_line_text():
    _, report = parse(SAMPLE)
    assert report.glossary == SAMPLE_GLOSSARY


def test_the_sample_hosts_carry_os_and_names():
    with open_report(str(SAMPLE)) as report:
        hosts = list(report.hosts())
    assert [(h.os, h.dns, h.netbios) for h in hosts] == [
        ("Windows Server 2016 Standard 64 bit Edition Version 1607", "web01.dmz.example.net", "WEB01"),
        ("Linux 3.x", "ntp02.dmz.example.net", None),
        ("Ubuntu / Linux 4.x", "api6.dmz.example.net", None),
    ]


def test_default_types_are_vuln_and_practice():
    hosts, report = parse(SAMPLE)
    assert hosts == [(ip, [f for f in fs if f[1] != "Ig"]) for ip, fs in SAMPLE_ALL]
    assert report.stats.findings_filtered_type == 3 and report.stats.findings_filtered == 3


@pytest.mark.parametrize("types,expected_qids", [
    (("Ig",), [6, 45038, 6]),
    (("practice",), [370876]),             # the config's spelling need not match the report's case
    (("Vuln",), [82003, 38601, 121695, 38628, 121695]),
])
def test_vuln_types_filter(types, expected_qids):
    hosts, _ = parse(SAMPLE, vuln_types=types)
    assert [q for _, fs in hosts for q, *_ in fs] == expected_qids
    assert [ip for ip, _ in hosts] == [ip for ip, _ in SAMPLE_ALL]   # hosts stay, even when emptied


@pytest.mark.parametrize("minimum,expected_qids", [
    (1, [82003, 38601, 370876, 121695, 38628, 121695]),
    (3, [38601, 370876, 121695, 38628, 121695]),
    (4, [370876]),
    (5, []),
])
def test_min_severity_uses_the_glossary_that_comes_after_the_hosts(minimum, expected_qids):
    hosts, report = parse(SAMPLE, min_severity=minimum)
    assert [q for _, fs in hosts for q, *_ in fs] == expected_qids
    assert report.stats.findings_kept == len(expected_qids)
    assert report.stats.findings_filtered_severity == 6 - len(expected_qids)


def glossary_moved_first(tmp_path) -> Path:
    text = SAMPLE.read_text()
    glossary = re.search(r"\n\s*<GLOSSARY>.*</GLOSSARY>", text, re.S).group(0)
    text = text.replace(glossary, "").replace("<HOST_LIST>", glossary.strip() + "\n  <HOST_LIST>")
    path = tmp_path / "glossary_first.xml"
    path.write_text(text)
    assert text.index("<GLOSSARY>") < text.index("<HOST_LIST>")
    return path


@pytest.mark.parametrize("minimum", [1, 2, 3, 4])
def test_glossary_first_or_last_gives_the_same_result(tmp_path, minimum):
    last, report_last = parse(SAMPLE, vuln_types=ALL, min_severity=minimum)
    first, report_first = parse(glossary_moved_first(tmp_path), vuln_types=ALL, min_severity=minimum)
    assert first == last and report_first.glossary == report_last.glossary
    assert report_first.stats == report_last.stats


def test_include_is_asked_with_the_address_the_fmc_will_see():
    seen = []
    hosts, report = parse(SAMPLE, include=lambda ip: seen.append(ip) or ip.startswith("2001:"))
    assert seen == ["10.20.30.41", "10.20.30.57", "2001:db8:85a3::8a2e:370:84"]
    assert [ip for ip, _ in hosts] == ["2001:db8:85a3::8a2e:370:84"]
    s = report.stats
    assert (s.hosts_kept, s.hosts_outside_ranges, s.findings_outside_ranges) == (1, 2, 6)


def test_include_with_ip_ranges():
    from qualys_connector.ipranges import IPRanges
    ranges = IPRanges.parse("10.20.30.50-10.20.30.60, 2001:db8::/32")
    hosts, _ = parse(SAMPLE, include=ranges.__contains__)
    assert [ip for ip, _ in hosts] == ["10.20.30.57", "2001:db8:85a3::8a2e:370:84"]


def test_duplicates_are_dropped_per_qid_port_protocol(tmp_path):
    text = SAMPLE.read_text()
    block = re.search(r"<VULN_INFO>\s*<QID id=\"qid_38601\">.*?</VULN_INFO>", text, re.S).group(0)
    other_port = block.replace("<PORT>443</PORT>", "<PORT>8443</PORT>")
    path = tmp_path / "dup.xml"
    path.write_text(text.replace(block, block + block + other_port + block))
    hosts, report = parse(path)
    assert hosts[0][1] == [(82003, "Vuln", None, None), (38601, "Vuln", 443, "tcp"),
                           (38601, "Vuln", 8443, "tcp"), (370876, "Practice", None, None)]
    assert report.stats.duplicates_dropped == 2


def test_an_empty_report_is_not_an_error():
    hosts, report = parse(DATA / "report_empty.xml")
    assert hosts == [] and report.glossary == {} and report.stats.hosts_total == 0


# ---------------------------------------------------------------- the odd fixture, by hand
def test_odd_report_hosts_and_findings():
    hosts, report = parse(ODD, vuln_types=ALL)
    assert hosts == [
        # PORT " 80 " and PROTOCOL "TCP" normalised; the SSL twin on 80/tcp is a duplicate; the
        # QID missing from the glossary (999) is kept; the non-numeric QID is skipped.
        ("192.0.2.1", [(100, "Vuln", 80, "tcp"), (100, "Vuln", 8080, "tcp"), (200, "Practice", None, "icmp"),
                       (999, "Vuln", 22, "tcp"), (300, "Ig", None, None)]),
        # 192.0.2.999 (bad address) and the HOST holding an ERROR are skipped
        ("2001:db8::1", []),                                  # IPv6 literal text, normalised
        ("2001:db8::2", [(200, "Vuln", None, "udp"), (100, "Vuln", 443, "tcp")]),   # PORT 99999 dropped
    ]


def test_odd_report_counts_add_up():
    _, report = parse(ODD, vuln_types=ALL)
    s = report.stats
    assert (s.hosts_total, s.hosts_kept, s.hosts_bad_address, s.hosts_with_error) == (5, 3, 1, 1)
    assert (s.findings_total, s.findings_kept, s.duplicates_dropped, s.findings_invalid) == (10, 7, 1, 2)
    assert (s.qids_without_glossary, s.glossary_entries, s.glossary_invalid) == (1, 3, 1)
    assert_invariants(s)


def test_odd_report_glossary_text_cleaning():
    _, report = parse(ODD)
    assert report.glossary[100] == Vuln(
        100, 'Title with bold & "quotes" on two lines', 2, "Web server",
        "First paragraph <b> stays text. Second line 'quoted'; a < b holds.",
        ("CVE-2020-0001", "CVE-2020-0002", "CVE-2020-0003"), ("12345",))
    assert report.glossary[300].title == "QID only in the id attribute"   # QID from VULN_DETAILS/@id
    assert set(report.glossary) == {100, 200, 300}


def test_odd_report_host_text_fields_are_one_line():
    with open_report(str(ODD)) as report:
        first = next(report.hosts())
    assert first.os == "Linux 5.x & co"


def test_a_qid_missing_from_the_glossary_is_kept_with_a_placeholder_title():
    with open_report(str(ODD)) as report:
        findings = [f for h in report.hosts() for f in h.findings]
        assert Finding(999, "Vuln", 22, "tcp") in findings
        assert 999 not in report.glossary
        assert report.vuln(999) == Vuln(999, "QID 999")
        assert report.vuln(100) is report.glossary[100]


def test_min_severity_on_the_odd_report_keeps_unknown_qids():
    hosts, _ = parse(ODD, vuln_types=ALL, min_severity=3)
    assert hosts[0][1] == [(200, "Practice", None, "icmp"), (999, "Vuln", 22, "tcp")]


def assert_invariants(s):
    assert s.hosts_total == s.hosts_kept + s.hosts_outside_ranges + s.hosts_bad_address + s.hosts_with_error
    assert s.findings_total == (s.findings_kept + s.findings_filtered + s.duplicates_dropped
                                + s.findings_outside_ranges + s.findings_invalid)
    assert s.findings_filtered == s.findings_filtered_type + s.findings_filtered_severity


@pytest.mark.parametrize("path", [SAMPLE, ODD, DATA / "report_empty.xml"])
@pytest.mark.parametrize("minimum", [1, 3])
def test_stats_invariants(path, minimum):
    _, report = parse(path, min_severity=minimum, include=lambda ip: not ip.endswith(("57", ".1")))
    assert_invariants(report.stats)


def test_an_excluded_host_counts_only_its_real_findings():
    _, report = parse(ODD, include=lambda ip: ip != "192.0.2.1")   # its list holds one foreign element
    assert report.stats.findings_outside_ranges == 7 and report.stats.findings_total == 10


# ---------------------------------------------------------------- the Report object
def test_hosts_can_be_read_twice_and_not_after_close():
    report = open_report(str(SAMPLE))
    with report:
        assert list(report.hosts()) == list(report.hosts())
    with pytest.raises(ValueError):
        list(report.hosts())


def test_findings_are_shared_immutable_records():
    with open_report(str(SAMPLE), vuln_types=ALL) as report:
        hosts = list(report.hosts())
    assert hosts[1].findings[1] is hosts[2].findings[2]        # 121695 123/udp on two hosts
    assert hosts[0].findings is not hosts[2].findings


def test_progress_is_reported_every_so_many_hosts(tmp_path):
    count = PROGRESS_EVERY * 2 + 7
    path = tmp_path / "many.xml"
    host = "<HOST><IP>10.{a}.{b}.{c}</IP><TRACKING_METHOD>IP</TRACKING_METHOD></HOST>\n"
    with open(path, "w") as out:
        out.write("<ASSET_DATA_REPORT><HEADER/><HOST_LIST>\n")
        for i in range(count):
            out.write(host.format(a=i >> 16, b=(i >> 8) & 255, c=i & 255))
        out.write("</HOST_LIST></ASSET_DATA_REPORT>\n")
    calls = []
    with open_report(str(path), progress=calls.append) as report:
        assert report.stats.hosts_kept == count
    assert calls == [PROGRESS_EVERY, PROGRESS_EVERY * 2]


@pytest.mark.parametrize("raw,clean", [
    ("<P>a<BR>b</P>", "a b"),
    ("&quot;x&quot; &amp; y&apos;s", "\"x\" & y's"),
    ("  many\n\n spaces\t", "many spaces"),
    ("&lt;script&gt;", "<script>"),
    ("1 < 2 and 3 > 2", "1 < 2 and 3 > 2"),
    (None, ""),
])
def test_html_to_text(raw, clean):
    assert html_to_text(raw) == clean


def test_open_report_has_read_everything_before_it_returns(tmp_path):
    """The XML is not read again: hosts() works from the spool even when the file is gone."""
    path = tmp_path / "gone.xml"
    path.write_bytes(SAMPLE.read_bytes())
    with open_report(str(path), vuln_types=ALL) as report:
        assert report.stats.hosts_total == 3 and report.stats.findings_kept == 9 and len(report.glossary) == 7
        path.unlink()
        assert [(h.ip, [(f.qid, f.type, f.port, f.protocol) for f in h.findings]) for h in report.hosts()] == SAMPLE_ALL


# ---------------------------------------------------------------- findings as the FMC sees them
@pytest.mark.parametrize("port, protocol, target", [
    (443, "tcp", (443, "tcp")), (53, "udp", (53, "udp")),
    (None, "icmp", (None, None)), (None, None, (None, None)),   # icmp and host level look alike
    (0, "tcp", (None, None)), (None, "tcp", (None, None)), (80, "sctp", (None, None)),
])
def test_a_findings_target_is_port_and_protocol_together_or_neither(port, protocol, target):
    finding = Finding(7, "Vuln", port, protocol)
    assert finding.target == target and finding.fmc_key == (7, *target)


def test_distinct_by_the_fmc_key_keeps_one_of_an_icmp_and_a_host_level_twin(tmp_path):
    from operator import attrgetter

    from qualys_connector.emulators.qualys.reportgen import expected_findings, generate_report
    shape = dict(hosts=400, vulns_per_host=20, distinct_qids=10, seed=11)   # holds icmp/host-level twins
    path = tmp_path / "twins.xml"
    with open(path, "wb") as out:
        generate_report(out, **shape)
    # Independently: the generator's distinct (qid, port, protocol), then icmp folded into host level.
    want, seen = [], set()
    for ip, qid, port, proto, kind in expected_findings(**shape):
        key = (ip, qid) + ((port, proto) if proto in ("tcp", "udp") and port else (None, None))
        if key not in seen:
            seen.add(key)
            want.append((ip, qid, port, proto, kind))
    assert len(want) < len(list(expected_findings(**shape)))      # the shape does hold twins
    with open_report(str(path), vuln_types=ALL, distinct_by=attrgetter("fmc_key")) as report:
        got = [(h.ip, f.qid, f.port, f.protocol, f.type) for h in report.hosts() for f in h.findings]
        stats = report.stats
    assert got == want
    assert_invariants(stats)
