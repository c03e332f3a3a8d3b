"""What the reader takes from a HOST, whatever else real reports put around it.

Real reports carry much the connector never reads (HOST_ID, ASSET_TAGS, QG_HOSTID, long RESULT
tables, CVSS_FINAL/CVSS3_FINAL, glossary CVSS and CORRELATION); the reader walks past it in C.
A list that is not plain (a child that is no VULN_INFO) or fields out of the DTD's order are
read child by child and give the same answer. Expectations are written by hand.
"""
from __future__ import annotations

import ipaddress
from collections import Counter

import pytest
from lxml import etree

from qualys_connector.emulators.qualys.reportgen import expected_findings, generate_report
from qualys_connector.report import open_report
from qualys_connector.report.hosts import canonical_address

ALL = ("Vuln", "Practice", "Ig")
TABLE = "Package\tInstalled Version\n" + "".join(f"lib{i}\t1.{i}\n" for i in range(300))

REAL_SHAPED_HOST = f"""
<HOST>
  <IP network_id="0">10.1.2.3</IP>
  <TRACKING_METHOD>AGENT</TRACKING_METHOD>
  <HOST_ID>4711</HOST_ID>
  <ASSET_TAGS><ASSET_TAG><![CDATA[Cloud Agent]]></ASSET_TAG></ASSET_TAGS>
  <DNS><![CDATA[db1.example.net]]></DNS>
  <NETBIOS><![CDATA[DB1]]></NETBIOS>
  <QG_HOSTID><![CDATA[0f6e1c7a-2b4d-4c1e-9a6f-0123456789ab]]></QG_HOSTID>
  <OPERATING_SYSTEM><![CDATA[Windows Server 2019]]></OPERATING_SYSTEM>
  <ASSET_GROUPS><ASSET_GROUP_TITLE><![CDATA[All]]></ASSET_GROUP_TITLE></ASSET_GROUPS>
  <VULN_INFO_LIST>
    <VULN_INFO>
      <QID id="qid_45141">45141</QID><TYPE>Ig</TYPE><SSL>false</SSL>
      <RESULT format="table"><![CDATA[{TABLE}]]></RESULT>
      <FIRST_FOUND>2024-01-01T00:00:00Z</FIRST_FOUND><LAST_FOUND>2024-05-01T00:00:00Z</LAST_FOUND>
      <TIMES_FOUND>9</TIMES_FOUND>
    </VULN_INFO>
    <VULN_INFO>
      <QID id="qid_38601">38601</QID><TYPE>Vuln</TYPE><PORT>443</PORT><SERVICE>http over ssl</SERVICE>
      <FQDN><![CDATA[db1.example.net]]></FQDN><PROTOCOL>tcp</PROTOCOL><SSL>true</SSL>
      <RESULT><![CDATA[RC4-SHA]]></RESULT><VULN_STATUS>Active</VULN_STATUS>
      <CVSS_FINAL>4.3</CVSS_FINAL><CVSS3_FINAL>5.9</CVSS3_FINAL>
    </VULN_INFO>
    <VULN_INFO>
      <QID id="qid_82003">82003</QID><TYPE>Practice</TYPE><PROTOCOL>icmp</PROTOCOL>
      <VULN_STATUS>New</VULN_STATUS>
    </VULN_INFO>
  </VULN_INFO_LIST>
</HOST>"""
REAL_SHAPED_FINDINGS = [(45141, "Ig", None, None), (38601, "Vuln", 443, "tcp"), (82003, "Practice", None, "icmp")]


def report(path, hosts: str) -> str:
    path.write_text('<?xml version="1.0" encoding="UTF-8" ?>\n<ASSET_DATA_REPORT><HEADER/>'
                    "<RISK_SCORE_PER_HOST><HOSTS><IP_ADDRESS>10.1.2.3</IP_ADDRESS>"
                    "<TOTAL_VULNERABILITIES>3</TOTAL_VULNERABILITIES><SECURITY_RISK>2.5</SECURITY_RISK></HOSTS>"
                    f"</RISK_SCORE_PER_HOST><HOST_LIST>{hosts}</HOST_LIST></ASSET_DATA_REPORT>\n")
    return str(path)


def read(path):
    with open_report(path, vuln_types=ALL) as rep:
        hosts = [(h.ip, h.os, h.dns, h.netbios, [(f.qid, f.type, f.port, f.protocol) for f in h.findings])
                 for h in rep.hosts()]
    return hosts, rep.stats


def test_a_real_shaped_host_gives_its_fields_and_nothing_else(tmp_path):
    hosts, stats = read(report(tmp_path / "r.xml", REAL_SHAPED_HOST))
    assert hosts == [("10.1.2.3", "Windows Server 2019", "db1.example.net", "DB1", REAL_SHAPED_FINDINGS)]
    assert (stats.findings_total, stats.findings_kept, stats.findings_invalid) == (3, 3, 0)


@pytest.mark.parametrize("unknown_child", [False, True])
def test_fields_out_of_order_and_an_unknown_child_are_read_exactly(tmp_path, unknown_child):
    odd = REAL_SHAPED_HOST.replace(   # PROTOCOL and SSL before PORT: not the DTD's order
        "<PORT>443</PORT><SERVICE>http over ssl</SERVICE>\n      <FQDN><![CDATA[db1.example.net]]></FQDN>"
        "<PROTOCOL>tcp</PROTOCOL><SSL>true</SSL>",
        "<SSL>true</SSL><PROTOCOL>tcp</PROTOCOL><SERVICE>http over ssl</SERVICE><PORT>443</PORT>")
    if unknown_child:
        odd = odd.replace("<VULN_INFO_LIST>", "<VULN_INFO_LIST><NOTE><QID>1</QID><TYPE>Vuln</TYPE></NOTE>")
    assert odd.count("<NOTE>") == unknown_child and "<SSL>true</SSL><PROTOCOL>tcp</PROTOCOL>" in odd
    hosts, stats = read(report(tmp_path / "odd.xml", odd))
    assert hosts[0][4] == REAL_SHAPED_FINDINGS
    assert (stats.findings_total, stats.findings_kept, stats.findings_invalid) == (3, 3, 0)


def test_a_field_before_the_first_vuln_info_is_no_finding(tmp_path):
    odd = REAL_SHAPED_HOST.replace("<VULN_INFO_LIST>", "<VULN_INFO_LIST><PORT>22</PORT>")
    hosts, stats = read(report(tmp_path / "odd.xml", odd))
    assert hosts[0][4] == REAL_SHAPED_FINDINGS and stats.findings_total == 3


@pytest.mark.parametrize("text", ["10.0.0.1", "0.0.0.7", "255.255.255.255", "192.168.001.1", "256.0.0.1",
                                  "1.2.3", "1.2.3.4.5", "\u0661.2.3.4", "::1", "2001:DB8::1", "fe80::1%eth0",
                                  "::ffff:10.0.0.1", "10.0.0.1%eth0", "", "host.example"])
def test_canonical_address_agrees_with_ipaddress(text):
    try:
        want = str(ipaddress.ip_address(text.split("%", 1)[0]))
    except ValueError:
        with pytest.raises(ValueError):
            canonical_address(text)
    else:
        assert canonical_address(text) == want


# ---------------------------------------------------------------- the generator writes that shape
@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "r.xml"
    with open(path, "wb") as out:
        generate_report(out, hosts=300, vulns_per_host=20, distinct_qids=400, seed=5)
    return str(path)


def test_generated_reports_have_the_real_shape(generated):
    """Checked with lxml directly, not with the connector's reader."""
    root = etree.parse(generated, etree.XMLParser(load_dtd=False, no_network=True, huge_tree=True)).getroot()
    assert [child.tag for child in root] == ["HEADER", "RISK_SCORE_PER_HOST", "HOST_LIST", "GLOSSARY", "APPENDICES"]
    infos = root.findall("HOST_LIST/HOST/VULN_INFO_LIST/VULN_INFO")
    types = Counter(info.findtext("TYPE") for info in infos)
    assert types["Ig"] > 0.6 * len(infos)                       # most findings are information gathered
    assert all(info.find("VULN_STATUS") is None for info in infos if info.findtext("TYPE") == "Ig")
    assert all(info.find("CVSS_FINAL") is not None and info.find("CVSS3_FINAL") is not None
               for info in infos if info.findtext("TYPE") != "Ig")
    results = [len(info.findtext("RESULT")) for info in infos if info.findtext("TYPE") == "Ig"]
    assert max(results) > 1000 and sum(results) / len(results) > 300   # long RESULT tables
    host = root.find("HOST_LIST/HOST")
    order = [child.tag for child in host]
    assert order[:2] == ["IP", "TRACKING_METHOD"] and order[-1] == "VULN_INFO_LIST"
    for tag in ("HOST_ID", "ASSET_TAGS", "DNS", "QG_HOSTID", "OPERATING_SYSTEM", "ASSET_GROUPS"):
        assert tag in order
    assert root.findall("HOST_LIST/HOST/NETBIOS")
    scores = root.findall("RISK_SCORE_PER_HOST/HOSTS")
    hosts = root.findall("HOST_LIST/HOST")
    assert [s.findtext("IP_ADDRESS") for s in scores] == [h.findtext("IP") for h in hosts]
    assert [int(s.findtext("TOTAL_VULNERABILITIES")) for s in scores] == [
        len(h.findall("VULN_INFO_LIST/VULN_INFO")) for h in hosts]
    details = root.findall("GLOSSARY/VULN_DETAILS_LIST/VULN_DETAILS")
    for path in ("CVSS_SCORE/CVSS_BASE", "CVSS3_SCORE/CVSS3_BASE", "CORRELATION/EXPLOITABILITY",
                 "VENDOR_REFERENCE_LIST/VENDOR_REFERENCE"):
        assert any(d.find(path) is not None for d in details), path


def test_the_reader_finds_what_the_generator_wrote(generated):
    with open_report(generated, vuln_types=ALL) as rep:
        rows = [(h.ip, f.qid, f.port, f.protocol, f.type) for h in rep.hosts() for f in h.findings]
    assert rows == list(expected_findings(hosts=300, vulns_per_host=20, distinct_qids=400, seed=5))
