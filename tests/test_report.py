"""Streaming ASSET_DATA_REPORT parsing (DESIGN.md §4, qualys-api spec §3)."""
import glob
import os
import re
import tempfile

import pytest

from qualys_connector.errors import QualysError, ReportFormatError
from qualys_connector.report import open_report

DATA = os.path.join(os.path.dirname(__file__), "data")
SAMPLE = os.path.join(DATA, "sample_asset_data_report.xml")
ALL = ("Vuln", "Practice", "Ig")


def parse(path, **kw):
    with open_report(str(path), **kw) as report:
        return [(h.ip, [(f.qid, f.type, f.port, f.protocol) for f in h.findings]) for h in report.hosts()], report


def test_the_sample_report_yields_its_hosts_in_order_with_ipv6_from_the_v6_attribute():
    hosts, report = parse(SAMPLE, vuln_types=ALL)
    assert hosts == [
        ("10.20.30.41", [(6, "Ig", None, None), (82003, "Vuln", None, None), (38601, "Vuln", 443, "tcp"),
                         (370876, "Practice", None, None)]),
        ("10.20.30.57", [(45038, "Ig", None, None), (121695, "Vuln", 123, "udp")]),
        ("2001:db8:85a3::8a2e:370:84", [(6, "Ig", None, None), (38628, "Vuln", 8443, "tcp"),
                                        (121695, "Vuln", 123, "udp")]),
    ]
    assert sorted(report.glossary) == [6, 38601, 38628, 45038, 82003, 121695, 370876]


def test_glossary_text_is_plain_one_line_text_with_entities_decoded():
    _, report = parse(SAMPLE)
    ntp = report.glossary[121695]
    assert ntp.title == 'NTP "monlist" Feature Denial of Service Vulnerability'
    assert ntp.cve_ids == ("CVE-2013-5211",) and ntp.bugtraq_ids == ("64692",) and ntp.severity == 3
    for vuln in report.glossary.values():
        assert "\n" not in vuln.threat and "<" not in vuln.threat and "&quot;" not in vuln.threat


def test_default_types_leave_out_information_gathered():
    hosts, _ = parse(SAMPLE)
    assert all(kind != "Ig" for _, findings in hosts for _, kind, _, _ in findings)


def test_min_severity_uses_the_glossary_even_when_it_comes_after_the_hosts():
    hosts, report = parse(SAMPLE, min_severity=3)
    assert [q for _, f in hosts for q, *_ in f] == [38601, 370876, 121695, 38628, 121695]


def test_include_sees_the_address_the_fmc_will_see():
    seen = []
    hosts, report = parse(SAMPLE, include=lambda ip: seen.append(ip) or ip.startswith("2001:"))
    assert seen == ["10.20.30.41", "10.20.30.57", "2001:db8:85a3::8a2e:370:84"]
    assert [ip for ip, _ in hosts] == ["2001:db8:85a3::8a2e:370:84"] and report.stats.hosts_outside_ranges == 2


def glossary_first(tmp_path):
    text = open(SAMPLE).read()
    glossary = re.search(r"\s*<GLOSSARY>.*</GLOSSARY>", text, re.S).group(0)
    text = text.replace(glossary, "").replace("<HOST_LIST>", glossary.strip() + "\n  <HOST_LIST>")
    path = tmp_path / "first.xml"
    path.write_text(text)
    return path


def test_glossary_before_or_after_the_hosts_gives_the_same_result(tmp_path):
    a, ra = parse(SAMPLE, vuln_types=ALL, min_severity=2)
    b, rb = parse(glossary_first(tmp_path), vuln_types=ALL, min_severity=2)
    assert a == b and ra.glossary == rb.glossary


def test_duplicate_findings_are_sent_once(tmp_path):
    text = open(SAMPLE).read()
    block = re.search(r"<VULN_INFO>\s*<QID id=\"qid_38601\">.*?</VULN_INFO>", text, re.S).group(0)
    path = tmp_path / "dup.xml"
    path.write_text(text.replace(block, block + block + block))
    hosts, report = parse(path)
    assert [q for q, *_ in hosts[0][1]].count(38601) == 1 and report.stats.duplicates_dropped == 2


def test_an_empty_report_is_not_an_error(tmp_path):
    path = tmp_path / "empty.xml"
    path.write_text('<?xml version="1.0"?>\n<!DOCTYPE ASSET_DATA_REPORT SYSTEM "https://x/asset_data_report.dtd">\n'
                    "<ASSET_DATA_REPORT><HEADER><COMPANY><![CDATA[X]]></COMPANY></HEADER>"
                    "<APPENDICES><NO_RESULTS/></APPENDICES></ASSET_DATA_REPORT>\n<!-- CONFIDENTIAL //-->\n")
    hosts, report = parse(path)
    assert hosts == [] and report.glossary == {}


def test_a_truncated_report_is_always_an_error_and_yields_nothing(tmp_path):
    data = open(SAMPLE, "rb").read()
    end = data.rindex(b"</ASSET_DATA_REPORT>")
    for cut in list(range(1, end, max(1, end // 60))) + [end, end + 5]:
        path = tmp_path / "cut.xml"
        path.write_bytes(data[:cut])
        with pytest.raises(ReportFormatError) as info:
            parse(path)
        assert "run again" in str(info.value)


def test_a_simple_return_instead_of_the_report_carries_qualys_code_and_text(tmp_path):
    path = tmp_path / "err.xml"
    path.write_text('<?xml version="1.0"?><SIMPLE_RETURN><RESPONSE><DATETIME>2024-01-01T00:00:00Z</DATETIME>'
                    "<CODE>999</CODE><TEXT>Internal error. Please contact customer support.</TEXT></RESPONSE></SIMPLE_RETURN>")
    with pytest.raises(QualysError) as info:
        parse(path)
    assert info.value.code == "999" and "Internal error" in str(info.value)


def test_other_xml_is_not_a_report(tmp_path):
    path = tmp_path / "x.xml"
    path.write_text("<SCAN><HOST><IP>1.2.3.4</IP></HOST></SCAN>")
    with pytest.raises(ReportFormatError):
        parse(path)


def test_external_entities_are_refused_without_reading_the_file(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    path = tmp_path / "xxe.xml"
    path.write_text(f'<?xml version="1.0"?><!DOCTYPE ASSET_DATA_REPORT [<!ENTITY x SYSTEM "file://{secret}">]>'
                    "<ASSET_DATA_REPORT><GLOSSARY><VULN_DETAILS_LIST><VULN_DETAILS id=\"qid_1\"><QID>1</QID>"
                    "<TITLE>&x;</TITLE></VULN_DETAILS></VULN_DETAILS_LIST></GLOSSARY></ASSET_DATA_REPORT>")
    with pytest.raises(ReportFormatError) as info:
        parse(path)
    assert "entities" in str(info.value) and "TOP-SECRET" not in str(info.value)


def test_billion_laughs_is_refused_at_once(tmp_path):
    lol = '<!ENTITY lol "lol">' + "".join(f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10))
    path = tmp_path / "bomb.xml"
    path.write_text(f'<?xml version="1.0"?><!DOCTYPE ASSET_DATA_REPORT [{lol}]><ASSET_DATA_REPORT>&lol9;</ASSET_DATA_REPORT>')
    with pytest.raises(ReportFormatError):
        parse(path)


def test_the_spool_file_is_removed_after_use_and_after_errors(tmp_path):
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), ".qc-hosts-*")))
    parse(SAMPLE)
    path = tmp_path / "cut.xml"
    path.write_bytes(open(SAMPLE, "rb").read()[:3000])
    with pytest.raises(ReportFormatError):
        parse(path)
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), ".qc-hosts-*"))) == before


def test_a_host_with_a_bad_address_is_skipped_and_counted(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text(open(SAMPLE).read().replace(">10.20.30.57<", ">10.20.30.999<"))
    hosts, report = parse(path)
    assert len(hosts) == 2 and report.stats.hosts_bad_address == 1
