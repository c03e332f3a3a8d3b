"""Send a file of host input lines to the FMC, and say exactly how much of it arrived.

The whole file is checked against the server's MAX_SIZE right after the handshake and
before the first DATA message: a line that can never fit is refused with nothing sent
(the Perl SDK died half-way, after the TLS session was open). Lines of the QualysGuard
plugin may be shortened to fit (description first, then title); a user's own CSV is never
altered.
"""
from __future__ import annotations

import io
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from .errors import FMCProtocolError, FMCRejected, Interrupted, LineTooLong
from .hostinput.codec import decode
from .hostinput.fitting import fit_line
from .hostinput.batching import Batcher, LineTooLongError, command_name
from .hostinput.client import HostInputClient
from .hostinput.lineblocks import BLOCK, line_blocks
from .logsetup import get_logger
from .progress import NO_PROGRESS, Progress

log = get_logger()


@dataclass
class DeliveryStats:
    messages_total: int = 0
    messages_acked: int = 0
    lines_total: int = 0
    lines_acked: int = 0
    replies_with_errors: int = 0
    error_lines: int = 0
    shortened: int = 0
    errors_sample: list[str] = field(default_factory=list)


def _blocks(path: str, size: int = BLOCK):
    """The file's blocks of whole lines; the file is closed when the generator is."""
    with open(path, "rb") as fh:
        yield from line_blocks(fh, size)


def plan(path: str, max_size: int, *, shorten: bool, stats: DeliveryStats) -> str:
    """Check every line fits, count lines and DATA messages; returns the file to send.

    One pass over the file, a block at a time, through the same Batcher that sends it. Only a
    block with a line too long for MAX_SIZE is taken line by line; if shortening is allowed,
    a shortened copy of the file is written from there on and returned instead.
    """
    batcher = Batcher(max_size)
    rewrite: str | None = None
    out = None
    messages = offset = 0
    try:
        for block in _blocks(path):
            before = batcher.copy()
            try:
                messages += len(batcher.add_block(block))
            except LineTooLongError as exc:
                if not (shorten and exc.command == "AddScanResult"):
                    raise _too_long(exc, max_size) from None
                batcher = before
                if out is None:
                    fd, rewrite = tempfile.mkstemp(prefix=".qc-fit-", dir=os.path.dirname(path) or ".")
                    out = os.fdopen(fd, "wb")
                    _copy_head(path, offset, out)
                messages += _fit_block(block, batcher, max_size, out, stats)
            else:
                if out is not None:
                    out.write(block)
            offset += len(block)
        if out is not None:
            out.close()
            out = None
        stats.messages_total = messages + len(batcher.finish())
        stats.lines_total = batcher.lines
        return rewrite or path
    except BaseException:
        if out is not None:
            out.close()
        if rewrite:
            os.unlink(rewrite)
        raise


def _fit_block(block: bytes, batcher: Batcher, max_size: int, out, stats: DeliveryStats) -> int:
    """Batch ``block`` line by line, shortening each AddScanResult that does not fit; messages made."""
    messages = 0
    for number, line in enumerate(io.BytesIO(block), batcher.lines + 1):
        try:
            messages += len(batcher.add(line))
        except LineTooLongError as exc:
            if exc.command != "AddScanResult":
                raise _too_long(exc, max_size) from None
            command = decode(line.decode("utf-8"))
            # decoded once and encoded once: the line as read is its encoding (the spool is ours)
            line, _ = fit_line(command, max_size - batcher.header_size(), line if line.endswith(b"\n") else None)
            log.debug("shortened AddScanResult for %s QID %s from %d to %d bytes to fit MAX_SIZE",
                      command.arg("ip_address"), command.arg("vuln_id"), exc.length - batcher.header_size(),
                      len(line))
            try:
                messages += len(batcher.add(line))
            except LineTooLongError:
                raise LineTooLong(f"line {number} (AddScanResult) cannot be shortened below "
                                  f"{max_size} bytes (the FMC's MAX_SIZE)") from None
            stats.shortened += 1
        out.write(line)
    return messages


def _too_long(exc: LineTooLongError, max_size: int) -> LineTooLong:
    return LineTooLong(f"line {exc.line_number} of the host input ({exc.command}) is {exc.length} bytes with "
                       f"its header lines; the FMC accepts at most {max_size} per DATA message")


def _copy_head(path: str, size: int, out) -> None:
    """The first ``size`` bytes of ``path`` (the lines before the first one shortened) into ``out``."""
    with open(path, "rb") as fh:
        while size > 0:
            chunk = fh.read(min(size, BLOCK))
            if not chunk:
                return
            out.write(chunk)
            size -= len(chunk)


def _payloads(path: str, max_size: int) -> Iterator[bytes]:
    """The DATA payloads of ``path``, read about one message at a time (see _send_ahead)."""
    batcher = Batcher(max_size)
    for block in _blocks(path, max_size):
        yield from batcher.add_block(block)
    yield from batcher.finish()


def _send_ahead(payloads: Iterator[bytes], deliver: Callable[[bytes, Callable[[], object]], None]) -> None:
    """``deliver`` every payload, each with a function that makes the next one ready.

    deliver calls it while the FMC processes the message just sent (``send_data(meanwhile=)``),
    so reading and batching the file costs no time of its own on the wire: the FMC's work on a
    message is always longer than cutting the next one from the file.
    """
    ready: list[bytes | None] = []

    def prepare_next() -> None:
        if not ready:
            ready.append(next(payloads, None))

    current = next(payloads, None)
    while current is not None:
        deliver(current, prepare_next)
        prepare_next()              # in case deliver did not (an interrupted send raises instead)
        current = ready.pop()


def send_file(path: str, client: HostInputClient, *, shorten: bool,
              stats: DeliveryStats | None = None,
              progress: Callable[[DeliveryStats], None] | None = None,
              stop=None, live: Progress = NO_PROGRESS) -> DeliveryStats:
    """Send ``path`` over a connected client; raises FMCRejected if the FMC reported errors.

    ``stop`` (a threading.Event) is checked before every DATA message, so a worker thread of
    process-multiple stops between messages when SIGTERM arrives in the main thread.
    """
    stats = stats or DeliveryStats()
    max_size = client.max_size or 65536
    to_send = plan(path, max_size, shorten=shorten, stats=stats)   # also counts lines and messages
    try:
        log.info("sending %d lines to the FMC at %s in %d DATA message%s (MAX_SIZE %d)",
                 stats.lines_total, client.where, stats.messages_total,
                 "" if stats.messages_total == 1 else "s", max_size)
        live.phase("sending", total=stats.messages_total)
        last_report = time.monotonic()

        def deliver(payload: bytes, prepare_next: Callable[[], object]) -> None:
            nonlocal last_report
            if stop is not None and stop.is_set():
                raise Interrupted(f"stopped on request; {stats.messages_acked} of {stats.messages_total} DATA "
                                  "messages were acknowledged before that",
                                  "run again to deliver everything: ScanFlush replaces what arrived")
            counted: list[int] = []

            def meanwhile() -> None:        # while the FMC works on this message
                counted.append(payload.count(b"\n"))
                prepare_next()

            reply = client.send_data(payload, meanwhile=meanwhile)
            stats.messages_acked += 1
            stats.lines_acked += counted[0]
            live.update(messages=stats.messages_acked, lines=stats.lines_acked)
            if not reply.ok:
                stats.replies_with_errors += 1
                for line in reply.error_lines:
                    stats.error_lines += 1
                    if len(stats.errors_sample) < 5:
                        stats.errors_sample.append(line)
                    log.warning("FMC: %s", line)
            log.debug("DATA %d/%d acknowledged: %s commands processed", stats.messages_acked,
                      stats.messages_total, reply.reply.processed)
            now = time.monotonic()
            if now - last_report >= 10 or stats.messages_acked == stats.messages_total:
                last_report = now
                log.info("FMC acknowledged %d of %d DATA messages", stats.messages_acked,
                         stats.messages_total)
                if progress:
                    progress(stats)

        payloads = _payloads(to_send, max_size)
        try:
            _send_ahead(payloads, deliver)
        except FMCProtocolError as exc:
            raise FMCProtocolError(
                f"{exc.message}; {stats.messages_acked} of {stats.messages_total} DATA messages "
                f"were acknowledged before that", "run again: ScanFlush replaces what arrived") from None
        finally:
            payloads.close()            # the file, at once
    finally:
        if to_send != path:
            os.unlink(to_send)
    if stats.error_lines:
        raise FMCRejected(f"the FMC reported {stats.error_lines} error line(s) in "
                          f"{stats.replies_with_errors} of {stats.messages_total} replies "
                          f"(first: {stats.errors_sample[0]})",
                          "see the warnings above; run with -level=3 for every reply")
    return stats


__all__ = ["DeliveryStats", "send_file", "plan", "command_name"]
