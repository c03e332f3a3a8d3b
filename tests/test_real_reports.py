"""Strings and shapes seen in real Qualys reports: the set_os split and honest counts."""
from __future__ import annotations

import re

import pytest

from conftest import run_cli
from input_plugins.qualysguard import split_os
from qualys_connector.report import open_report


@pytest.mark.parametrize("text, expected", [
    ("Windows 2008 R2/7", ("Microsoft", "Windows 2008 R2/7", "")),
    ("Ubuntu / Tiny Core Linux / Linux 2.6.x", ("", "Ubuntu / Tiny Core Linux / Linux 2.6.x", "")),
    ("Windows 2003 R2 Service Pack 2", ("Microsoft", "Windows 2003 R2 Service Pack 2", "")),
    ("Windows Server 2016 Standard 64 bit Edition Version 1607",
     ("Microsoft", "Windows Server 2016 Standard 64 bit Edition", "1607")),
    ("Linux 3.x", ("Linux", "Linux", "3.x")),
    ("Cisco IOS 15.2", ("Cisco", "IOS", "15.2")),
])
def test_split_os_of_real_qualys_strings(text, expected):
    assert split_os(text) == expected


REPORT = """<?xml version="1.0" encoding="UTF-8" ?>
<ASSET_DATA_REPORT><HEADER/><HOST_LIST><HOST><IP>10.0.0.1</IP>
<OPERATING_SYSTEM>Windows 2008 R2/7</OPERATING_SYSTEM><VULN_INFO_LIST>
<VULN_INFO><QID id="qid_100">100</QID><TYPE>Vuln</TYPE><PORT>80</PORT></VULN_INFO>
<VULN_INFO><QID id="qid_100">100</QID><TYPE>Vuln</TYPE><PORT>8080</PORT></VULN_INFO>
<VULN_INFO><QID id="qid_100">100</QID><TYPE>Vuln</TYPE></VULN_INFO>
<VULN_INFO><QID id="qid_100">100</QID><TYPE>Vuln</TYPE><PORT>443</PORT><PROTOCOL>tcp</PROTOCOL></VULN_INFO>
</VULN_INFO_LIST></HOST></HOST_LIST><GLOSSARY><VULN_DETAILS_LIST>
<VULN_DETAILS id="qid_100"><QID id="qid_100">100</QID><TITLE>t</TITLE><SEVERITY>3</SEVERITY></VULN_DETAILS>
</VULN_DETAILS_LIST></GLOSSARY></ASSET_DATA_REPORT>
"""


def test_a_port_without_protocol_is_host_level_merged_and_counted(tmp_path):
    path = tmp_path / "r.xml"
    path.write_text(REPORT)
    with open_report(str(path), distinct_by=lambda f: f.fmc_key) as report:
        (host,) = report.hosts()
        stats = report.stats
    assert [f.target for f in host.findings] == [(None, None), (443, "tcp")]
    assert stats.ports_without_protocol == 2 and stats.duplicates_dropped == 2
    assert stats.findings_kept == len(host.findings) == 2
    assert stats.findings_total == stats.findings_kept + stats.duplicates_dropped


def test_summary_and_debug_statistics_agree_and_the_merge_is_logged(tmp_path, lock_dir):
    (tmp_path / "r.xml").write_text(REPORT)
    config = tmp_path / "QualysGuard.yaml"
    config.write_text("report_file: r.xml\nset_os: y\nadd_host: n\n")
    config.chmod(0o600)
    result = run_cli(f"-plugininfo={config}", f"-csvfile={tmp_path / 'o.csv'}", "-level=3")
    assert result.returncode == 0, result.stderr
    kept = int(re.search(r"'findings_kept': (\d+)", result.stderr).group(1))
    summary = int(re.search(r"Summary: .*findings=(\d+)", result.stderr).group(1))
    assert kept == summary == 2
    assert "QID 100 port 8080 has no tcp/udp PROTOCOL: counted at host level, merged" in result.stderr
    lines = (tmp_path / "o.csv").read_text().splitlines()
    assert lines[1] == 'SetOS,10.0.0.1,"Microsoft","Windows 2008 R2/7",""'
    assert sum(l.startswith("AddScanResult") for l in lines) == 2
