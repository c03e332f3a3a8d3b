"""Builders of the commands the connector writes: one small function per command, no I/O."""
from __future__ import annotations

from .codec import BUGTRAQ_HEADER, CVE_HEADER, Command, id_list_field


def set_source(name: str) -> Command:
    return Command("SetSource", (name,))


def set_domain(domain: str) -> Command:
    return Command("SetDomain", (domain,))


def add_host(ip: str, mac: str | None = None) -> Command:
    return Command("AddHost", (ip,) if mac is None else (ip, mac))


def set_os(ip: str, vendor: str, product: str, version: str) -> Command:
    return Command("SetOS", (ip, vendor, product, version))


def add_scan_result(ip: str, scanner: str, vuln_id: int | str | None, port: int | str | None,
                    proto: str | None, name: str, desc: str, cve_ids=(), bugtraq_ids=()) -> Command:
    return Command("AddScanResult", (
        ip, scanner, "" if vuln_id is None else str(vuln_id), "" if port is None else str(port),
        proto or "", name, desc, id_list_field(CVE_HEADER, cve_ids),
        id_list_field(BUGTRAQ_HEADER, bugtraq_ids)))


def scan_flush() -> Command:
    return Command("ScanFlush")


def delete_scan_results(ip: str, scanner: str) -> Command:
    """Every result of ``scanner`` on the host (docs/host-input.md §1.4); runs at ScanUpdate."""
    return Command("DeleteScanResult", (ip, scanner))


def scan_update() -> Command:
    return Command("ScanUpdate")
