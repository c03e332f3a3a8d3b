"""TLV framing of the host input service: type (uint32 BE), length (uint32 BE), payload.

Pure: ``encode_frame`` makes bytes, ``FrameDecoder`` turns any split of received bytes back
into frames. The caller owns the socket. Spec: ``docs/host-input.md`` §2.1.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

MAX_SIZE = 1
VERSION = 2
DATA = 3
ERROR = 4

TYPE_NAMES = {MAX_SIZE: "MAX_SIZE", VERSION: "VERSION", DATA: "DATA", ERROR: "ERROR"}

PROTOCOL_VERSION = 1
_HEADER = struct.Struct(">II")
HEADER_SIZE = _HEADER.size


class FramingError(ValueError):
    """The byte stream is not valid TLV: unknown type or a length beyond what we accept."""


@dataclass(frozen=True, slots=True)
class Frame:
    type: int
    payload: bytes = b""

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type, f"type {self.type}")

    def uint32(self) -> int:
        """The payload of VERSION and MAX_SIZE: one big-endian uint32."""
        if len(self.payload) != 4:
            raise FramingError(f"{self.type_name} frame carries {len(self.payload)} bytes, expected 4")
        return struct.unpack(">I", self.payload)[0]


def encode_frame(frame_type: int, payload: bytes = b"") -> bytes:
    return _HEADER.pack(frame_type, len(payload)) + payload


def version_frame(version: int = PROTOCOL_VERSION) -> bytes:
    return encode_frame(VERSION, struct.pack(">I", version))


def max_size_frame(size: int) -> bytes:
    return encode_frame(MAX_SIZE, struct.pack(">I", size))


def data_frame(payload: bytes) -> bytes:
    return encode_frame(DATA, payload)


class FrameDecoder:
    """Incremental decoder: ``feed`` bytes as they arrive, get whole frames out.

    ``max_length`` bounds what a peer can make us buffer: a hostile or confused peer that
    announces a 4 GB frame is a protocol error, not an allocation. ``strict`` refuses frame
    types other than 1-4 (the server side); a client reading replies passes ``strict=False``,
    because the type of the FMC's reply frame is not confirmed (docs/host-input.md §2.1 [?]: the SDK reads
    any type but MAX_SIZE alike).
    """

    def __init__(self, max_length: int = 16 * 1024 * 1024, strict: bool = True):
        self.max_length, self.strict = max_length, strict
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= HEADER_SIZE:
            frame_type, length = _HEADER.unpack_from(self._buffer)
            if self.strict and frame_type not in TYPE_NAMES:
                raise FramingError(f"unknown frame type {frame_type}")
            if length > self.max_length:
                raise FramingError(f"{TYPE_NAMES.get(frame_type, f'type {frame_type}')} frame of {length} bytes exceeds "
                                   f"the limit of {self.max_length}")
            if len(self._buffer) < HEADER_SIZE + length:
                break
            payload = bytes(self._buffer[HEADER_SIZE:HEADER_SIZE + length])
            del self._buffer[:HEADER_SIZE + length]
            frames.append(Frame(frame_type, payload))
        return frames

    @property
    def pending(self) -> int:
        """Bytes received that do not make a whole frame yet (non-zero at EOF = truncated)."""
        return len(self._buffer)
