"""Censys ASM logbook events as typed values, parsed once where the JSON arrives (``api.py``).

The rest of the sync (``decide``, ``sync``) works on ``LogbookEvent``: an int id, the
operation in upper case, and the host's address as an ``ipaddress`` object (None when the
event carries no valid one), so no later step parses ids or addresses again.

Event ids are bounded to 0 … 2**53 - 1 (``MAX_EVENT_ID``): Censys's API is read by JavaScript
clients (its own Node.js censys-qualys among them), where a JSON number is a double and ids
above 2**53 - 1 cannot be told apart from their neighbours, so no working logbook hands one
out. An id outside that range (10**30, -1) is a malformed event (``problem``), never a
position: one hostile id must not move the saved position beyond every real event.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_EVENT_ID = 2**53 - 1


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
        return cls(event_id(raw.get("id")), _text(raw.get("type")), _text(raw.get("operation")).upper(),
                   _ip(address))


def event_id(value) -> int | None:
    """An event id: a JSON integer (or a string of decimal digits) in 0 … MAX_EVENT_ID, else None."""
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 16:
            return None
        value = int(text)
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    return value if 0 <= value <= MAX_EVENT_ID else None


def problem(raw) -> str | None:
    """Why a raw logbook event cannot be handled (None: it can): not an object, or no usable id."""
    if not isinstance(raw, dict):
        return f"it is {_kind(raw)}, not a JSON object"
    if "id" not in raw or raw["id"] is None:
        return "it has no id"
    if event_id(raw["id"]) is None:
        value = raw["id"]
        if isinstance(value, int) and not isinstance(value, bool):
            return f"its id {_short(value)} is outside 0-{MAX_EVENT_ID}"
        return f"its id {_short(value)} is not a whole number"
    return None


def _kind(value) -> str:
    names = {list: "a list", dict: "an object", str: "a string", bool: "true/false", int: "a number",
             float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _short(value) -> str:
    if isinstance(value, int) and value.bit_length() > 256:
        return f"(a number of {value.bit_length()} bits)"
    if not isinstance(value, (int, float, str)):
        return f"({_kind(value)})"          # never repr() a structure: it may be nested 900 deep
    text = str(value) if isinstance(value, int) else repr(value[:64] if isinstance(value, str) else value)
    return text if len(text) <= 40 else text[:37] + "..."


def _text(value) -> str:
    """A string field; anything else (a number, a list nested 900 deep) is no value, never str()-ed."""
    return value[:64] if isinstance(value, str) else ""


def _ip(value) -> IPAddress | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None
