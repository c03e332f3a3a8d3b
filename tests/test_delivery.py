"""Delivery of a host input file through a client, with a fake client at the I/O seam."""
import pytest

from qualys_connector.delivery import DeliveryStats, send_file
from qualys_connector.errors import FMCProtocolError, FMCRejected, LineTooLong
from qualys_connector import hostinput
from qualys_connector.hostinput import tlv
from qualys_connector.hostinput.client import ServerReply


class FakeClient:
    """Records DATA payloads and answers like the FMC; can fail on a chosen message."""

    where = "fake:8307"

    def __init__(self, max_size=65536, errors_on=(), drop_on=None):
        self.max_size, self.errors_on, self.drop_on = max_size, set(errors_on), drop_on
        self.payloads, self.events = [], []

    def send_data(self, payload, meanwhile=None):
        n = len(self.payloads) + 1
        if self.drop_on == n:
            raise FMCProtocolError("the FMC closed the connection during a reply")
        self.payloads.append(payload)
        self.events.append(f"sent {n}")
        if meanwhile is not None:
            meanwhile()
            self.events.append(f"prepared after {n}")
        self.events.append(f"reply {n}")
        count = payload.count(b"\n")
        errors = ["Failed to Execute Command: bad"] if n in self.errors_on else []
        return ServerReply(tlv.DATA, hostinput.parse_reply(hostinput.format_reply(errors, count)))


def spool(tmp_path, lines):
    path = tmp_path / "spool.csv"
    path.write_bytes(b"".join(hostinput.encode_line(c) for c in lines))
    return str(path)


def scan(i, desc="d"):
    return hostinput.add_scan_result(f"10.0.0.{i % 250}", "QualysGuard", i, 80, "tcp", f"t{i}", desc, [], [])


def test_everything_is_sent_once_in_order(tmp_path):
    lines = [hostinput.set_source("QualysGuard")] + [scan(i) for i in range(500)] + [hostinput.scan_flush()]
    client = FakeClient(max_size=1000)
    stats = send_file(spool(tmp_path, lines), client, shorten=False)
    body = [l for p in client.payloads for l in p.splitlines() if not l.startswith(b"SetSource")]
    assert body == [hostinput.encode(c).encode() for c in lines[1:]]
    assert stats.messages_acked == stats.messages_total == len(client.payloads)


def test_scan_results_are_shortened_to_fit_only_when_allowed(tmp_path):
    lines = [hostinput.set_source("QualysGuard"), scan(1, "x" * 5000), hostinput.scan_flush()]
    path = spool(tmp_path, lines)
    with pytest.raises(LineTooLong):
        send_file(path, FakeClient(max_size=1024), shorten=False)
    client = FakeClient(max_size=1024)
    stats = send_file(path, client, shorten=True)
    assert stats.shortened == 1 and all(len(p) <= 1024 for p in client.payloads)
    sent = hostinput.decode(client.payloads[0].splitlines()[1].decode())
    assert sent.arg("desc").endswith("...") and sent.arg("vuln_id") == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spool.csv"]   # the shortened copy is gone


def test_error_replies_are_counted_and_raised_after_everything_was_sent(tmp_path):
    lines = [hostinput.set_source("Q")] + [scan(i) for i in range(100)]
    client = FakeClient(max_size=600, errors_on={2})
    stats = DeliveryStats()
    with pytest.raises(FMCRejected) as info:
        send_file(spool(tmp_path, lines), client, shorten=False, stats=stats)
    assert stats.messages_acked == stats.messages_total and stats.replies_with_errors == 1
    assert "Failed to Execute Command" in str(info.value)


def test_a_dropped_connection_says_how_many_messages_were_acknowledged(tmp_path):
    lines = [hostinput.set_source("Q")] + [scan(i) for i in range(100)]
    stats = DeliveryStats()
    with pytest.raises(FMCProtocolError) as info:
        send_file(spool(tmp_path, lines), FakeClient(max_size=600, drop_on=4), shorten=False, stats=stats)
    assert f"3 of {stats.messages_total} DATA messages were acknowledged" in str(info.value)


def test_a_line_shortened_deep_in_a_large_file_keeps_every_line_before_and_after(tmp_path, monkeypatch):
    from qualys_connector import delivery
    monkeypatch.setattr(delivery, "BLOCK", 4096)        # many blocks: the copy starts mid-file
    lines = [hostinput.set_source("QualysGuard")] + [scan(i) for i in range(400)]
    lines[300] = scan(300, "y" * 3000)
    lines.append(hostinput.scan_flush())
    path = spool(tmp_path, lines)
    client = FakeClient(max_size=1024)
    stats = send_file(path, client, shorten=True)
    body = [l for p in client.payloads for l in p.splitlines() if not l.startswith(b"SetSource")]
    expected = [hostinput.encode(c).encode() for c in lines[1:]]
    assert len(body) == len(expected) == stats.lines_total - 1
    assert body[:299] == expected[:299] and body[300:] == expected[300:]
    assert body[299] == hostinput.fit_line(lines[300], 1024 - len(b"SetSource,QualysGuard\n"))[0].rstrip(b"\n")
    assert stats.shortened == 1 and stats.messages_acked == stats.messages_total == len(client.payloads)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spool.csv"]


def test_a_too_long_line_in_a_later_block_is_refused_with_its_line_number(tmp_path, monkeypatch):
    from qualys_connector import delivery
    monkeypatch.setattr(delivery, "BLOCK", 4096)
    lines = [hostinput.set_source("QualysGuard")] + [hostinput.add_host(f"10.0.{i // 250}.{i % 250}") for i in range(900)]
    lines[700] = hostinput.set_os("10.0.0.1", "V", "P" * 2000, "1")
    client = FakeClient(max_size=1024)
    with pytest.raises(LineTooLong) as info:
        send_file(spool(tmp_path, lines), client, shorten=True)
    assert "line 701 " in info.value.message and client.payloads == []


def test_the_next_message_is_cut_while_the_fmc_works_on_the_one_just_sent():
    from qualys_connector.delivery import _send_ahead
    events = []

    def payloads():
        for i in (1, 2, 3):
            events.append(f"cut {i}")
            yield i

    def deliver(payload, prepare_next):
        events.append(f"send {payload}")
        prepare_next()
        events.append(f"reply {payload}")

    _send_ahead(payloads(), deliver)
    assert events == ["cut 1", "send 1", "cut 2", "reply 1", "send 2", "cut 3", "reply 2", "send 3", "reply 3"]


def test_a_send_prepares_each_next_message_between_sending_one_and_reading_its_reply(tmp_path):
    lines = [hostinput.set_source("QualysGuard")] + [scan(i) for i in range(300)] + [hostinput.scan_flush()]
    client = FakeClient(max_size=1000)
    stats = send_file(spool(tmp_path, lines), client, shorten=False)
    n = stats.messages_total
    assert n > 10 and client.events == [e for i in range(1, n + 1)
                                        for e in (f"sent {i}", f"prepared after {i}", f"reply {i}")]
    assert stats.lines_acked == sum(p.count(b"\n") for p in client.payloads)
