"""One cycle of censys-qualys: logbook batches → Qualys, the position saved after each accepted batch.

At-least-once: a batch's position is saved only once Qualys accepted every call of it, so a
failure leaves the position before that batch and the next cycle does it again (adding an IP
twice or excluding it twice is harmless in Qualys). Memory holds one page and one batch.

A cycle always ends: a nextCursor already followed this cycle, or an event id not above the
one before it (or below the start), means Censys is going round in circles, and a cycle
reads at most ``maxPages`` pages as a last resort. Each stops the cycle with a
``CensysError`` (exit 2) before the batch being read is handed on, so the position stays
where the last accepted batch left it and the lock is released.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

from ..errors import CensysError, Interrupted
from ..logsetup import get_logger
from ..progress import NO_PROGRESS, Progress
from .decide import decide
from .events import LogbookEvent
from .excluded import ExcludedList
from .position import Position

log = get_logger()
TRIAL_LIMIT = 20
IPV6_WARNINGS = 20       # a logbook with thousands of IPv6 hosts must not drown the log
TOOL = "censys-qualys"
DEFAULT_MAX_PAGES = 10_000    # a cycle's last-resort page cap (run.maxPages): a million events at 100 a page
STUCK_HINT = ("the position is kept; run again later, and if it keeps happening, report it to Censys support "
              "(Censys's logbook API is misbehaving)")


@dataclass
class CycleResult:
    events: int = 0
    batches: int = 0
    added: int = 0
    excluded: int = 0
    unexcluded: int = 0
    ipv6_skipped: int = 0
    next_id: int | None = None
    trial_capped: bool = False
    added_ips: set[int] = field(default_factory=set, repr=False)   # distinct IPv4s behind ``added``
    excluded_ips: set[int] = field(default_factory=set, repr=False)   # and behind ``excluded``


def batches(censys, start_id: int, size: int, max_pages: int = DEFAULT_MAX_PAGES, live: Progress = NO_PROGRESS):
    """Yield lists of at most ``size`` HOST events from ``start_id`` on, following nextCursor.

    Raises ``CensysError`` when the logbook goes round in circles or ``max_pages`` pages did not
    reach endOfEvents; the batch being filled is then dropped (never handed on half-checked).
    """
    cursor = censys.cursor(start_id, ["HOST"])
    followed = {_digest(cursor)}        # one small digest per page, at most max_pages of them
    last = start_id - 1
    batch: list[LogbookEvent] = []
    pages = events = 0
    while True:
        page = censys.page(cursor)
        pages, events = pages + 1, events + len(page.events)
        live.update(events=events, pages=pages)
        for event in page.events:
            if event.id is None or event.id <= last:
                raise CensysError(
                    f"the Censys logbook is not advancing: page {pages} holds event {event.id} after "
                    f"{'event ' + str(last) if last >= start_id else f'the start at event {start_id}'} "
                    f"(ids must go up); stopped this cycle", STUCK_HINT)
            last = event.id
            batch.append(event)
            if len(batch) >= size:
                yield batch
                batch = []
        if page.end_of_events:
            break
        if not page.events or not page.next_cursor:
            # Not endOfEvents, yet nothing to follow: stop here; the position (an event id) makes
            # the next cycle carry on from the same place, so nothing is lost.
            log.warning("the Censys logbook page %s without endOfEvents; stopping this cycle here",
                        "was empty" if not page.events else "had no nextCursor")
            break
        if _digest(page.next_cursor) in followed:
            raise CensysError(f"the Censys logbook is going round in circles: page {pages} sends a nextCursor "
                              "already followed this cycle, without endOfEvents; stopped this cycle", STUCK_HINT)
        if pages >= max_pages:
            raise CensysError(f"read {pages} Censys logbook pages this cycle without reaching endOfEvents "
                              f"(run.maxPages); stopped this cycle",
                              "the position is kept and the next cycle carries on from there; if the logbook "
                              "really is that long, raise run.maxPages in the settings file")
        followed.add(_digest(page.next_cursor))
        cursor = page.next_cursor
    if batch:
        yield batch


def run_cycle(settings, censys, qualys, position: Position, *, reset: bool = False,
              stop: threading.Event | None = None, result: CycleResult | None = None,
              live: Progress = NO_PROGRESS) -> CycleResult:
    """One cycle. Pass ``result`` to keep the counts of what was done when the cycle fails halfway."""
    result = CycleResult() if result is None else result
    saved = None if reset else position.load()
    start = saved if saved is not None else settings.id_from
    log.info("reading the Censys ASM logbook from event %d (%s)", start,
             "saved position" if saved is not None else "idFrom")
    result.next_id = start
    budget = TRIAL_LIMIT if settings.trial_mode else None
    excluded: ExcludedList | None = None      # read from Qualys once, when first needed
    live.phase("reading the Censys logbook")
    for batch in batches(censys, start, settings.batch_size, settings.max_pages, live):
        if stop is not None and stop.is_set():
            raise Interrupted("stopped between batches; the position is saved")
        decision = decide(batch, add_hosts=settings.add_hosts, exclude_hosts=settings.exclude_hosts,
                          add_budget=None if budget is None else budget - len(result.added_ips))
        if decision.add:
            if excluded is None:
                excluded = ExcludedList(qualys.list_excluded_ips())
            back = [ip for ip in decision.add if ip in excluded]
            if back:
                qualys.remove_excluded_ips(back, f"{TOOL}: re-associated in Censys ASM")
                excluded.remove(back)
                result.unexcluded += len(back)
            qualys.add_ips(list(decision.add), enable_vm=True)
            result.added_ips.update(int(ip) for ip in decision.add)
            result.added = len(result.added_ips)      # an IP added by two batches counts once
            log.info("added %d IPs to Qualys VM (%s)", len(decision.add), _sample(decision.add))
        for ip, operation in decision.ipv6.items():
            if result.ipv6_skipped >= IPV6_WARNINGS:      # one line each for the first ones only
                log.debug("%s (%s, IPv6) not sent to Qualys", ip, operation.lower())
                result.ipv6_skipped += 1
                continue
            result.ipv6_skipped += 1
            log.warning("%s was %sd in Censys ASM but is IPv6: Qualys's asset-IP and excluded-IP calls take "
                        "IPv4 only; not sent (%s)", ip, operation.lower(),
                        "exclude it in Qualys by hand if needed" if operation == "DISASSOCIATE"
                        else "add it in Qualys by hand, with an IPv6 mapping record")
        if decision.exclude:
            ips = list(decision.exclude)
            ids = sorted(decision.exclude.values())
            qualys.add_excluded_ips(ips, f"{TOOL}: disassociated in Censys ASM (logbook "
                                    f"events {ids[0]}-{ids[-1]})", expiry_days=settings.exclude_expiry_days)
            result.excluded_ips.update(int(ip) for ip in ips)
            result.excluded = len(result.excluded_ips)    # an IP excluded by two batches counts once
            if excluded is not None:
                excluded.add(ips)
            log.info("excluded %d IPs from scanning (%s)", len(ips), _sample(ips))
        result.events += len(batch) if not decision.cut else sum(
            1 for e in batch if decision.last_id is not None and (-1 if e.id is None else e.id) <= decision.last_id)
        result.batches += 1
        live.update(added=result.added, excluded=result.excluded)
        if decision.last_id is not None:
            result.next_id = decision.last_id + 1
            position.save(result.next_id)
        if decision.cut:
            result.trial_capped = True
            log.warning("trialMode: %d IPs added, the most per run; events from %d on wait for the next run",
                        TRIAL_LIMIT, result.next_id)
            break
    if result.ipv6_skipped > IPV6_WARNINGS:
        log.warning("%d IPv6 addresses in all were not sent to Qualys this cycle; the first %d are named "
                    "above, the rest at --level 3", result.ipv6_skipped, IPV6_WARNINGS)
    return result


def _digest(cursor: str) -> bytes:
    return hashlib.blake2b(cursor.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _sample(ips) -> str:
    ips = [str(ip) for ip in ips]
    return ", ".join(ips[:5]) + (f" and {len(ips) - 5} more" if len(ips) > 5 else "")
