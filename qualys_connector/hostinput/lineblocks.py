"""A host input file read in blocks of whole lines, for the C-speed checks and batching.

Checking or batching a file of millions of lines one line at a time costs a Python round per
line; in blocks of about a megabyte, ``codec.check_lines`` and ``Batcher.add_block`` do the work
per block. Memory stays at one block, whatever the size of the file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from ..errors import InputFileError

BLOCK = 1 << 20


def line_blocks(fh: BinaryIO, size: int | None = None) -> Iterator[bytes]:
    """Blocks of about ``size`` (BLOCK) bytes, each ending with a whole line (only the last may lack its LF)."""
    size = size or BLOCK
    while True:
        block = fh.read(size)
        if not block:
            return
        if not block.endswith(b"\n"):
            block += fh.readline()
        yield block


@dataclass(frozen=True)
class CheckedFile:
    """A file a plugin checked whole and hands on to be sent as it is, instead of copying it.

    Sending a user's large host input file straight from where it lies spares writing a copy
    and reading it back. What was checked is what goes out: the file must still be the same
    file of the same size and modification time when the send starts (``still_same``).
    """

    path: str
    identity: tuple[int, int, int, int]     # device, inode, size, mtime in ns

    @classmethod
    def of(cls, path: str, fh: BinaryIO) -> "CheckedFile":
        st = os.fstat(fh.fileno())
        return cls(path, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))

    def still_same(self) -> None:
        """Raises InputFileError if the file changed (or was replaced) since it was checked."""
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise InputFileError(f"host input file {self.path} cannot be read any more: {exc.strerror}",
                                 "run again once the file is in place; nothing was sent") from None
        if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != self.identity:
            raise InputFileError(f"host input file {self.path} changed after it was checked",
                                 "run again once nothing writes to it; nothing was sent")
