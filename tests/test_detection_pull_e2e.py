"""pull: detections, end to end: Qualys emulator (detections + KnowledgeBase) → qualys-connector → -csvfile
and the FMC emulator. What arrives is compared with the emulator's model, not with any XML."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from conftest import CLIENT_PASSWORD, run_cli
from qualys_connector.emulators.fmc.server import FMCEmulator
from qualys_connector.emulators.qualys.detectionmodel import DetectionModel
from qualys_connector.emulators.qualys.server import QualysEmulator
from qualys_connector.ipranges import IPRanges

PASSWORD = "qualys-pw-detections"
RANGES = "10.0.0.0-10.0.0.200, 2001:db8::/96"
REPORT_TYPES = {"Confirmed": "Vuln", "Potential": "Practice", "Info": "Ig"}


def write_config(tmp_path, url, **extra):
    keys = {"user_id": "u", "url": url, "pull": "detections", "page_size": 9, "ip_ranges": RANGES, "add_host": "y"}
    keys.update(extra)
    path = tmp_path / "QualysGuard.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in keys.items()))
    path.chmod(0o600)
    return str(path)


def env(tmp_path):
    return {"QC_PKCS12_PASSWORD": CLIENT_PASSWORD, "QC_QUALYS_PASSWORD": PASSWORD,
            "QC_STATE_DIR": str(tmp_path / "state")}


def truth(model, ranges=RANGES, types=("Vuln", "Practice")):
    """Every current non-Fixed detection of a host inside ip_ranges, once per (address, QID, port, proto)."""
    inside = IPRanges.parse(ranges)
    out = set()
    for h in model.hosts:
        if h.address not in inside:
            continue
        for d in h.detections:
            if d.status == "Fixed" or REPORT_TYPES[d.type] not in types:
                continue
            port, proto = (d.port, d.protocol) if d.protocol in ("tcp", "udp") and d.port else (None, None)
            out.add((h.address, d.qid, port, proto))
    return out


@pytest.fixture
def model():
    return DetectionModel.generate(120, detections_per_host=5, seed=3, distinct_qids=60)


def test_a_full_pull_to_csvfile_is_exactly_the_open_detections_inside_ip_ranges(tmp_path, model, lock_dir):
    out = tmp_path / "out.csv"
    with QualysEmulator(users={"u": PASSWORD}, detections=model) as qualys:
        result = run_cli(f"-plugininfo={write_config(tmp_path, qualys.url)}", f"-csvfile={out}", env=env(tmp_path))
        assert result.returncode == 0, result.stderr
        assert qualys.state.detection_pages == 14            # 120 hosts, 9 per page
    rows = list(csv.reader(out.open()))
    results = [r for r in rows if r[0] == "AddScanResult"]
    got = [(r[1], int(r[3]), int(r[4]) if r[4] else None, r[5] or None) for r in results]
    assert len(got) == len(set(got))
    assert set(got) == truth(model) and any(":" in ip for ip, *_ in got)
    assert rows[0] == ["SetSource", "QualysGuard"] and rows[-1] == ["ScanFlush"]
    for r in results[:40]:                                 # titles, descriptions, ids from the KnowledgeBase
        vuln = model.kb[int(r[3])]
        assert r[6] == (vuln.title or f"QID {vuln.qid}") and r[7] == vuln.diagnosis
    assert not (tmp_path / "state" / "kb.sqlite").exists()      # a dry run writes no cache
    assert "hosts per page" in result.stderr


def fmc_export(db, scanner="QualysGuard"):
    done = subprocess.run([sys.executable, "-m", "qualys_connector.emulators.fmc.cli", "export", "--db", db,
                           "--scanner", scanner], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)["hosts"]


def test_a_full_pull_to_the_fmc_equals_the_model_and_the_second_run_asks_the_kb_only_for_new_qids(
        tmp_path, model, pki, lock_dir):
    db = str(tmp_path / "fmc.sqlite")
    with QualysEmulator(users={"u": PASSWORD}, detections=model) as qualys:
        config = write_config(tmp_path, qualys.url)
        with FMCEmulator(pki=pki, accept_unknown_hosts=True, db=db) as fmc:
            args = ("-server=127.0.0.1", f"-port={fmc.port}", f"-pkcs12={pki.client_pkcs12}", f"-plugininfo={config}")
            first = run_cli(*args, env=env(tmp_path))
            assert first.returncode == 0, first.stderr
            assert fmc.stats.duplicate_results == 0 and fmc.stats.error_lines == 0
            kb_calls = list(qualys.state.kb_calls)
            assert len(kb_calls) == 1 and len(kb_calls[0].split(",")) == len({q for _, q, _, _ in truth(model)})
            # Qualys learns of a new QID on one host; the next run asks the KnowledgeBase for it alone.
            host = next(h for h in model.hosts if h.ip == "10.0.0.5")
            with model.lock:
                model.apply({"op": "add_detection", "host_id": host.id, "qid": 777777, "port": 8443, "protocol": "tcp"})
            second = run_cli(*args, env=env(tmp_path))
            assert second.returncode == 0, second.stderr
            assert qualys.state.kb_calls[1:] == ["777777"]
    exported = fmc_export(db)
    arrived = {(ip, int(r["vuln_id"]), r["port"], r["proto"]) for ip, h in exported.items() for r in h["scan_results"]}
    assert arrived == truth(model)
    assert ("10.0.0.5", 777777, 8443, "tcp") in arrived
    assert os.path.exists(tmp_path / "state" / "kb.sqlite")


def test_a_pull_that_finds_nothing_says_so_and_exits_0(tmp_path, lock_dir):
    model = DetectionModel.generate(5, detections_per_host=2, seed=1)
    with QualysEmulator(users={"u": PASSWORD}, detections=model) as qualys:
        config = write_config(tmp_path, qualys.url, ip_ranges="192.0.2.0/24", add_host="n")
        result = run_cli(f"-plugininfo={config}", f"-csvfile={tmp_path / 'o.csv'}", env=env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "no open detections to send" in result.stderr and "Traceback" not in result.stderr
    assert qualys.state.kb_calls == []


def test_process_multiple_refuses_a_detection_pull(tmp_path, lock_dir):
    config = write_config(tmp_path, "http://127.0.0.1:9")
    result = run_cli("-multiinfo=1,2", f"-csvfile={tmp_path / 'o.csv'}", f"-plugininfo={config}",
                     program="process-multiple", env=env(tmp_path))
    assert result.returncode == 1
    assert "process-multiple runs report templates, but QualysGuard.yaml says pull: detections" in result.stderr
