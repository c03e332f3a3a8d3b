"""``-server``: checked as a host name or IP address before anything runs.

A 300-character name, a space or a control character would otherwise reach ``getaddrinfo``
(whose IDNA step raises a bare UnicodeError) after the whole report was downloaded and parsed.
"""
from __future__ import annotations

import ipaddress
import re

from .errors import UsageError

_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\Z")
HINT = "give the FMC's host name (at most 253 characters, labels of at most 63) or IP address"


def check_server(value: str) -> str:
    """The address without [brackets]; UsageError when it cannot be a host name or address."""
    address = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        ipaddress.ip_address(address.split("%", 1)[0])
        return address
    except ValueError:
        pass
    shown = address if len(address) <= 60 else address[:60] + "..."
    shown = shown.encode("unicode_escape").decode("ascii")
    if not address or len(address.rstrip(".")) > 253:
        raise UsageError(f"-server {shown} is not a host name: {len(address)} characters", HINT)
    try:
        ascii_name = address.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        raise UsageError(f"-server {shown} is not a host name (a label is empty or longer than 63 "
                         "characters, or holds a character a name cannot have)", HINT) from None
    if len(ascii_name) > 253 or not all(_LABEL.match(label) for label in ascii_name.split(".")):
        raise UsageError(f"-server {shown} is not a host name (only letters, digits, '-' and '.')", HINT)
    return address
