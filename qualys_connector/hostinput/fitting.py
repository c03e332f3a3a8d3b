"""Shortening a command until its line fits the FMC's MAX_SIZE (pure, no I/O).

The one place that decides how a line is shortened: the QualysGuard plugin (for ``-csvfile``)
and delivery (for the MAX_SIZE an FMC announces) both call ``fit_line``.
"""
from __future__ import annotations

from .codec import Command, encode_line


def fit(command: Command, limit: int, size: int | None = None) -> tuple[Command, bool]:
    """Shorten an AddScanResult's description, then its title, until its line fits ``limit`` bytes.

    Returns the (possibly new) command and whether it was shortened. Other commands are
    returned as they are; the caller decides whether a line that still does not fit is an error.
    ``size`` is the length of the command's encoded line when the caller knows it already. The
    cut is computed from encoded sizes (both fields are always quoted), so the line is encoded
    once to measure it and once when it is written.
    """
    if size is None:
        size = len(encode_line(command))
    if size <= limit or command.name != "AddScanResult":
        return command, False
    args = list(command.args)
    excess = size - limit
    for index in (6, 5):  # desc, then name
        if excess <= 0:
            break
        if index >= len(args):
            continue
        before = _cost(args[index])
        args[index] = _cut_utf8(args[index], excess)
        excess -= before - _cost(args[index])
    return Command(command.name, tuple(args), command.map_name), True


def fit_line(command: Command, limit: int, line: bytes | None = None) -> tuple[bytes, bool]:
    """The command's line (with its LF), shortened by ``fit`` when it is longer than ``limit``.

    Returns the line and whether it was shortened; a line that is still too long (an
    AddScanResult whose id lists alone are too long, or another command) is the caller's to refuse.
    ``line`` is the command's encoded line when the caller has it already (a line this tool wrote,
    read back from its spool), so that it is not encoded again only to be measured.
    """
    if line is None:
        line = encode_line(command)
    if len(line) <= limit or command.name != "AddScanResult":
        return line, False
    fitted, _ = fit(command, limit, size=len(line))
    return encode_line(fitted), True


def _cost(text: str) -> int:
    """Bytes ``text`` takes inside its quotes on the line (a quote is written twice)."""
    return len(text.encode()) + text.count('"')


def _cut_utf8(text: str, excess: int) -> str:
    """Drop at least ``excess`` encoded bytes from the end of ``text`` (quotes count double)."""
    suffix = "..."
    cost = _cost(text)
    target = cost - excess - len(suffix)
    if target <= 0:
        return ""
    out, size = [], 0
    for ch in text:
        w = len(ch.encode()) + (1 if ch == '"' else 0)
        if size + w > target:
            break
        out.append(ch)
        size += w
    return "".join(out).rstrip() + suffix
