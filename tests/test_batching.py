"""Cutting lines into DATA messages (README "On the wire")."""
import pytest

from qualys_connector.hostinput.batching import Batcher, LineTooLongError, command_name


def batches(lines, max_size):
    b = Batcher(max_size)
    out = []
    for line in lines:
        out += b.add(line)
    return out + b.finish()


def body(payloads):
    return [l for p in payloads for l in p.splitlines(keepends=True) if not l.startswith(b"Set")]


def test_messages_respect_max_size_keep_order_and_never_split_lines():
    lines = [b"SetSource,QualysGuard\n"] + [b"AddHost,10.0.%d.%d\n" % (i // 250, i % 250) for i in range(3000)] + [b"ScanFlush\n"]
    payloads = batches(lines, 512)
    assert all(len(p) <= 512 for p in payloads)
    assert all(p.endswith(b"\n") for p in payloads)
    assert body(payloads) == lines[1:]


def test_header_lines_start_every_message():
    lines = [b"SetDomain,Global\\Leaf\n", b"SetSource,QualysGuard\n"] + [b"AddHost,10.0.0.%d\n" % i for i in range(200)]
    payloads = batches(lines, 200)
    assert len(payloads) > 5
    for p in payloads:
        assert p.startswith(b"SetDomain,Global\\Leaf\nSetSource,QualysGuard\n")


def test_header_lines_repeat_in_the_order_they_were_last_set():
    lines = [b"SetSource,A\n", b"SetDomain,Global\\Leaf\n", b"SetSource,B\n"] + [b"AddHost,10.0.0.%d\n" % i for i in range(60)]
    payloads = batches(lines, 120)
    assert all(p.startswith(b"SetDomain,Global\\Leaf\nSetSource,B\n") for p in payloads)


def test_a_new_source_midway_replaces_the_header_from_then_on():
    lines = [b"SetSource,A\n", b"AddHost,1.1.1.1\n", b"SetSource,B\n"] + [b"AddHost,1.1.1.%d\n" % i for i in range(50)]
    payloads = batches(lines, 100)
    assert payloads[0].startswith(b"SetSource,A\n")
    assert all(p.startswith(b"SetSource,B\n") for p in payloads[1:])


def test_a_line_that_can_never_fit_is_refused():
    with pytest.raises(LineTooLongError) as info:
        batches([b"SetSource,X\n", b"AddHost," + b"1" * 600 + b"\n"], 512)
    assert info.value.line_number == 2


def test_command_name_sees_through_setmap_and_quotes():
    assert command_name(b'SetMap:M,"SetOS",1.2.3.4\n') == "SetOS"
    assert command_name(b"# comment\n") == ""
    assert command_name(b"  AddHost , 1.2.3.4\n") == "AddHost"
