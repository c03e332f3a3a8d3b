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


def random_lines(rng, count):
    kinds = [lambda: b"AddHost,10.0.0.%d\n" % rng.randint(0, 255),
             lambda: b'AddScanResult,10.0.0.1,"Q",1,80,tcp,"' + b"x" * rng.randint(0, 300) + b'","d","cve_ids:","bugtraq_ids:"\n',
             lambda: b"SetSource,S%d\n" % rng.randint(0, 3), lambda: b"SetDomain,D%d\n" % rng.randint(0, 3),
             lambda: b"SetMap:M,AddHost,1.2.3.4\n", lambda: b"SetMap,M\n", lambda: b"SetOS,1.2.3.4,V,P,1\n",
             lambda: b"# comment\n", lambda: b"\n", lambda: b"  AddHost , 1.2.3.4\r\n", lambda: b'"SetSource",Q\n',
             lambda: b"ScanFlush\n"]
    weights = [30, 30, 2, 1, 1, 1, 2, 2, 1, 1, 1, 1]
    return [rng.choices(kinds, weights)[0]() for _ in range(count)]


@pytest.mark.parametrize("seed", range(40))
def test_blocks_of_lines_are_cut_exactly_as_line_by_line(seed):
    import random
    rng = random.Random(seed)
    lines = random_lines(rng, rng.randint(0, 400))
    if lines and rng.random() < 0.3:
        lines[-1] = lines[-1].rstrip(b"\n")        # a last line without LF
    max_size = rng.choice([400, 512, 1000, 4096])
    try:
        expected = batches(lines, max_size)
    except LineTooLongError as exc:
        expected = ("too long", exc.line_number)
    data = b"".join(lines)
    b = Batcher(max_size)
    try:
        got, pos = [], 0
        while pos < len(data):                      # blocks of whole lines, of random size
            end = data.rfind(b"\n", pos, pos + rng.randint(1, 3000)) + 1 or len(data)
            if end <= pos:
                end = data.find(b"\n", pos) + 1 or len(data)
            got += b.add_block(data[pos:end])
            pos = end
        got += b.finish()
    except LineTooLongError as exc:
        got = ("too long", exc.line_number)
    assert got == expected
