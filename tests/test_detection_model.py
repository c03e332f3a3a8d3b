"""The Qualys emulator's detections model: its clock, its changes, its paging, its files and --change texts."""
from __future__ import annotations

import click
import pytest

from qualys_connector.emulators.qualys.cli import parse_change
from qualys_connector.emulators.qualys.detectionmodel import (Detection, DetectionModel, Host, ModelError, Vuln,
                                                              parse_iso)


def small():
    return DetectionModel([Host(3, "10.0.0.3", detections=[Detection(5, status="Fixed")]),
                           Host(1, "10.0.0.1", detections=[Detection(5), Detection(6, port=22, protocol="tcp")]),
                           Host(2, None, "2001:db8::2", detections=[Detection(6, status="New")])],
                          [Vuln(5, "five"), Vuln(6, "six")])


def test_the_clock_never_gives_the_same_second_twice():
    model = small()
    stamps = [model.stamp() for _ in range(5)]
    assert stamps == sorted(set(stamps)) and len(stamps) == 5


def test_a_change_is_later_than_every_datetime_answered_before_it():
    model = small()
    answered = parse_iso(model.stamp())
    host = model.apply({"op": "fix", "host_id": 1, "qid": 6})
    assert parse_iso(host.processed) > answered
    assert [d.status for d in host.detections] == ["Active", "Fixed"]
    page, _ = model.select(after=answered, statuses=("Fixed",), limit=10)
    assert [h.id for h in page] == [1] and [d.qid for d in page[0].detections] == [6]


def test_select_pages_by_id_and_leaves_out_hosts_without_a_matching_detection():
    model = small()
    assert model.select(limit=1) == ([model.host(1).__class__(**{**model.host(1).__dict__})], 2)
    page, next_id = model.select(id_min=2, limit=1)
    assert [h.id for h in page] == [2] and next_id is None          # host 3 has only a Fixed detection
    page, next_id = model.select(ips={"2001:db8::2"}, statuses=("New", "Fixed"), limit=5)
    assert [h.id for h in page] == [2] and next_id is None


def test_remediate_add_detection_and_add_host():
    model = small()
    assert {d.status for d in model.apply({"op": "remediate", "host_id": 1}).detections} == {"Fixed"}
    det = model.apply({"op": "add_detection", "host_id": 2, "qid": 77, "port": 443, "protocol": "tcp"}).detections[-1]
    assert (det.qid, det.port, det.status) == (77, 443, "New") and model.kb[77].title == "Emulated vulnerability 77"
    host = model.apply({"op": "add_host", "ip": "2001:db8::9"})
    assert (host.id, host.ip, host.ipv6) == (4, None, "2001:db8::9") and model.host(4) is host


@pytest.mark.parametrize("op, message", [
    ({"op": "fix", "host_id": 1, "qid": 99}, "no open detection of QID 99"),
    ({"op": "remediate", "host_id": 9}, "no host with ID 9"),
    ({"op": "remediate"}, "op remediate needs host_id"),
    ({"op": "add_host", "ip": "not-an-ip"}, "op add_host:"),
    ({"op": "add_detection", "host_id": 1, "qid": 1, "type": "Odd"}, "type 'Odd'"),
    ({"op": "explode"}, "unknown op 'explode'"),
])
def test_a_bad_change_is_one_clear_error(op, message):
    with pytest.raises(ModelError, match=message):
        small().apply(op)


def test_a_saved_model_loads_back_the_same(tmp_path):
    model = DetectionModel.generate(20, seed=3)
    model.save(str(tmp_path / "m.json"))
    assert DetectionModel.load(str(tmp_path / "m.json")).to_json() == model.to_json()
    (tmp_path / "bad.json").write_text('{"hosts": [{"idx": 1}]}')
    with pytest.raises(ModelError, match="is not a detections model"):
        DetectionModel.load(str(tmp_path / "bad.json"))


def test_generated_models_repeat_with_the_seed_and_have_ipv6_only_hosts():
    a, b = DetectionModel.generate(30, seed=5), DetectionModel.generate(30, seed=5)
    assert a.to_json() == b.to_json() != DetectionModel.generate(30, seed=6).to_json()
    assert sum(1 for h in a.hosts if h.ip is None and h.ipv6) == 3
    assert any(v.title == "" for v in a.kb.values())                # the client must name it 'QID n'


def test_change_texts_of_the_command_line():
    assert parse_change("remediate:7") == {"op": "remediate", "host_id": 7}
    assert parse_change("fix:7:38170") == {"op": "fix", "host_id": 7, "qid": 38170}
    assert parse_change("add-detection:7:6:53/udp") == {"op": "add_detection", "host_id": 7, "qid": 6,
                                                         "port": 53, "protocol": "udp"}
    assert parse_change("add-host:2001:db8::1") == {"op": "add_host", "ip": "2001:db8::1"}
    with pytest.raises(click.BadParameter, match="expected remediate:HOST_ID"):
        parse_change("fix:seven")
