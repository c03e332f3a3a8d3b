"""``ip_ranges``: which report hosts go to the FMC.

Entries are addresses, CIDR blocks and ``a-b`` ranges, IPv4 and IPv6, separated by commas
(the Perl connector's syntax: ``192.168.1.234-192.168.2.2, 192.168.1.245``) or given as a
YAML list; whitespace around entries and around the ``-`` is ignored. Empty, None or
``none`` means every address. netaddr parses the entries (strictly: no ``10.1`` shorthand, no
octal); membership is a bisect over merged integer intervals per family, because it is asked
once for every host of reports with a million hosts.
"""
from __future__ import annotations

import bisect
import ipaddress

import netaddr

_EVERYTHING = frozenset({"none", "all", "any"})


class IPRanges:
    """A set of IPv4 and IPv6 addresses; ``ip in ranges`` takes the address as text."""

    def __init__(self, intervals: dict[int, list[tuple[int, int]]], text: str, *, everything: bool = False):
        self._starts = {v: [a for a, _ in iv] for v, iv in intervals.items()}
        self._ends = {v: [b for _, b in iv] for v, iv in intervals.items()}
        self._text = text
        self.everything = everything

    @classmethod
    def parse(cls, spec: str | list | tuple | None) -> "IPRanges":
        """Parse a comma list (or a list of entries, each possibly a comma list); empty means every address.

        Raises ValueError quoting the first bad entry and saying what is wrong with it.
        """
        entries = [e.strip() for e in _split(spec)]
        entries = [e for e in entries if e]
        if len(entries) == 1 and entries[0].casefold() in _EVERYTHING:
            entries = []
        if not entries:
            return cls({4: [], 6: []}, "all addresses", everything=True)
        return cls.listing(entries)

    @classmethod
    def listing(cls, entries) -> "IPRanges":
        """Exactly the listed addresses, CIDR blocks and ``a-b`` ranges: an empty list holds nothing.

        For lists read from a peer (Qualys's excluded IPs), where empty means empty, unlike
        the ``ip_ranges`` setting.
        """
        entries = [e for e in (str(e).strip() for e in entries) if e]
        raw: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for entry in entries:
            version, first, last = _parse_entry(entry)
            raw[version].append((first, last))
        merged = {v: _merge(iv) for v, iv in raw.items()}
        return cls(merged, ", ".join(entries) or "no addresses")

    def __contains__(self, address) -> bool:
        """``address``: text, or an ``ipaddress`` object (not parsed again)."""
        if self.everything:
            return True
        if isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            ip = address
        else:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                return False
        starts = self._starts[ip.version]
        if not starts:
            return False
        value = int(ip)
        index = bisect.bisect_right(starts, value) - 1
        return index >= 0 and value <= self._ends[ip.version][index]

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"IPRanges({self._text!r})"


def _split(spec) -> list[str]:
    if spec is None:
        return []
    if isinstance(spec, (list, tuple)):
        return [part for item in spec if item is not None for part in str(item).split(",")]
    return str(spec).split(",")


def _parse_entry(entry: str) -> tuple[int, int, int]:
    """(IP version, first, last) as integers."""
    if "-" in entry:
        low_text, _, high_text = (part.strip() for part in entry.partition("-"))
        low, high = _address(low_text, entry), _address(high_text, entry)
        if low.version != high.version:
            raise ValueError(f"'{entry}' mixes IPv4 and IPv6 in one range")
        if int(low) > int(high):
            raise ValueError(f"'{entry}' is reversed: its start comes after its end")
        return low.version, int(low), int(high)
    if "/" in entry:
        try:
            network = netaddr.IPNetwork(entry.replace(" ", ""))
        except (netaddr.AddrFormatError, TypeError, ValueError):
            raise ValueError(f"'{entry}' is not a CIDR block (address/prefix length, such as "
                             "10.0.0.0/8 or 2001:db8::/32)") from None
        # A block written with host bits set (10.1.2.3/8) means the whole block, as in the Perl tool.
        return network.version, int(network.first), int(network.last)
    address = _address(entry, entry)
    return address.version, int(address), int(address)


def _address(text: str, entry: str) -> netaddr.IPAddress:
    try:
        return netaddr.IPAddress(text)
    except (netaddr.AddrFormatError, TypeError, ValueError):
        if text == entry:
            raise ValueError(f"'{entry}' is not an IPv4 or IPv6 address, a CIDR block or an a-b range") from None
        raise ValueError(f"'{entry}' is not a range of two addresses: '{text}' is not an IPv4 or "
                         "IPv6 address") from None


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping, non-adjacent intervals (so one bisect answers membership)."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
