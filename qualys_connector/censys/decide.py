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

from dataclasses import dataclass, field

from .events import IPAddress, LogbookEvent

ASSOCIATE, DISASSOCIATE = "ASSOCIATE", "DISASSOCIATE"


@dataclass
class Decision:
    add: dict[IPAddress, int] = field(default_factory=dict)      # ip -> event id that decided it
    exclude: dict[IPAddress, int] = field(default_factory=dict)
    last_id: int | None = None                                   # last event covered by this decision
    ipv6: dict[IPAddress, str] = field(default_factory=dict)     # ip -> operation it would have had
    cut: bool = False                                        # trial cap reached inside the batch
    ignored: int = 0                                         # events that decide nothing


def decide(events: list[LogbookEvent], *, add_hosts: bool = True, exclude_hosts: bool = False,
           add_budget: int | None = None) -> Decision:
    latest: dict[IPAddress, tuple[str, int | None]] = {}
    adding: set[IPAddress] = set()
    decision = Decision()
    for event in events:
        ip, operation = event.ip, event.operation
        if event.type != "HOST" or ip is None or operation not in (ASSOCIATE, DISASSOCIATE):
            decision.ignored += 1
            decision.last_id = event.id if event.id is not None else decision.last_id
            continue
        if (operation == ASSOCIATE and add_hosts and add_budget is not None and ip not in adding
                and ip.version == 4 and len(adding) >= add_budget):
            decision.cut = True
            break
        latest[ip] = (operation, event.id)
        if operation == ASSOCIATE and add_hosts and ip.version == 4:
            adding.add(ip)
        else:
            adding.discard(ip)
        decision.last_id = event.id
    for ip, (operation, event_id) in latest.items():
        if ip.version == 6:
            if (operation == ASSOCIATE and add_hosts) or (operation == DISASSOCIATE and exclude_hosts):
                decision.ipv6[ip] = operation
        elif operation == ASSOCIATE and add_hosts:
            decision.add[ip] = event_id
        elif operation == DISASSOCIATE and exclude_hosts:
            decision.exclude[ip] = event_id
    return decision
