"""The ``csv`` plugin: send an existing host input file, a drop-in for the Perl SDK's.

``-plugininfo`` names the file. With ``-csvfile`` it is written back byte for byte. Unlike
the SDK we read it before connecting: a file that is not UTF-8 or not valid host input CSV
is refused with its line number, so nothing is half-sent. So is a line holding a NUL byte:
no host input command holds one, and what the FMC would make of it (a cut-off line?) is unknown.
The check runs a megabyte at a time (``codec.check_lines``); a block it does not vouch for is
read again line by line with ``decode``, which names the line and what is wrong with it.
When sending, the checked file is not copied: the pipeline sends it from where it lies
(``Job.checked_file``), after making sure it did not change since the check.
"""
from __future__ import annotations

import io
import os

from qualys_connector.errors import InputFileError, UsageError
from qualys_connector.hostinput import CommandSyntaxError, decode
from qualys_connector.hostinput.codec import check_lines
from qualys_connector.hostinput.lineblocks import CheckedFile, line_blocks

NAME = "csv"
SUMMARY = "send a host input CSV file as it is"
PARAMETERS = [("-plugininfo=FILE", "the host input file to send (required)")]
SHORTEN = False


def default_plugininfo() -> str | None:
    return None


def load_config(plugininfo: str | None, template_id: str | None) -> None:
    """Nothing to read ahead: the file itself is checked while it is copied."""
    return None


def lock_key(plugininfo: str | None) -> str:
    return os.path.abspath(plugininfo or "csv")


def _check_block(block: bytes) -> list[int] | None:
    """[commands, AddScanResult, AddHost] of a block that is plainly valid, else None.

    Blocks with a NUL byte or that are not UTF-8 are always looked at line by line.
    """
    if b"\0" in block:
        return None
    if not block.isascii():             # isascii is many times faster than decoding
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return check_lines(block, ("AddScanResult", "AddHost"))


def _check_lines(block: bytes, number: int, path: str, job, out) -> int:
    """Check, count and copy (to ``out`` unless None) the lines of ``block`` one by one; the last line number."""
    for number, raw in enumerate(io.BytesIO(block), number + 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputFileError(f"{path}, line {number}: not UTF-8 text (byte {exc.start + 1})",
                                 "convert the file to UTF-8, e.g. iconv -f latin1 -t utf-8") from None
        if "\x00" in text:
            raise InputFileError(f"{path}, line {number}: a NUL byte (character {text.index(chr(0)) + 1}), "
                                 "which host input lines cannot hold",
                                 "remove it (e.g. tr -d '\\000'); nothing was sent")
        try:
            command = decode(text)
        except CommandSyntaxError as exc:
            raise InputFileError(f"{path}, line {number}: {exc}", "fix the line; nothing was sent") from None
        if out is not None:
            out.write(raw)
        if command is not None:
            job.summary.commands += 1
            if command.name == "AddScanResult":
                job.summary.findings += 1
            elif command.name == "AddHost":
                job.summary.hosts += 1
    return number


def produce(job) -> None:
    path = job.plugininfo
    if not path:
        raise UsageError("the csv plugin needs -plugininfo=FILE naming the host input file")
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise InputFileError(f"host input file {path} does not exist", "check -plugininfo") from None
    except OSError as exc:
        raise InputFileError(f"cannot read host input file {path}: {exc.strerror}") from None
    out = job.out if job.dry_run else None      # a send takes the checked file as it is
    with fh:
        number = 0
        for block in line_blocks(fh):
            counts = _check_block(block)
            if counts is None:                  # something to look at closely: line by line
                number = _check_lines(block, number, path, job, out)
                continue
            if out is not None:
                out.write(block)
            job.summary.commands += counts[0]
            job.summary.findings += counts[1]
            job.summary.hosts += counts[2]
            number += counts[0]
        if out is None:
            job.checked_file = CheckedFile.of(path, fh)
    if job.summary.commands == 0:
        job.log.warning("%s holds no commands (empty, or only comments): there is nothing to deliver", path)
    else:
        job.log.info("read %d commands from %s", job.summary.commands, path)
