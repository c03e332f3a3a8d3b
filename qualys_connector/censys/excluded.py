"""Qualys's excluded-IP list as this cycle knows it: downloaded once, then kept up to date locally.

Re-reading the list after every batch that changed it cost a download per batch (the list
can hold thousands of ranges); our own adds and removes are all that change it during a
cycle, so we apply them here instead. An empty list from Qualys means nothing is excluded.
"""
from __future__ import annotations

from ..ipranges import IPRanges
from .events import IPAddress


class ExcludedList:
    """``ip in excluded``: the downloaded ranges, plus what we excluded, minus what we un-excluded."""

    def __init__(self, entries: list[str]):
        self._downloaded = IPRanges.listing(entries)
        self._added: set[IPAddress] = set()
        self._removed: set[IPAddress] = set()

    def __contains__(self, ip: IPAddress) -> bool:
        if ip in self._added:
            return True
        return ip not in self._removed and ip in self._downloaded

    def add(self, ips) -> None:
        for ip in ips:
            self._added.add(ip)
            self._removed.discard(ip)

    def remove(self, ips) -> None:
        for ip in ips:
            self._removed.add(ip)
            self._added.discard(ip)
