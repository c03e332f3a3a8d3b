"""Large generated reports: nothing lost, and memory that does not grow with the number of hosts.

The generator (qualys_connector/emulators/qualys/reportgen.py) knows what it wrote without
parsing XML (``expected_findings``), which gives an independent answer to compare with.
"""
from __future__ import annotations

import tracemalloc

import pytest

from qualys_connector.emulators.qualys.reportgen import expected_findings, expected_glossary, generate_report
from qualys_connector.report import open_report

ALL = ("Vuln", "Practice", "Ig")
SHAPE = dict(vulns_per_host=3, distinct_qids=50, seed=3)
BIG = 50_000


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Paths of generated reports: 5k and 50k hosts (glossary last), 5k hosts glossary first."""
    root = tmp_path_factory.mktemp("reports")
    paths = {}
    for name, hosts, first in (("small", 5_000, False), ("big", BIG, False), ("small_first", 5_000, True)):
        path = root / f"{name}.xml"
        with open(path, "wb") as out:
            generate_report(out, hosts=hosts, glossary_first=first, **SHAPE)
        paths[name] = str(path)
    return paths


def parsed_findings(path, **kw):
    with open_report(path, vuln_types=ALL, **kw) as report:
        rows = [(h.ip, f.qid, f.port, f.protocol, f.type) for h in report.hosts() for f in h.findings]
        return rows, report


def test_every_generated_finding_comes_out_in_order(reports):
    rows, report = parsed_findings(reports["big"])
    assert rows == list(expected_findings(hosts=BIG, **SHAPE))
    s = report.stats
    assert s.hosts_kept == BIG and s.findings_kept == len(rows)
    assert s.findings_total == BIG * SHAPE["vulns_per_host"] + BIG // 50   # the generator repeats one per 50 hosts
    assert s.duplicates_dropped == s.findings_total - len(rows) >= BIG // 50


def test_generated_glossary_matches(reports):
    _, report = parsed_findings(reports["small"])
    expected = expected_glossary(seed=SHAPE["seed"], qids=sorted(report.glossary))
    assert len(report.glossary) == SHAPE["distinct_qids"]
    for qid, vuln in report.glossary.items():
        want = expected[qid]
        assert (vuln.title, vuln.severity, vuln.threat, vuln.cve_ids, vuln.bugtraq_ids) == (
            want["title"], want["severity"], want["threat_text"], want["cve_ids"], want["bugtraq_ids"])


@pytest.mark.parametrize("minimum", [1, 4])
def test_glossary_first_and_last_agree_on_a_generated_report(reports, tmp_path, minimum):
    last, _ = parsed_findings(reports["small"], min_severity=minimum)
    first, _ = parsed_findings(reports["small_first"], min_severity=minimum)
    assert first == last and len(last) > 0


def traced_peak(path) -> tuple[int, int]:
    """(peak bytes while parsing and reading every host, bytes needed to hold every host)."""
    tracemalloc.start()
    try:
        with open_report(path, vuln_types=ALL) as report:
            for _ in report.hosts():
                pass
            peak = tracemalloc.get_traced_memory()[1]
            before = tracemalloc.get_traced_memory()[0]
            held = list(report.hosts())
            holding = tracemalloc.get_traced_memory()[0] - before
            del held
    finally:
        tracemalloc.stop()
    return peak, holding


def test_memory_does_not_grow_with_the_hosts(reports):
    small_peak, _ = traced_peak(reports["small"])
    big_peak, big_holding = traced_peak(reports["big"])
    # Ten times the hosts, (nearly) the same peak: only the glossary and the distinct findings
    # are in memory. Holding the 50k hosts would cost several times the whole peak.
    assert big_peak < small_peak * 1.5 + (512 << 10), (small_peak, big_peak)
    assert big_peak * 4 < big_holding, (big_peak, big_holding)
