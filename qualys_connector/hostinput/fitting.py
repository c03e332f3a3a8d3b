"""Shortening a command until its line fits the FMC's MAX_SIZE (pure, no I/O)."""
from __future__ import annotations

from .codec import Command, encode_line


def fit(command: Command, limit: int) -> tuple[Command, bool]:
    """Shorten an AddScanResult's description, then its title, until its line fits ``limit`` bytes.

    Returns the (possibly new) command and whether it was shortened. Other commands are
    returned as they are; the caller decides whether a line that still does not fit is an error.
    """
    line = encode_line(command)
    if len(line) <= limit or command.name != "AddScanResult":
        return command, False
    args = list(command.args)
    for index in (6, 5):  # desc, then name
        if index >= len(args):
            continue
        excess = len(encode_line(Command(command.name, tuple(args), command.map_name))) - limit
        if excess <= 0:
            break
        args[index] = _cut_utf8(args[index], excess)
    return Command(command.name, tuple(args), command.map_name), True


def _cut_utf8(text: str, excess: int) -> str:
    """Drop at least ``excess`` encoded bytes from the end of ``text`` (quotes count double)."""
    suffix = "..."
    cost = len(text.encode()) + text.count('"')
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
