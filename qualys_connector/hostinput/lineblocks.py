"""A host input file read in blocks of whole lines, for the C-speed checks and batching.

Checking or batching a file of millions of lines one line at a time costs a Python round per
line; in blocks of about a megabyte, ``codec.check_lines`` and ``Batcher.add_block`` do the work
per block. Memory stays at one block, whatever the size of the file.
"""
from __future__ import annotations

from typing import BinaryIO, Iterator

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
