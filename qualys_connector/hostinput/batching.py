"""Cut a stream of host input lines into DATA messages: pure, no I/O.

Rules (README "On the wire", docs/host-input.md §2.1/§2.3): every DATA payload is at most the server's
MAX_SIZE bytes; a line is never split; the order of lines is kept exactly (the Perl SDK
regrouped scan results by IP and let other lines overtake them); and the current ``Set*``
header lines are repeated at the top of every message, because the server resets
SetDomain/SetSourceType per message and Cisco's own splitter repeats them all. They are
repeated in the order they were last set, so a SetSource given after a SetDomain still comes
after it (SetSource needs the leaf domain to be named first).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from .codec import HEADER_COMMANDS

# A line add_block cannot take in bulk: one that does not start with a letter (blanks, quotes,
# comments, CR) or starts with Set + S/D/M (it may be a header command: SetSource, SetSourceType,
# SetDomain, SetMap; SetService comes along). Every other line is a body line for command_name.
# UNUSUAL_LINE finds the next such line after an LF (the literal LF first keeps the search fast).
UNUSUAL_START = re.compile(rb"[^A-Za-z\n]|Set[SDM]")
UNUSUAL_LINE = re.compile(rb"\n(?:[^A-Za-z\n]|Set[SDM])")


class LineTooLongError(ValueError):
    """A line (with the header lines it needs) can never fit a DATA message."""

    def __init__(self, line_number: int, length: int, limit: int, command: str):
        super().__init__(f"line {line_number} ({command}) needs {length} bytes with its header "
                         f"lines; the FMC accepts at most {limit} per message")
        self.line_number, self.length, self.limit, self.command = line_number, length, limit, command


def command_name(line: bytes) -> str:
    """The command of an encoded line, looking through a ``SetMap:`` prefix; '' for comments."""
    comma = line.find(b",")
    if comma > 0:
        first = line[:comma]
        if first.isalpha():             # the common case: a bare command name, no quotes or spaces
            return first.decode("ascii")
    stripped = line.strip()
    if not stripped or stripped.startswith(b"#"):
        return ""
    first = stripped.split(b",", 1)[0].strip().strip(b'"')
    if first.startswith(b"SetMap:"):
        rest = stripped.split(b",", 2)
        first = rest[1].strip().strip(b'"') if len(rest) > 1 else b""
    return first.decode("utf-8", "replace")


@dataclass
class Batcher:
    """Feed lines with ``add``; take finished DATA payloads from its return value and ``finish``."""

    max_size: int
    headers: dict[str, bytes] = field(default_factory=dict)
    _buffer: bytearray = field(default_factory=bytearray)
    _body_lines: int = 0
    _line_number: int = 0
    _emitted: int = 0
    _header_size: int = 0

    def copy(self) -> "Batcher":
        """An independent copy, to go back to if a block turns out to need care."""
        return replace(self, headers=dict(self.headers), _buffer=bytearray(self._buffer))

    def _header_bytes(self) -> bytes:
        return b"".join(self.headers.values())

    @property
    def lines(self) -> int:
        """Lines added so far."""
        return self._line_number

    def header_size(self) -> int:
        return self._header_size

    def _emit(self) -> bytes:
        payload = bytes(self._buffer)
        self._buffer = bytearray(self._header_bytes())
        self._body_lines = 0
        self._emitted += 1
        return payload

    def add(self, line: bytes) -> list[bytes]:
        if not line.endswith(b"\n"):
            line += b"\n"
        self._line_number += 1
        name = command_name(line)
        out: list[bytes] = []
        if name in HEADER_COMMANDS:
            self.headers.pop(name, None)      # moves to the end: the order of the latest settings
            self.headers[name] = line
            self._header_size = sum(len(v) for v in self.headers.values())
            if self._body_lines == 0:
                self._buffer = bytearray(self._header_bytes())
                if len(self._buffer) > self.max_size:
                    raise self._refuse(len(self._buffer), name)
                return out
        elif len(line) + self.header_size() > self.max_size:
            raise self._refuse(len(line) + self.header_size(), name or "comment")
        if len(self._buffer) + len(line) > self.max_size:
            out.append(self._emit())
            if name in HEADER_COMMANDS:
                return out  # the fresh buffer already starts with the new header line
        self._buffer += line
        if name not in HEADER_COMMANDS:
            self._body_lines += 1
        return out

    def _refuse(self, length: int, name: str) -> LineTooLongError:
        """The error for the line just counted, which is not added (a shortened one may follow)."""
        self._line_number -= 1
        return LineTooLongError(self._line_number + 1, length, self.max_size, name)

    def add_block(self, block: bytes) -> list[bytes]:
        """``add`` for every line of ``block`` (whole lines), cutting runs of body lines in C.

        Between the unusual lines (which go through ``add`` one by one), a message is filled with
        the longest run of whole lines that fits (one ``rfind``), so the result is exactly what
        ``add`` gives line by line, at the cost of a few calls per DATA message.
        """
        out: list[bytes] = []
        pos, n = 0, len(block)
        while pos < n:
            if UNUSUAL_START.match(block, pos):
                stop = pos
            else:
                unusual = UNUSUAL_LINE.search(block, pos)
                stop = n if unusual is None else unusual.start() + 1
            if stop == pos:                       # an unusual line: the careful way
                end = block.find(b"\n", pos) + 1 or n
                out += self.add(block[pos:end])
                pos = end
                continue
            if not block.endswith(b"\n", 0, stop):
                stop = block.rfind(b"\n", pos, stop) + 1 or pos   # a last line without LF: add() it
                if stop == pos:
                    out += self.add(block[pos:n])
                    pos = n
                    continue
            while pos < stop:                     # body lines from pos to stop, all ending in LF
                room = self.max_size - len(self._buffer)
                end = stop if stop - pos <= room else block.rfind(b"\n", pos, pos + room) + 1
                if end <= pos:                    # the next line does not fit: emit, or refuse it
                    nl = block.find(b"\n", pos) + 1
                    out += self.add(block[pos:nl])
                    pos = nl
                    continue
                lines = block.count(b"\n", pos, end)
                self._buffer += block[pos:end]
                self._body_lines += lines
                self._line_number += lines
                pos = end
        return out

    def finish(self) -> list[bytes]:
        """The last message; a file of header lines only is still sent once, as the SDK did."""
        if self._body_lines or (self._emitted == 0 and self._buffer):
            return [self._emit()]
        return []
