"""Apply the commands of one host input connection, as the FMC's host input module does.

No sockets here: ``Session.process(text)`` takes the text of one DATA message and returns the
reply text (error lines, then ``Done processing N commands.``). Semantics follow the
host-input spec §1; where the spec is unsure the choice is marked ``[?]``.
"""
from __future__ import annotations

import ipaddress
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from ...hostinput import commands as c
from .netmap import NetworkMap, ScanResult

NEEDS_NO_SOURCE = {"SetSource", "SetSourceType", "SetDomain", "SetMap", "AddScanResult",
                   "DeleteScanResult", "ScanFlush", "ScanUpdate"}


@dataclass
class Stats:
    """Counters shared by every connection of one emulator."""

    connections: int = 0
    handshake_failures: int = 0
    data_messages: int = 0
    commands: int = 0
    error_lines: int = 0
    bytes: int = 0
    dropped_unknown_host: int = 0
    duplicate_results: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


class _Fail(Exception):
    """One command failed; the message becomes an error line of the reply."""


@dataclass
class Session:
    netmap: NetworkMap
    stats: Stats
    accept_unknown_hosts: bool = False
    source: str | None = None          # SetSource and SetMap persist per connection [srv]
    map_name: str | None = None
    queue: "OrderedDict[tuple[str, str], list[ScanResult]]" = field(default_factory=OrderedDict)
    pending_deletes: list = field(default_factory=list)

    # ------------------------------------------------------------------ one DATA message
    def process(self, text: str) -> str:
        errors: list[str] = []
        processed = 0
        self.domain = None          # SetDomain / SetSourceType are per message [srv]
        self.source_type = None
        for number, line in enumerate(text.split("\n"), 1):
            if c.is_comment(line):
                continue
            try:
                command = c.decode(line)
            except c.CommandSyntaxError as exc:
                errors.append(f"CSV Error: {exc} in line {number}: {line[:120]}")
                processed += 1
                continue
            if command.name not in c.UNCOUNTED_COMMANDS:
                processed += 1
            try:
                self.apply(command)
            except _Fail as exc:
                errors.append(f"Failed to Execute Command: Command: {command.name} {exc}")
        self.stats.add(commands=processed, error_lines=len(errors))
        return c.format_reply(errors, processed)

    def close(self) -> None:
        """End of connection: what is still queued is applied as ScanUpdate [srv]."""
        if self.queue or self.pending_deletes:
            self._update()

    # ------------------------------------------------------------------ commands
    def apply(self, command: c.Command) -> None:
        name = command.name
        if not command.known:
            raise _Fail(f"(unknown command {name!r}, skipped)")
        if name not in NEEDS_NO_SOURCE and self.source is None:
            raise _Fail("[Cmd]: Must set source application")
        handler = getattr(self, "_" + name, None)
        if handler is not None:
            handler(command)
        # Other known commands (services, client apps, protocols, fixes, valid/invalid vulns)
        # are accepted and counted but not modelled: the connector never sends them.

    def _SetSource(self, cmd):
        self.source = _required(cmd, "source_name")

    def _SetSourceType(self, cmd):
        self.source_type = cmd.arg("type")

    def _SetDomain(self, cmd):
        self.domain = _required(cmd, "domain")

    def _SetMap(self, cmd):
        self.map_name = _required(cmd, "map_name")

    def _AddHost(self, cmd):
        ip, mac = cmd.arg("ip_address") or "", cmd.arg("mac_address") or ""
        if not ip and not mac:
            raise _Fail(", ip_address: (an address or a MAC is needed)")
        if ip:
            _single_ip(ip)
        self.netmap.add_host(ip or mac, mac or None)

    def _DeleteHost(self, cmd):
        self.netmap.delete_host(_single_ip(cmd.arg("ip_address")))

    def _SetOS(self, cmd):
        ip = _single_ip(cmd.arg("ip_address"))
        if self._known(ip):
            self.netmap.set_os(ip, cmd.arg("vendor_str") or "", cmd.arg("product_str") or "",
                               cmd.arg("version_str") or "")

    def _UnsetOS(self, cmd):
        ip = _single_ip(cmd.arg("ip_address"))
        if self._known(ip):
            self.netmap.unset_os(ip)

    def _AddHostAttribute(self, cmd):
        kind = (cmd.arg("attribute_type") or "").lower()
        if kind not in ("text", "url"):
            raise _Fail(f", attribute_type: {kind} (must be text or URL)")
        self.netmap.define_attribute(_required(cmd, "attribute_name"), kind)

    def _DeleteHostAttribute(self, cmd):
        self.netmap.delete_attribute_definition(_required(cmd, "attribute_name"))

    def _SetAttributeValue(self, cmd):
        ip = _single_ip(cmd.arg("ip_address"))
        if self._known(ip):
            self.netmap.set_attribute(ip, _required(cmd, "attribute"), cmd.arg("value") or "")

    def _DeleteAttributeValue(self, cmd):
        self.netmap.delete_attribute(_single_ip(cmd.arg("ip_address")), _required(cmd, "attribute"))

    def _AddScanResult(self, cmd):
        ip = _single_ip(cmd.arg("ip_address"))
        scanner = _required(cmd, "scanner_id")
        vuln_id = (cmd.arg("vuln_id") or "").strip()
        if vuln_id and not vuln_id.isdigit():
            raise _Fail(f", vuln_id: {vuln_id} (Wrong command syntax on Vuln ID)")
        port, proto = _port_proto(cmd.arg("port"), cmd.arg("proto"))
        cves, bids = (), ()
        if vuln_id:
            try:
                cves = tuple(c.parse_id_list(c.CVE_HEADER, cmd.arg("cve_ids")))
                bids = tuple(c.parse_id_list(c.BUGTRAQ_HEADER, cmd.arg("bugtraq_ids")))
            except c.CommandSyntaxError as exc:
                raise _Fail(f", IP: {ip} ({exc})") from None
        result = ScanResult(vuln_id or None, port, proto, cmd.arg("name") or "", cmd.arg("desc") or "", cves, bids)
        group = self.queue.setdefault((scanner, ip), [])
        if any(r.key == result.key for r in group):
            self.stats.add(duplicate_results=1)
        group.append(result)

    def _DeleteScanResult(self, cmd):
        ip = _single_ip(cmd.arg("ip_address"))
        port, proto = _port_proto(cmd.arg("port"), cmd.arg("proto"))
        ids = [i for i in (cmd.arg("id_list") or "").replace(",", " ").split() if i]
        self.pending_deletes.append((ip, cmd.arg("scanner_id") or None, ids or None, port, proto))

    def _ScanFlush(self, cmd):
        # Replace mode per (scanner, host); pending DeleteScanResult are NOT run by ScanFlush [srv].
        for (scanner, ip), results in self._drain():
            self.netmap.replace_results(scanner, ip, _unique(results))

    def _ScanUpdate(self, cmd):
        self._update()

    def _update(self):
        for ip, scanner, ids, port, proto in self.pending_deletes:
            self.netmap.delete_results(ip, scanner, ids, port, proto)
        self.pending_deletes.clear()
        for (scanner, ip), results in self._drain():
            self.netmap.merge_results(scanner, ip, _unique(results))

    def _drain(self):
        queued, self.queue = self.queue, OrderedDict()
        for (scanner, ip), results in queued.items():
            if self._known(ip, len(results)):
                yield (scanner, ip), results

    def _known(self, ip: str, weight: int = 1) -> bool:
        """Results for hosts the FMC does not know are dropped (``add_host: n``) [doc]."""
        if self.netmap.has_host(ip):
            return True
        if self.accept_unknown_hosts:
            self.netmap.add_host(ip)
            return True
        self.stats.add(dropped_unknown_host=weight)
        return False


def _unique(results: list[ScanResult]) -> list[ScanResult]:
    by_key: "OrderedDict[tuple, ScanResult]" = OrderedDict()
    for result in results:
        by_key.pop(result.key, None)
        by_key[result.key] = result
    return list(by_key.values())


def _required(cmd: c.Command, field: str) -> str:
    value = (cmd.arg(field) or "").strip()
    if not value:
        raise _Fail(f", {field}: (missing)")
    return value


def _single_ip(value: str | None) -> str:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        raise _Fail(f", ip_address: {value} (Failed to recognize IP address)") from None


def _port_proto(port_text: str | None, proto_text: str | None) -> tuple[int | None, str | None]:
    port_text, proto_text = (port_text or "").strip(), (proto_text or "").strip().lower()
    port = None
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise _Fail(f", port: {port_text} (port must be 1-65535)")
        port = int(port_text)
    proto = {"6": "tcp", "17": "udp", "tcp": "tcp", "udp": "udp", "": None}.get(proto_text, "?")
    if proto == "?":
        raise _Fail(f", proto: {proto_text} (Wrong protocol)")
    return port, proto
