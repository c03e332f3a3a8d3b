"""A private temp file holding the kept hosts between the parse and the join.

Records are plain tuples of str / int / None / list, written in batches with ``marshal``
(length-prefixed frames): faster than pickle for such data, and a file that is only data
can never run code when it is read back.
"""
from __future__ import annotations

import marshal
import os
import struct
import tempfile
from typing import Iterator

from ..diskfull import writing
from ..tempnames import REPORT_HOSTS, prefix

_FRAME = struct.Struct("<I")
BATCH = 512          # hosts per frame: amortises the per-call cost, a few hundred KB at most


class Spool:
    def __init__(self, directory: str | None = None):
        fd, self.path = tempfile.mkstemp(prefix=prefix(REPORT_HOSTS), suffix=".spool", dir=directory)
        self._out = os.fdopen(fd, "wb", buffering=1 << 20)
        self._batch: list[tuple] = []
        self.records = 0

    def add(self, record: tuple) -> None:
        self._batch.append(record)
        if len(self._batch) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._batch:
            data = marshal.dumps(self._batch)
            with writing("the spool of the report's hosts", self.path):
                self._out.write(_FRAME.pack(len(data)))
                self._out.write(data)
            self.records += len(self._batch)
            self._batch = []

    def finish(self) -> None:
        """Flush and close the writer; the records can then be read back, as often as wanted."""
        self._flush()
        with writing("the spool of the report's hosts", self.path):
            self._out.close()

    def read(self) -> Iterator[tuple]:
        with open(self.path, "rb") as fh:
            while header := fh.read(_FRAME.size):
                (size,) = _FRAME.unpack(header)
                yield from marshal.loads(fh.read(size))

    def remove(self) -> None:
        """Close and delete the file; safe to call twice and after errors."""
        try:
            self._out.close()
        except OSError:
            pass              # a full disk again while flushing the rest: the file goes anyway
        finally:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
