"""TLV framing (docs/host-input.md §2.1), checked against hand-packed bytes."""
import struct

import pytest

from qualys_connector.hostinput import tlv


def test_version_frame_is_type_2_length_4_value_1():
    assert tlv.version_frame() == struct.pack(">III", 2, 4, 1)


def test_max_size_and_data_frames():
    assert tlv.max_size_frame(65536) == struct.pack(">III", 1, 4, 65536)
    assert tlv.data_frame(b"ScanFlush\n") == struct.pack(">II", 3, 10) + b"ScanFlush\n"


def test_decoder_copes_with_any_split_of_the_stream():
    stream = tlv.max_size_frame(512) + tlv.data_frame(b"Done processing 1 commands.\n") + tlv.encode_frame(4, b"")
    for cut in range(len(stream) + 1):
        for cut2 in range(cut, len(stream) + 1, 7):
            decoder = tlv.FrameDecoder()
            frames = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:cut2]) + decoder.feed(stream[cut2:])
            assert [f.type for f in frames] == [tlv.MAX_SIZE, tlv.DATA, tlv.ERROR]
            assert frames[0].uint32() == 512 and decoder.pending == 0


def test_a_hostile_length_is_refused_without_buffering_it():
    decoder = tlv.FrameDecoder(max_length=1024)
    with pytest.raises(tlv.FramingError):
        decoder.feed(struct.pack(">II", 3, 2**31))


def test_unknown_frame_types_are_refused_unless_not_strict():
    with pytest.raises(tlv.FramingError):
        tlv.FrameDecoder().feed(struct.pack(">II", 9, 0))
    (frame,) = tlv.FrameDecoder(strict=False).feed(struct.pack(">II", 9, 2) + b"ok")
    assert frame.type == 9 and frame.payload == b"ok" and frame.type_name == "type 9"


def test_truncated_stream_leaves_pending_bytes():
    decoder = tlv.FrameDecoder()
    assert decoder.feed(tlv.data_frame(b"abc")[:-1]) == []
    assert decoder.pending == 10
