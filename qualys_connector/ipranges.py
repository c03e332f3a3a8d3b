"""``ip_ranges``: which report hosts go to the FMC.

Entries are addresses, CIDR blocks and ``a-b`` ranges, IPv4 and IPv6, separated by commas
(the Perl connector's syntax: ``192.168.1.234-192.168.2.2, 192.168.1.245``). netaddr parses
them; membership is a bisect over merged integer intervals per family, because it is asked
once for every host of reports with a million hosts.
"""
from __future__ import annotations

import bisect
import ipaddress

import netaddr


class IPRanges:
    def __init__(self, intervals: dict[int, list[tuple[int, int]]], text: str):
        self._starts = {v: [a for a, _ in iv] for v, iv in intervals.items()}
        self._ends = {v: [b for _, b in iv] for v, iv in intervals.items()}
        self._text = text
        self.everything = not any(intervals.values())

    @classmethod
    def parse(cls, spec) -> "IPRanges":
        """Parse a comma list (or a list of entries); empty / None / 'none' means every address."""
        if spec is None:
            entries: list[str] = []
        elif isinstance(spec, (list, tuple)):
            entries = [str(e) for item in spec for e in str(item).split(",")]
        else:
            entries = str(spec).split(",")
        entries = [e.strip() for e in entries if e.strip()]
        if len(entries) == 1 and entries[0].lower() in ("none", "all", "any"):
            entries = []
        raw: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for entry in entries:
            version, first, last = _parse_entry(entry)
            raw[version].append((first, last))
        merged = {v: _merge(iv) for v, iv in raw.items()}
        return cls(merged, ", ".join(entries) or "all addresses")

    def __contains__(self, address: str) -> bool:
        if self.everything:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        starts = self._starts.get(ip.version)
        if not starts:
            return False
        value = int(ip)
        index = bisect.bisect_right(starts, value) - 1
        return index >= 0 and value <= self._ends[ip.version][index]

    def __str__(self) -> str:
        return self._text


def _parse_entry(entry: str) -> tuple[int, int, int]:
    try:
        if "-" in entry:
            low_text, high_text = (part.strip() for part in entry.split("-", 1))
            low, high = netaddr.IPAddress(low_text), netaddr.IPAddress(high_text)
            if low.version != high.version:
                raise ValueError(f"'{entry}' mixes IPv4 and IPv6")
            if int(low) > int(high):
                raise ValueError(f"'{entry}' is reversed: its start comes after its end")
            return low.version, int(low), int(high)
        if "/" in entry:
            network = netaddr.IPNetwork(entry.replace(" ", ""))
            return network.version, int(network.first), int(network.last)
        address = netaddr.IPAddress(entry)
        return address.version, int(address), int(address)
    except (netaddr.AddrFormatError, TypeError, ValueError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith("'"):
            raise
        raise ValueError(f"'{entry}' is not an address, a CIDR block or an a-b range") from None


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
