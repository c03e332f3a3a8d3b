"""From logbook events to Qualys actions: pure, no I/O.

For every IP the *latest* HOST event of the batch decides (the last one in logbook order, which
is ascending event id): ASSOCIATE → scan it (add to Qualys VM), DISASSOCIATE → exclude it.
IPv6 addresses are set apart: Qualys documents its v2 asset-IP and excluded-IP calls for IPv4
only (IPv6 needs v4↔v6 mapping records), so one IPv6 address could make Qualys refuse a whole
chunk and stall the logbook for ever. trialMode caps the IPv4 IPs *added* per run; the batch is
then cut just before the event that would bring the 21st, so those events are handled in a
later run instead of being skipped (the original tool advanced past them for ever).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

ASSOCIATE, DISASSOCIATE = "ASSOCIATE", "DISASSOCIATE"


@dataclass
class Decision:
    add: dict[str, int] = field(default_factory=dict)        # ip -> event id that decided it
    exclude: dict[str, int] = field(default_factory=dict)
    last_id: int | None = None                               # last event covered by this decision
    ipv6: dict[str, str] = field(default_factory=dict)       # ip -> operation it would have had
    cut: bool = False                                        # trial cap reached inside the batch
    ignored: int = 0                                         # events that decide nothing


def decide(events: list[dict], *, add_hosts: bool = True, exclude_hosts: bool = False,
           add_budget: int | None = None) -> Decision:
    latest: dict[str, tuple[str, int]] = {}
    adding: set[str] = set()
    decision = Decision()
    for event in events:
        event_id = _int(event.get("id"))
        operation = str(event.get("operation") or "").upper()
        ip = _ip(event)
        if event.get("type") != "HOST" or ip is None or operation not in (ASSOCIATE, DISASSOCIATE):
            decision.ignored += 1
            decision.last_id = event_id if event_id is not None else decision.last_id
            continue
        if (operation == ASSOCIATE and add_hosts and add_budget is not None and ip not in adding
                and ":" not in ip and len(adding) >= add_budget):
            decision.cut = True
            break
        latest[ip] = (operation, event_id)
        if operation == ASSOCIATE and add_hosts and ":" not in ip:
            adding.add(ip)
        else:
            adding.discard(ip)
        decision.last_id = event_id
    for ip, (operation, event_id) in latest.items():
        if ":" in ip:
            if (operation == ASSOCIATE and add_hosts) or (operation == DISASSOCIATE and exclude_hosts):
                decision.ipv6[ip] = operation
        elif operation == ASSOCIATE and add_hosts:
            decision.add[ip] = event_id
        elif operation == DISASSOCIATE and exclude_hosts:
            decision.exclude[ip] = event_id
    return decision


def _ip(event: dict) -> str | None:
    entity = event.get("entity") or {}
    try:
        return str(ipaddress.ip_address(str(entity.get("ipAddress", "")).strip()))
    except ValueError:
        return None


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
