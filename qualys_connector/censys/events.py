"""Censys ASM logbook events as typed values, parsed once where the JSON arrives (``api.py``).

The rest of the sync (``decide``, ``sync``) works on ``LogbookEvent``: an int id, the
operation in upper case, and the host's address as an ``ipaddress`` object (None when the
event carries no valid one), so no later step parses ids or addresses again.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class LogbookEvent:
    id: int | None           # None: the event had no usable id
    type: str                # HOST, HOST_PORT, CERT, ...
    operation: str           # ASSOCIATE, DISASSOCIATE, ADD, ... (upper case)
    ip: IPAddress | None     # entity.ipAddress, None when absent or not an address

    @classmethod
    def parse(cls, raw) -> "LogbookEvent":
        """One event of a logbook page; anything malformed becomes None/"" fields, never an exception."""
        if not isinstance(raw, dict):
            return cls(None, "", "", None)
        entity = raw.get("entity")
        address = entity.get("ipAddress") if isinstance(entity, dict) else None
        return cls(_int(raw.get("id")), str(raw.get("type") or ""), str(raw.get("operation") or "").upper(),
                   _ip(address))


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _ip(value) -> IPAddress | None:
    try:
        return ipaddress.ip_address(str(value if value is not None else "").strip())
    except ValueError:
        return None
