"""clearing and its hooks: Fixed findings are absent, the summary and metrics say cleared=N,
the clear lines come after ScanFlush with a ScanUpdate of their own (README "Keeping the FMC current")."""
import io
import logging

from qualys_connector import metrics
from qualys_connector.clearing import PeerHosts, open_clearing
from qualys_connector.deliveryrecord import ClearScope, MaxClear
from qualys_connector.report import open_report
from qualys_connector.runinfo import Summary

SCOPE = ClearScope(domain=None, source_name="QualysGuard", scanner_name="QG", job="1")


def write_report(path, hosts):
    body = "".join(f"<HOST><IP>{ip}</IP><VULN_INFO_LIST>" + "".join(
        f"<VULN_INFO><QID>{q}</QID><TYPE>Vuln</TYPE><RESULT>r</RESULT><VULN_STATUS>{st}</VULN_STATUS></VULN_INFO>"
        for q, st in findings) + "</VULN_INFO_LIST></HOST>" for ip, findings in hosts.items())
    path.write_text(f"<ASSET_DATA_REPORT><HOST_LIST>{body}</HOST_LIST><GLOSSARY></GLOSSARY></ASSET_DATA_REPORT>")
    return str(path)


def test_fixed_findings_are_not_current_and_are_counted_as_filtered(tmp_path):
    path = write_report(tmp_path / "r.xml", {"10.0.0.1": [(1, "Active"), (2, "Fixed"), (3, " fixed ")],
                                             "10.0.0.2": [(4, "Fixed")], "10.0.0.3": [(5, "Re-Opened")]})
    with open_report(path) as report:
        hosts = {h.ip: [f.qid for f in h.findings] for h in report.hosts()}
        s = report.stats
    assert hosts == {"10.0.0.1": [1], "10.0.0.2": [], "10.0.0.3": [5]}
    assert s.findings_filtered_status == 3 and s.findings_filtered == 3
    assert s.findings_total == (s.findings_kept + s.findings_filtered + s.duplicates_dropped
                                + s.findings_outside_ranges + s.findings_invalid)


def clearing(tmp_path, previous=(), scope=SCOPE, peers=None, server="fmc"):
    if previous:
        c = open_clearing(tmp_path, server, 8307, scope)
        for ip in previous:
            c.sent(ip)
        c.write(io.BytesIO(), Summary())
        c.commit()
        c.close()
    return open_clearing(tmp_path, server, 8307, scope, peers=peers)


def test_clear_lines_follow_the_results_with_their_own_scan_update(tmp_path, caplog):
    c = clearing(tmp_path, previous=["10.0.0.1", "10.0.0.2", "10.0.0.3"])
    c.sent("10.0.0.1")
    c.absent("10.0.0.4")
    c.sent("10.0.0.3")
    out, summary = io.BytesIO(), Summary()
    with caplog.at_level(logging.DEBUG, logger="qualys_connector"):
        plan = c.write(out, summary)
    c.close()
    assert out.getvalue().decode().splitlines() == ['DeleteScanResult,10.0.0.2,"QG"',
                                                    'DeleteScanResult,10.0.0.4,"QG"', "ScanUpdate"]
    assert (plan.cleared, plan.counted, plan.base, plan.held) == (2, 1, 3, False)
    assert summary.commands == 3 and summary.hosts_cleared == 0     # set by the core once delivered
    assert "clearing the QG results of 10.0.0.2" in caplog.text       # debug names them
    summary.hosts_cleared = plan.cleared
    assert "cleared=2" in summary.line()
    assert metrics.from_summary(summary, exit_code=0).counts["hosts_cleared"] == 2


def test_nothing_to_clear_writes_nothing(tmp_path):
    c = clearing(tmp_path)
    c.sent("10.0.0.1")
    out = io.BytesIO()
    assert c.write(out, Summary()).cleared == 0 and out.getvalue() == b""
    c.close()


def test_the_valve_holds_every_clear_and_keeps_the_previous_hosts(tmp_path):
    c = clearing(tmp_path, previous=["10.0.0.1", "10.0.0.2", "10.0.0.3"])
    c.sent("10.0.0.1")
    c.absent("10.0.0.9")
    out, summary = io.BytesIO(), Summary()
    plan = c.write(out, summary)
    assert plan.held and plan.counted == 2 and out.getvalue() == b"" and summary.hosts_cleared == 0
    c.commit()
    c.close()
    again = clearing(tmp_path)
    assert list(again.record.previous_hosts()) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    again.close()


def test_an_absolute_max_clear(tmp_path):
    scope = ClearScope(None, "QualysGuard", "QG", "1", max_clear=MaxClear(2, percent=False))
    c = clearing(tmp_path, previous=["10.0.0.1", "10.0.0.2", "10.0.0.3"], scope=scope)
    c.sent("10.0.0.1")
    assert c.write(io.BytesIO(), Summary()).cleared == 2
    c.close()


def test_a_dry_run_without_server_clears_only_hosts_without_findings(tmp_path):
    clearing(tmp_path, previous=["10.0.0.1", "10.0.0.2"]).close()
    c = open_clearing(tmp_path, None, 8307, SCOPE)
    c.absent("10.0.0.5")
    out = io.BytesIO()
    c.write(out, Summary())
    c.close()
    assert out.getvalue().decode().splitlines() == ['DeleteScanResult,10.0.0.5,"QG"', "ScanUpdate"]


def test_a_host_another_template_delivered_under_the_same_scanner_is_not_cleared(tmp_path):
    other = ClearScope(None, "QualysGuard", "QG", "2")
    clearing(tmp_path, previous=["10.0.0.1", "10.0.0.2"]).close()
    peers = PeerHosts(tmp_path)
    try:
        b = open_clearing(tmp_path, "fmc", 8307, other, peers=peers)
        b.sent("10.0.0.2")
        b.write(io.BytesIO(), Summary())
        b.close()
        a = open_clearing(tmp_path, "fmc", 8307, SCOPE, peers=peers)
        a.sent("10.0.0.1")
        out = io.BytesIO()
        assert a.write(out, Summary()).cleared == 0 and out.getvalue() == b""
        a.close()
    finally:
        peers.close()
