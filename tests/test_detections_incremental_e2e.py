"""Incremental detection pulls end to end over real sockets: Qualys emulator → qualys-connector → FMC
emulator. The first run mirrors everything; after the emulator's model changes, the next run asks
only for hosts processed since the first page's DATETIME (less five minutes) and sends only those,
and the FMC's map equals the model again. A dry run or a run the FMC cuts off changes nothing for
the next run; a run with nothing new says so and does not contact the FMC; -resync pulls everything."""
from __future__ import annotations

import sqlite3

import httpx
import pytest

from conftest import run_cli
from qualys_connector.emulators.fmc.server import FMCEmulator
from qualys_connector.emulators.qualys.detectionmodel import DetectionModel
from qualys_connector.emulators.qualys.server import QualysEmulator
from qualys_connector.qualys.detections import processed_after
from test_detection_pull_e2e import PASSWORD, env, fmc_export, truth, write_config

OLD = "2025-06-01T00:00:00Z"
WITH_FIXED = "New,Active,Re-Opened,Fixed"


def the_record(tmp_path):
    (path,) = (tmp_path / "state").glob("delivered-*.sqlite")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        meta = dict(db.execute("SELECT name, value FROM meta"))
        hosts = {ip for (ip,) in db.execute("SELECT ip FROM hosts")}
    finally:
        db.close()
    assert "\tdetections" in meta["target"]                      # the record's job is "detections"
    return path.read_bytes(), meta["watermark"], hosts


def arrived(db):
    return {(ip, int(r["vuln_id"]), r["port"], r["proto"]) for ip, h in fmc_export(db).items() for r in h["scan_results"]}


def sent_lines(fmc, since):
    """The commands of the DATA messages from ``since`` on, without the header repeated in each."""
    lines = b"".join(fmc.messages[since:]).decode().splitlines()
    return [line for line in lines if not line.startswith(("SetSource,", "SetDomain,"))]


def open_hosts(model):
    return [h for h in model.hosts if h.ip and sum(d.status != "Fixed" and d.type != "Info" for d in h.detections) >= 2]


@pytest.fixture
def setup(tmp_path, pki, lock_dir):
    model = DetectionModel.generate(120, detections_per_host=5, seed=3, distinct_qids=60)
    db = str(tmp_path / "fmc.sqlite")
    with QualysEmulator(users={"u": PASSWORD}, detections=model) as qualys, \
            FMCEmulator(pki=pki, accept_unknown_hosts=True, db=db) as fmc:
        config = write_config(tmp_path, qualys.url)
        send = ("-server=127.0.0.1", f"-port={fmc.port}", f"-pkcs12={pki.client_pkcs12}", f"-plugininfo={config}")
        yield model, qualys, fmc, db, send


def test_the_second_run_sends_only_what_changed_and_the_fmc_equals_the_model_again(tmp_path, setup):
    model, qualys, fmc, db, send = setup
    first = run_cli(*send, env=env(tmp_path))
    assert first.returncode == 0, first.stderr
    assert qualys.state.detection_pages == 14                       # 120 hosts, 9 per page: a full pull
    assert all("vm_processed_after" not in f and f["status"] == "New,Active,Re-Opened"
               for f in qualys.state.detection_forms)
    assert arrived(db) == truth(model)
    record1, watermark1, hosts1 = the_record(tmp_path)
    assert watermark1 == qualys.state.detection_datetimes[0]        # the FIRST page's DATETIME
    kb1 = (tmp_path / "state" / "kb.sqlite").read_bytes()

    # Qualys: one host remediated, one QID fixed on another, a new detection, a new host.
    a, b, c = open_hosts(model)[:3]
    fixed_qid = next(d.qid for d in b.detections if d.status != "Fixed" and d.type != "Info")
    for op in ({"op": "remediate", "host_id": a.id}, {"op": "fix", "host_id": b.id, "qid": fixed_qid},
               {"op": "add_detection", "host_id": c.id, "qid": 777777, "port": 8443, "protocol": "tcp"},
               {"op": "add_host", "ip": "10.0.0.180", "dns": "new.example.net",
                "detections": [{"qid": 10000, "port": 22, "protocol": "tcp"}, {"qid": 888888}]}):
        assert httpx.post(qualys.url + "/emulator/detections", json=op).status_code == 200
    changed = {a.ip, b.ip, c.ip, "10.0.0.180"}

    # A dry run in between (with -server: it reads the record) writes what would be sent, nothing else.
    out = tmp_path / "dry.csv"
    dry = run_cli(f"-csvfile={out}", *send, env=env(tmp_path))
    assert dry.returncode == 0, dry.stderr
    assert the_record(tmp_path)[0] == record1 and (tmp_path / "state" / "kb.sqlite").read_bytes() == kb1
    dry_lines = out.read_text().splitlines()
    assert f'DeleteScanResult,{a.ip},"QualysGuard"' in dry_lines

    # A run the FMC cuts off half-way leaves record, watermark and KnowledgeBase cache as they were.
    fmc.close_after_data, fmc.max_size = 1, 512
    cut = run_cli(*send, env=env(tmp_path))
    assert cut.returncode == 2, cut.stderr
    assert the_record(tmp_path)[0] == record1 and (tmp_path / "state" / "kb.sqlite").read_bytes() == kb1
    fmc.close_after_data, fmc.max_size = None, 65536

    forms_before, kb_before, messages_before = len(qualys.state.detection_forms), len(qualys.state.kb_calls), len(fmc.messages)
    second = run_cli(*send, env=env(tmp_path))
    assert second.returncode == 0, second.stderr
    form = qualys.state.detection_forms[forms_before]
    assert form["vm_processed_after"] == processed_after(watermark1) and form["status"] == WITH_FIXED
    assert len(qualys.state.detection_forms) == forms_before + 1     # the four hosts fit one page
    assert qualys.state.kb_calls[kb_before:] == ["777777,888888"]   # only the QIDs the cache had not seen
    lines = sent_lines(fmc, messages_before)
    touched = {line.split(",")[1] for line in lines if line.startswith(("AddHost,", "AddScanResult,", "DeleteScanResult,"))}
    assert touched == changed
    assert [line for line in lines if line.startswith("DeleteScanResult")] == [f'DeleteScanResult,{a.ip},"QualysGuard"']
    assert lines[-2:] == [f'DeleteScanResult,{a.ip},"QualysGuard"', "ScanUpdate"]
    # four hosts (add_host: y names the cleared one too, as for a report), SetSource once in the count
    assert f"hosts=4 findings={len([x for x in lines if x.startswith('AddScanResult')])} commands={len(lines) + 1} " \
           f"cleared=1 data_messages=1/1" in second.stderr
    assert arrived(db) == truth(model)
    assert ("10.0.0.180", 888888, None, None) in truth(model)
    _, watermark2, hosts2 = the_record(tmp_path)
    assert watermark2 == qualys.state.detection_datetimes[forms_before] > watermark1
    assert hosts2 == (hosts1 - {a.ip}) | {"10.0.0.180"}


def test_a_run_with_nothing_new_says_so_does_not_contact_the_fmc_and_moves_the_watermark(tmp_path, setup):
    model, qualys, fmc, db, send = setup
    assert run_cli(*send, env=env(tmp_path)).returncode == 0
    _, watermark1, hosts1 = the_record(tmp_path)
    connections = fmc.stats.connections
    again = run_cli(*send, env=env(tmp_path))
    assert again.returncode == 0, again.stderr
    assert f"no host changed since {watermark1}" in again.stderr
    assert "nothing to send: the FMC was not contacted" in again.stderr
    assert fmc.stats.connections == connections
    _, watermark2, hosts2 = the_record(tmp_path)
    assert watermark2 > watermark1 and hosts2 == hosts1
    assert arrived(db) == truth(model)


def test_resync_pulls_everything_and_clears_what_an_incremental_run_cannot_see(tmp_path, setup):
    model, qualys, fmc, db, send = setup
    assert run_cli(*send, env=env(tmp_path)).returncode == 0
    gone = open_hosts(model)[0]
    with model.lock:            # remediated long ago, as far as vm_processed_after can tell
        model.apply({"op": "remediate", "host_id": gone.id})
        gone.processed = OLD
    incremental = run_cli(*send, env=env(tmp_path))
    assert incremental.returncode == 0 and "no host changed since" in incremental.stderr
    assert gone.ip in {ip for ip, *_ in arrived(db)}                 # not seen: still on the FMC
    forms_before = len(qualys.state.detection_forms)
    resync = run_cli(*send, "-resync", env=env(tmp_path))
    assert resync.returncode == 0, resync.stderr
    forms = qualys.state.detection_forms[forms_before:]
    assert len(forms) == 14 and all("vm_processed_after" not in f for f in forms)
    assert "full pull: -resync asks for every host" in resync.stderr
    assert arrived(db) == truth(model) and gone.ip not in {ip for ip, *_ in arrived(db)}
    _, watermark, hosts = the_record(tmp_path)
    assert watermark == qualys.state.detection_datetimes[forms_before] and gone.ip not in hosts


def test_a_resync_that_finds_nothing_still_clears_the_records_hosts_after_a_set_source(tmp_path, setup):
    model, qualys, fmc, db, send = setup
    assert run_cli(*send, env=env(tmp_path)).returncode == 0
    _, _, hosts1 = the_record(tmp_path)
    config = write_config(tmp_path, qualys.url, ip_ranges="192.0.2.0/24", max_clear="100%")   # nothing of ours left
    messages_before = len(fmc.messages)
    run = run_cli(*send[:-1], f"-plugininfo={config}", "-resync", env=env(tmp_path))
    assert run.returncode == 0, run.stderr
    assert "no open detections to send" in run.stderr and f"cleared={len(hosts1)} " in run.stderr
    payload = b"".join(fmc.messages[messages_before:]).decode().splitlines()
    assert payload[0] == "SetSource,QualysGuard" and payload[-1] == "ScanUpdate"
    assert arrived(db) == set()
    assert the_record(tmp_path)[2] == set()
