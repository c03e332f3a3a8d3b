"""Keeping the FMC current, end to end: saved reports → qualys-connector → the FMC emulator over TLS,
the map read back with ``fmc-emulator export`` after every run (README "Keeping the FMC current")."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from conftest import CLIENT_PASSWORD, run_cli
from qualys_connector.emulators.fmc.server import FMCEmulator


def report(path, hosts: dict) -> str:
    """A saved ASSET_DATA_REPORT: ``{ip: [(qid, port, status), ...]}`` (port None: host level)."""
    parts = ['<?xml version="1.0" encoding="UTF-8" ?>\n<ASSET_DATA_REPORT>\n<HOST_LIST>\n']
    for ip, findings in hosts.items():
        parts.append(f"<HOST><IP>{ip}</IP><VULN_INFO_LIST>")
        for qid, port, status in findings:
            where = f"<PORT>{port}</PORT><PROTOCOL>tcp</PROTOCOL>" if port else ""
            parts.append(f"<VULN_INFO><QID>{qid}</QID><TYPE>Vuln</TYPE>{where}"
                         f"<RESULT>x</RESULT><VULN_STATUS>{status}</VULN_STATUS></VULN_INFO>")
        parts.append("</VULN_INFO_LIST></HOST>\n")
    parts.append("</HOST_LIST>\n<GLOSSARY><VULN_DETAILS_LIST></VULN_DETAILS_LIST></GLOSSARY>\n</ASSET_DATA_REPORT>\n")
    with open(path, "w") as fh:
        fh.write("".join(parts))
    return str(path)


def config(tmp_path, report_path, **extra) -> str:
    keys = {"report_file": report_path, "template_id": "424242", "add_host": "y"}
    keys.update(extra)
    path = tmp_path / "QualysGuard.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in keys.items()))
    path.chmod(0o600)
    return str(path)


def export(db: str, scanner: str = "QualysGuard") -> dict:
    """What ``fmc-emulator export --scanner`` shows: per host with results, its vuln ids."""
    out = subprocess.run([sys.executable, "-m", "qualys_connector.emulators.fmc.cli", "export", "--db", db,
                          "--scanner", scanner], capture_output=True, text=True, check=True).stdout
    hosts = json.loads(out)["hosts"]
    return {ip: sorted(int(r["vuln_id"]) for r in h["scan_results"]) for ip, h in hosts.items() if h["scan_results"]}


def send(tmp_path, pki, fmc, hosts, name, *more, **keys):
    cfg = config(tmp_path, report(tmp_path / f"{name}.xml", hosts), **keys)
    return run_cli("-server=127.0.0.1", f"-port={fmc.port}", f"-pkcs12={pki.client_pkcs12}", f"-pl={cfg}",
                   f"-statedir={tmp_path / 'state'}", *more, env={"QC_PKCS12_PASSWORD": CLIENT_PASSWORD})


def records(tmp_path):
    state = tmp_path / "state"
    return sorted(p for p in state.iterdir() if p.name.startswith("delivered-")) if state.exists() else []


def recorded_hosts(path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return sorted(ip for (ip,) in db.execute("SELECT ip FROM hosts"))
    finally:
        db.close()


A, B, C, D = "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"
FIRST = {A: [(1, 443, "Active"), (2, None, "New")], B: [(3, 22, "Active")], C: [(4, 80, "Re-Opened")],
         D: [(5, 443, "Active")]}


@pytest.fixture
def netmap(tmp_path, pki):
    db = str(tmp_path / "netmap.sqlite")
    with FMCEmulator(pki=pki, db=db, accept_unknown_hosts=True, max_size=512) as fmc:
        yield fmc, db


def test_remediated_and_gone_hosts_are_cleared_and_an_empty_report_clears_nothing(tmp_path, pki, netmap, lock_dir):
    fmc, db = netmap
    steady = {f"10.0.2.{n}": [(10 + n, 443, "Active")] for n in range(1, 5)}     # unchanged throughout
    first = send(tmp_path, pki, fmc, {**FIRST, **steady}, "first")
    assert first.returncode == 0, first.stderr
    truth = {A: [1, 2], B: [3], C: [4], D: [5], **{ip: [q for q, _, _ in f] for ip, f in steady.items()}}
    assert export(db) == truth
    assert "cleared=0" in first.stderr

    # A remediated (listed, no findings left), B's only finding Fixed, C gone from the report, D
    # with a new finding: 3 of the 8 hosts delivered last time are cleared (max_clear 50% allows it).
    second = send(tmp_path, pki, fmc, {A: [], B: [(3, 22, "Fixed")], D: [(5, 443, "Active"), (6, None, "Active")],
                                       **steady}, "second", f"-metrics={tmp_path / 'metrics.prom'}")
    assert second.returncode == 0, second.stderr
    truth = {D: [5, 6], **{ip: [q for q, _, _ in f] for ip, f in steady.items()}}
    assert export(db) == truth
    assert "cleared=3" in second.stderr
    assert "qualys_connector_last_run_hosts_cleared 3" in (tmp_path / "metrics.prom").read_text()
    assert fmc.stats.error_lines == 0

    # An empty report would clear everything delivered last time: the valve holds, exit 2.
    third = send(tmp_path, pki, fmc, {}, "third")
    assert third.returncode == 2, third.stderr
    assert "max_clear" in third.stderr and "cleared=0" in third.stderr
    assert export(db) == truth
    (record,) = records(tmp_path)
    assert recorded_hosts(record) == sorted(truth)      # still known: a later run can clear them

    # A real run after that (C still gone, D still there) clears nothing more and keeps the rest.
    fourth = send(tmp_path, pki, fmc, {D: [(5, 443, "Active")], **steady}, "fourth")
    assert fourth.returncode == 0, fourth.stderr
    assert export(db) == {**truth, D: [5]}


def test_the_only_host_remediated_needs_max_clear_raised_for_one_run(tmp_path, pki, netmap, lock_dir):
    """The issue's case: 10.0.0.1 with QIDs 1 and 2, then the same host without findings."""
    fmc, db = netmap
    assert send(tmp_path, pki, fmc, {A: [(1, 443, "Active"), (2, None, "Active")]}, "first").returncode == 0
    held = send(tmp_path, pki, fmc, {A: []}, "second")
    assert held.returncode == 2 and "raise max_clear" in held.stderr
    assert export(db) == {A: [1, 2]}
    cleared = send(tmp_path, pki, fmc, {A: []}, "third", max_clear="100%")
    assert cleared.returncode == 0, cleared.stderr
    assert export(db) == {}


def test_the_valve_counts_hosts_without_findings_that_were_delivered_last_time(tmp_path, pki, netmap, lock_dir):
    fmc, db = netmap
    assert send(tmp_path, pki, fmc, FIRST, "first").returncode == 0
    # A mis-scoped template: every host still listed, none with a finding (all Fixed).
    result = send(tmp_path, pki, fmc, {ip: [(q, p, "Fixed") for q, p, _ in f] for ip, f in FIRST.items()}, "fixed")
    assert result.returncode == 2 and "max_clear" in result.stderr
    assert export(db) == {A: [1, 2], B: [3], C: [4], D: [5]}
    # An absolute max_clear lets it through.
    result = send(tmp_path, pki, fmc, {ip: [] for ip in FIRST}, "clean", max_clear=4)
    assert result.returncode == 0, result.stderr
    assert export(db) == {}


def test_remove_missing_n_keeps_hosts_that_left_the_report(tmp_path, pki, netmap, lock_dir):
    fmc, db = netmap
    assert send(tmp_path, pki, fmc, FIRST, "first").returncode == 0
    result = send(tmp_path, pki, fmc, {A: [(1, 443, "Active")], B: [], D: [(5, 443, "Active")]}, "second",
                  remove_missing="n")
    assert result.returncode == 0, result.stderr
    assert export(db) == {A: [1], C: [4], D: [5]}       # B cleared (no findings), C kept


def test_other_scanners_results_on_a_cleared_host_stay(tmp_path, pki, netmap, lock_dir):
    fmc, db = netmap
    assert send(tmp_path, pki, fmc, FIRST, "first", scanner_name="Other").returncode == 0
    assert send(tmp_path, pki, fmc, FIRST, "mine").returncode == 0
    assert send(tmp_path, pki, fmc, {A: [], B: [(3, 22, "Active")], C: [(4, 80, "Active")], D: [(5, 443, "Active")]},
                "second").returncode == 0
    assert A not in export(db) and export(db, "Other")[A] == [1, 2]


def test_a_dry_run_writes_the_clearing_lines_and_leaves_the_record_alone(tmp_path, pki, netmap, lock_dir):
    fmc, db = netmap
    assert send(tmp_path, pki, fmc, FIRST, "first").returncode == 0
    (record,) = records(tmp_path)
    before = record.read_bytes()
    out = tmp_path / "Out.csv"
    result = send(tmp_path, pki, fmc, {A: [], B: [(3, 22, "Active")], D: [(5, 443, "Active")]}, "dry", f"-c={out}")
    assert result.returncode == 0, result.stderr
    lines = out.read_text().splitlines()
    assert lines[-3:] == [f'DeleteScanResult,{A},"QualysGuard"', f'DeleteScanResult,{C},"QualysGuard"', "ScanUpdate"]
    assert lines.index("ScanFlush") < lines.index(f'DeleteScanResult,{A},"QualysGuard"')
    assert records(tmp_path) == [record] and record.read_bytes() == before
    assert export(db) == {A: [1, 2], B: [3], C: [4], D: [5]}      # nothing was sent
    # Without -server no record is consulted: only the host without findings is cleared.
    cfg = config(tmp_path, str(tmp_path / "dry.xml"))
    result = run_cli(f"-c={out}", f"-pl={cfg}", f"-statedir={tmp_path / 'state'}")
    assert result.returncode == 0, result.stderr
    assert out.read_text().splitlines()[-2:] == [f'DeleteScanResult,{A},"QualysGuard"', "ScanUpdate"]
    assert record.read_bytes() == before


def test_the_valve_holds_in_a_dry_run_too(tmp_path, pki, netmap, lock_dir):
    fmc, db = netmap
    assert send(tmp_path, pki, fmc, FIRST, "first").returncode == 0
    (record,) = records(tmp_path)
    before = record.read_bytes()
    out = tmp_path / "Out.csv"
    result = send(tmp_path, pki, fmc, {A: [(1, 443, "Active")]}, "dry", f"-c={out}")   # 3 of 4 would go
    assert result.returncode == 2 and "max_clear" in result.stderr, result.stderr
    lines = out.read_text().splitlines()
    assert lines[-1] == "ScanFlush" and not [line for line in lines if line.startswith("DeleteScanResult")]
    assert record.read_bytes() == before and export(db) == {A: [1, 2], B: [3], C: [4], D: [5]}


def test_a_delivery_cut_off_half_way_leaves_the_previous_record(tmp_path, pki, lock_dir):
    db = str(tmp_path / "netmap.sqlite")
    with FMCEmulator(pki=pki, db=db, accept_unknown_hosts=True, max_size=512) as fmc:
        assert send(tmp_path, pki, fmc, FIRST, "first").returncode == 0
    (record,) = records(tmp_path)
    before = record.read_bytes()
    many = {f"10.0.1.{n}": [(7, 443, "Active")] for n in range(1, 60)}
    with FMCEmulator(pki=pki, db=db, accept_unknown_hosts=True, max_size=512, close_after_data=2) as fmc:
        result = send(tmp_path, pki, fmc, many, "cut")
    assert result.returncode == 2, result.stderr
    assert records(tmp_path) == [record] and record.read_bytes() == before
    assert not [p for p in (tmp_path / "state").iterdir() if p.name.startswith(".delivered-")]   # no scratch left


def test_a_delivery_the_fmc_answered_with_errors_leaves_the_previous_record(tmp_path, pki, netmap, lock_dir):
    """Acknowledged is not enough: a reply with error lines means the FMC may not hold what the
    record would say, so the record of the last clean delivery stays (README "The delivery record")."""
    fmc, db = netmap
    assert send(tmp_path, pki, fmc, FIRST, "first").returncode == 0
    (record,) = records(tmp_path)
    before = record.read_bytes()
    fmc.leaf_domains = ("Leaf",)        # now a multi-domain FMC: without a domain every SetSource fails
    result = send(tmp_path, pki, fmc, {A: [(1, 443, "Active")]}, "refused")
    assert result.returncode == 2, result.stderr
    assert "replies_with_errors=0" not in result.stderr.splitlines()[-1]
    assert records(tmp_path) == [record] and record.read_bytes() == before


def test_a_record_from_a_newer_version_stops_the_run_naming_the_file(tmp_path, pki, netmap, lock_dir):
    fmc, db = netmap
    assert send(tmp_path, pki, fmc, FIRST, "first").returncode == 0
    (record,) = records(tmp_path)
    conn = sqlite3.connect(record)
    conn.execute("UPDATE meta SET value = '99' WHERE name = 'version'")
    conn.commit()
    conn.close()
    result = send(tmp_path, pki, fmc, FIRST, "again")
    assert result.returncode == 1
    assert str(record) in result.stderr and "newer version" in result.stderr
    assert "Traceback" not in result.stderr


def test_process_multiple_does_not_clear_a_host_another_template_delivers(tmp_path, pki, netmap, lock_dir):
    from qualys_connector.emulators.qualys.server import QualysEmulator, TemplateSpec
    fmc, db = netmap
    r111, r222 = str(tmp_path / "r111.xml"), str(tmp_path / "r222.xml")
    report(r111, {A: [(1, 443, "Active")], C: [(4, 80, "Active")]})
    report(r222, {B: [(3, 22, "Active")]})
    with QualysEmulator(users={"api_user": "qpw"}, report_delay=0.05,
                        templates={"111": TemplateSpec(path=r111), "222": TemplateSpec(path=r222)}) as qualys:
        path = tmp_path / "QualysGuard.yaml"
        path.write_text(f"user_id: api_user\ntemplate_id: 111\nurl: {qualys.url}\nadd_host: y\n"
                        "poll_interval: 0.05\nmax_wait: 60\nmax_clear: 100%\n")
        path.chmod(0o600)
        args = ["-server=127.0.0.1", f"-port={fmc.port}", f"-pkcs12={pki.client_pkcs12}", f"-pl={path}",
                f"-statedir={tmp_path / 'state'}"]
        env = {"QC_PKCS12_PASSWORD": CLIENT_PASSWORD, "QC_QUALYS_PASSWORD": "qpw"}
        first = run_cli(*args, "-multiinfo=111,222", env=env, program="process-multiple")
        assert first.returncode == 0, first.stderr
        assert export(db) == {A: [1], B: [3], C: [4]} and len(records(tmp_path)) == 2   # one record per template
        # C moves from template 111 to 222; 222 runs first and delivers it, so 111 must not clear it.
        report(r111, {A: [(1, 443, "Active")]})
        report(r222, {B: [(3, 22, "Active")], C: [(4, 80, "Active"), (8, None, "Active")]})
        second = run_cli(*args, "-multiinfo=222,111", env=env, program="process-multiple")
        assert second.returncode == 0, second.stderr
        assert export(db) == {A: [1], B: [3], C: [4, 8]}
        # Later C leaves 222 too: now it is cleared.
        report(r222, {B: [(3, 22, "Active")]})
        third = run_cli(*args, "-multiinfo=222,111", env=env, program="process-multiple")
        assert third.returncode == 0, third.stderr
        assert export(db) == {A: [1], B: [3]}
