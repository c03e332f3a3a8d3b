"""Detections and KnowledgeBase over real sockets against the Qualys emulator: paging, filters, changes, limits."""
from __future__ import annotations

import threading

import httpx
import pytest
from click.testing import CliRunner

from qualys_connector.emulators.qualys.cli import main as emulator_main
from qualys_connector.emulators.qualys.detectionmodel import DetectionModel
from qualys_connector.emulators.qualys.server import QualysEmulator
from qualys_connector.errors import QualysError
from qualys_connector.qualys.detections import DETECTION_PATH, DetectionPull, detection_form, httpx_post
from qualys_connector.qualys.knowledgebase import KB_PATH, KnowledgeBase, KnowledgeBaseCache

ALL = "New,Active,Re-Opened,Fixed"


def http(emulator, password="p", header=True):
    return httpx.Client(base_url=emulator.url, auth=("u", password), timeout=30,
                        headers={"X-Requested-With": "tests"} if header else {})


def expected(model, statuses):
    """What a pull must give, read straight from the emulator's model (not from any XML)."""
    out = {}
    for h in model.hosts:
        dets = sorted((d.qid, d.type, d.severity, d.port, d.protocol, d.status)
                      for d in h.detections if d.status in statuses)
        if dets:
            out[h.id] = (h.ip or h.ipv6, h.os, h.dns, dets)
    return out


def pulled(hosts):
    return {h.id: (h.ip, h.os, h.dns, sorted((d.qid, d.type, d.severity, d.port, d.protocol, d.status)
                                             for d in h.detections)) for h in hosts}


@pytest.fixture
def qualys():
    model = DetectionModel.generate(57, detections_per_host=4, seed=7)
    with QualysEmulator(users={"u": "p"}, detections=model) as emulator:
        yield emulator


def test_a_multi_page_pull_gives_exactly_the_emulators_model(qualys, tmp_path):
    with http(qualys) as client:
        pull = DetectionPull(httpx_post(client), detection_form(truncation_limit=10, statuses=ALL),
                             tmpdir=str(tmp_path))
        got = pulled(pull)
    want = expected(qualys.detections, ALL.split(","))
    assert got == want and len(want) == 57
    assert any(":" in ip for ip, *_ in got.values())               # IPv6-only hosts came through
    assert pull.pages == qualys.state.detection_pages == 6
    assert list(tmp_path.iterdir()) == []


def test_fixed_detections_come_only_when_asked_and_hosts_without_a_match_are_left_out(qualys, tmp_path):
    model = qualys.detections
    only_fixed = model.hosts[3]
    for d in only_fixed.detections:
        d.status = "Fixed"
    with http(qualys) as client:
        got = pulled(DetectionPull(httpx_post(client), detection_form(truncation_limit=1000), tmpdir=str(tmp_path)))
    assert got == expected(model, ("New", "Active", "Re-Opened"))
    assert only_fixed.id not in got
    assert all(d[5] != "Fixed" for host in got.values() for d in host[3])


def test_a_change_through_the_control_call_is_all_the_next_incremental_pull_gets(qualys, tmp_path):
    model = qualys.detections
    with http(qualys) as client:
        first = DetectionPull(httpx_post(client), detection_form(truncation_limit=20, statuses=ALL), tmpdir=str(tmp_path))
        assert len(pulled(first)) == 57
        a, b = model.hosts[5], model.hosts[40]
        open_qid = next(d.qid for d in b.detections if d.status != "Fixed")
        for op in ({"op": "remediate", "host_id": a.id}, {"op": "fix", "host_id": b.id, "qid": open_qid},
                   {"op": "add_host", "ip": "192.0.2.9", "dns": "new.example.net",
                    "detections": [{"qid": 10000, "port": 8443, "protocol": "tcp"}]}):
            answer = httpx.post(qualys.url + "/emulator/detections", json=op)
            assert answer.status_code == 200, answer.text
        new_id = answer.json()["host_id"]
        since = DetectionPull(httpx_post(client), detection_form(processed_after=first.datetime, statuses=ALL),
                              tmpdir=str(tmp_path))
        got = pulled(since)
    assert sorted(got) == sorted([a.id, b.id, new_id])
    assert {d[5] for d in got[a.id][3]} == {"Fixed"}
    assert (open_qid, "Fixed") in {(d[0], d[5]) for d in got[b.id][3]}
    assert got[new_id][0] == "192.0.2.9" and got[new_id][3] == [(10000, "Confirmed", 1, 8443, "tcp", "New")]
    assert got == {k: v for k, v in expected(model, ALL.split(",")).items() if k in got}


def test_a_bad_control_call_is_one_clear_json_error(qualys):
    answer = httpx.post(qualys.url + "/emulator/detections", json={"op": "fix", "host_id": 1, "qid": 2})
    assert answer.status_code == 400 and answer.json() == {"error": "no host with ID 1"}
    assert httpx.get(qualys.url + "/emulator/detections").json()["hosts"][0]["id"] == 100001


def test_ips_show_results_and_the_page_cap_are_honoured(tmp_path):
    model = DetectionModel.generate(12, detections_per_host=3, fixed_every=0)
    with QualysEmulator(users={"u": "p"}, detections=model, detection_page_cap=5) as qualys, http(qualys) as client:
        got = pulled(DetectionPull(httpx_post(client), detection_form(ips="10.0.0.2,10.0.0.4-10.0.0.5"),
                                   tmpdir=str(tmp_path)))
        assert sorted(ip for ip, *_ in got.values()) == ["10.0.0.2", "10.0.0.4", "10.0.0.5"]
        body = client.post(DETECTION_PATH, data={"action": "list", "truncation_limit": "100000",
                                                 "show_results": "0"}).text
        assert body.count("<HOST>") == 5 and "<RESULTS>" not in body
        assert "<CODE>1980</CODE>" in body and "id_min=100006" in body and "truncation_limit=5" in body
        with_results = client.post(DETECTION_PATH, data={"action": "list", "show_results": "1"}).text
        assert "<RESULTS>" in with_results
        bad = client.post(DETECTION_PATH, data={"action": "list", "vm_processed_after": "yesterday"})
        assert bad.status_code == 400 and "<CODE>1905</CODE>" in bad.text


def test_the_detection_call_checks_auth_and_the_header_like_every_qualys_call(qualys, tmp_path):
    with http(qualys, password="wrong") as client:
        with pytest.raises(QualysError, match="CODE 2000") as info:
            list(DetectionPull(httpx_post(client), detection_form(), tmpdir=str(tmp_path)))
        assert info.value.status == 401
    with http(qualys, header=False) as client:
        answer = client.post(DETECTION_PATH, data={"action": "list"})
        assert answer.status_code == 400 and "X-Requested-With" in answer.text
    qualys.inject("409-1965")
    with http(qualys) as client:
        with pytest.raises(QualysError, match="CODE 1965") as info:
            list(DetectionPull(httpx_post(client), detection_form(), tmpdir=str(tmp_path)))
        assert info.value.status == 409


def test_knowledge_base_lookups_come_in_batches_of_500_and_are_cached(tmp_path):
    model = DetectionModel.generate(3, distinct_qids=1200)
    with QualysEmulator(users={"u": "p"}, detections=model) as qualys, http(qualys) as client:
        post = httpx_post(client, "the KnowledgeBase call")
        with KnowledgeBaseCache(str(tmp_path / "kb.sqlite")) as cache:
            got = KnowledgeBase(post, cache, tmpdir=str(tmp_path)).lookup(model.kb)
        assert [len(ids.split(",")) for ids in qualys.state.kb_calls] == [500, 500, 200]
        for qid, vuln in model.kb.items():
            assert got[qid].title == (vuln.title or f"QID {qid}")
            assert (got[qid].cve_ids, got[qid].bugtraq_ids) == (tuple(vuln.cve_ids), tuple(vuln.bugtraq_ids))
            assert got[qid].diagnosis == vuln.diagnosis and got[qid].modified == vuln.modified
        httpx.post(qualys.url + "/emulator/detections", json={"op": "add_detection", "host_id": 100001, "qid": 999999})
        with KnowledgeBaseCache(str(tmp_path / "kb.sqlite")) as cache:
            kb = KnowledgeBase(post, cache, tmpdir=str(tmp_path))
            again = kb.lookup([10000, 10037, 999999])
            assert qualys.state.kb_calls[3:] == ["999999"]          # only the QID the cache had not seen
            assert again[999999].title == "Emulated vulnerability 999999"
            assert kb.refresh() == 0            # nothing changed since the newest cached
            with model.lock:                    # Qualys revises one QID
                model.kb[10037].title, model.kb[10037].modified = "Revised title", model.stamp()
            assert kb.refresh() == 1
            assert cache.get_many([10037])[10037].title == "Revised title"
        assert qualys.state.kb_calls[4:] == ["", ""]                 # refreshes name no ids


def test_a_second_knowledge_base_call_while_one_runs_is_refused_with_409(tmp_path):
    with QualysEmulator(users={"u": "p"}, kb_delay=0.5) as qualys:
        answers = []

        def call():
            with http(qualys) as client:
                answers.append(client.post(KB_PATH, data={"action": "list", "ids": "10000"}))
        threads = [threading.Thread(target=call) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200, 409]
        refused = next(a for a in answers if a.status_code == 409)
        assert "<CODE>1960</CODE>" in refused.text and refused.headers["X-Concurrency-Limit-Limit"] == "1"
        assert len(qualys.state.kb_calls) == 1


def test_the_command_line_changes_and_saves_the_model_between_runs(tmp_path):
    saved = tmp_path / "model.json"
    runner = CliRunner()
    result = runner.invoke(emulator_main, ["--detection-hosts", "4", "--change", "remediate:100002",
                                           "--change", "add-detection:100001:10037:443/tcp",
                                           "--change", "add-host:2001:db8::99", "--save-detections", str(saved)])
    assert result.exit_code == 0, result.output
    model = DetectionModel.load(str(saved))
    assert [h.id for h in model.hosts] == [100001, 100002, 100003, 100004, 100005]
    assert {d.status for d in model.host(100002).detections} == {"Fixed"}
    assert (10037, 443, "tcp", "New") in {(d.qid, d.port, d.protocol, d.status) for d in model.host(100001).detections}
    assert model.host(100005).ipv6 == "2001:db8::99"
    again = runner.invoke(emulator_main, ["--detections", str(saved), "--change", "fix:100001:10037",
                                          "--save-detections", str(saved)])
    assert again.exit_code == 0, again.output
    assert "Fixed" in {d.status for d in DetectionModel.load(str(saved)).host(100001).detections if d.qid == 10037}
    bad = runner.invoke(emulator_main, ["--detections", str(saved), "--change", "fix:1:2"])
    assert bad.exit_code == 1 and "no host with ID 1" in bad.output and "Traceback" not in bad.output
    missing = runner.invoke(emulator_main, ["--detections", str(tmp_path / "none.json")])
    assert missing.exit_code == 1 and "cannot read" in missing.output
