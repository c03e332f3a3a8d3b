"""Apply the commands of one host input connection, as the FMC's host input module does.

No sockets here: ``Session.process(text)`` takes the text of one DATA message and returns the
reply text (error lines, then ``Done processing N commands.``). Semantics follow the
host-input spec §1 and §2.1; where the spec is unsure the choice is marked ``[?]``.

Reply lines: the spec gives their beginnings (``Failed to Execute Command: Command: X field: v``,
``[Cmd]: …``, ``Wrong protocol …``, ``CSV Error …``), not their full wording, and says the
server's log-style lines end in `` [file,line]``, which we do not imitate [?]. A client must
not depend on more than "every line before ``Done processing N commands.`` is an error".
"""
from __future__ import annotations

import ipaddress
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from ...hostinput import codec as c
from ...hostinput.replies import format_reply
from .netmap import NetworkMap, ScanResult

# Scan-result commands carry their own scanner name, so they need no SetSource (spec §1.1).
NEEDS_NO_SOURCE = {"SetSource", "SetSourceType", "SetDomain", "AddScanResult", "DeleteScanResult",
                   "ScanFlush", "ScanUpdate"}
ROOT_DOMAIN = "Global"


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
    """One command failed; the message is its error line in the reply."""


class _Abort(_Fail):
    """The server stops processing the rest of this DATA message."""


def _field_error(cmd: c.Command, name: str, value, reason: str) -> _Fail:
    return _Fail(f"Failed to Execute Command: Command: {cmd.name} {name}: {value if value is not None else ''} "
                 f"({reason})")


@dataclass
class Session:
    """One client connection.

    ``leaf_domains`` models FMC 6.x multitenancy: when given, the client certificate belongs to
    the parent domain ``Global`` and these are the leaf domains below it, so every DATA message
    starts in a non-leaf domain and must name a leaf with ``SetDomain`` before ``SetSource``
    (spec §1.2, §2.1, §2.2). Without it the certificate's domain is a leaf (a single-domain FMC).
    The map itself is not split by domain.
    """

    netmap: NetworkMap
    stats: Stats
    accept_unknown_hosts: bool = False
    leaf_domains: tuple[str, ...] = ()
    # SetSource and SetMap are module globals of the server, so they last for the connection [srv];
    # whether that holds on every FMC version is open (spec open question 3) [?].
    source: str | None = None
    map_name: str | None = None
    queue: "OrderedDict[tuple[str, str], list[ScanResult]]" = field(default_factory=OrderedDict)
    pending_deletes: list = field(default_factory=list)
    domain: str = ROOT_DOMAIN
    source_type: str | None = None

    # ------------------------------------------------------------------ one DATA message
    def process(self, text: str) -> str:
        errors: list[str] = []
        processed = 0
        self.domain = ROOT_DOMAIN    # SetDomain / SetSourceType are per message [srv]
        self.source_type = None
        for number, line in enumerate(text.split("\n"), 1):
            if c.is_comment(line):
                continue
            try:
                command = c.decode(line)
            except c.CommandSyntaxError as exc:   # dropped at parse time: not counted [srv]
                errors.append(f"CSV Error: {exc} in line {number}: {line[:120]}")
                continue
            if not command.known:                  # skipped with a warning, not counted [srv]
                errors.append(f"Unknown command {command.name!r} in line {number}: skipped")
                continue
            if command.name not in c.UNCOUNTED_COMMANDS:
                processed += 1
            try:
                self.apply(command)
            except _Abort as exc:
                errors.append(str(exc))
                break
            except _Fail as exc:
                errors.append(str(exc))
        self.stats.add(commands=processed, error_lines=len(errors))
        return format_reply(errors, processed)

    def close(self) -> None:
        """End of connection: what is still queued is applied as ScanUpdate [srv]."""
        if self.queue or self.pending_deletes:
            self._update()

    # ------------------------------------------------------------------ commands
    def apply(self, command: c.Command) -> None:
        name = command.name
        if name not in NEEDS_NO_SOURCE and self.source is None:
            raise _Fail(f"[{name}]: Must set source application")
        handler = getattr(self, "_" + name, None)
        if handler is not None:
            handler(command)
        # Other known commands (services, client apps, protocols, fixes, valid/invalid vulns)
        # are accepted and counted but not modelled: the connector never sends them.

    def _SetSource(self, cmd):
        name = _required(cmd, "source_name")
        if not self._is_leaf(self.domain):
            raise _Abort(f"[SetSource]: {self.domain} is not a leaf domain; name one with SetDomain first")
        self.source = name

    def _SetSourceType(self, cmd):
        self.source_type = cmd.arg("type")     # accepted spellings unknown: any value kept [?]

    def _SetDomain(self, cmd):
        value = _required(cmd, "domain")
        domain = _domain_path(value)
        if domain != ROOT_DOMAIN and domain not in {_domain_path(d) for d in self.leaf_domains}:
            raise _Fail(f"[SetDomain]: {value} is not the certificate's domain or one below it")
        self.domain = domain

    def _SetMap(self, cmd):
        self.map_name = _required(cmd, "map_name")

    def _AddHost(self, cmd):
        ip, mac = (cmd.arg("ip_address") or "").strip(), (cmd.arg("mac_address") or "").strip()
        if not ip and not mac:
            raise _field_error(cmd, "ip_address", "", "an address or a MAC is needed")
        if ip:
            ip = _single_ip(cmd, ip)
        self.netmap.add_host(ip or mac, mac or None)

    def _DeleteHost(self, cmd):
        if not (cmd.arg("ip_address") or "").strip() and (cmd.arg("mac_address") or "").strip():
            targets = self.netmap.hosts_with_mac(cmd.arg("mac_address").strip())
        else:
            targets = self._targets(cmd)
        for ip in targets:
            self.netmap.delete_host(ip)

    def _SetOS(self, cmd):
        for ip in self._targets(cmd):
            if self._known(ip):
                self.netmap.set_os(ip, cmd.arg("vendor_str") or "", cmd.arg("product_str") or "",
                                   cmd.arg("version_str") or "")

    def _UnsetOS(self, cmd):
        for ip in self._targets(cmd):
            if self._known(ip):
                self.netmap.unset_os(ip)

    def _AddHostAttribute(self, cmd):
        kind = (cmd.arg("attribute_type") or "").lower()
        if kind not in ("text", "url"):
            raise _field_error(cmd, "attribute_type", kind, "must be text or URL")
        self.netmap.define_attribute(_required(cmd, "attribute_name"), kind)

    def _DeleteHostAttribute(self, cmd):
        self.netmap.delete_attribute_definition(_required(cmd, "attribute_name"))

    def _SetAttributeValue(self, cmd):
        attribute = _required(cmd, "attribute")
        for ip in self._targets(cmd):
            if self._known(ip):
                self.netmap.set_attribute(ip, attribute, cmd.arg("value") or "")

    def _DeleteAttributeValue(self, cmd):
        attribute = _required(cmd, "attribute")
        for ip in self._targets(cmd):
            self.netmap.delete_attribute(ip, attribute)

    def _AddScanResult(self, cmd):
        ip = _single_ip(cmd, cmd.arg("ip_address"))        # one address only here (spec §1.1)
        scanner = _required(cmd, "scanner_id")
        vuln_id = (cmd.arg("vuln_id") or "").strip()
        if vuln_id and not vuln_id.isdigit():
            # Integers only: from third-party scripts (spec §1.3); the server's wording for it is a guess [?]
            raise _field_error(cmd, "vuln_id", vuln_id, "Wrong command syntax on Vuln ID")
        port, proto = _port_proto(cmd)
        cves, bids = (), ()
        if vuln_id:
            try:
                cves = tuple(c.parse_id_list(c.CVE_HEADER, cmd.arg("cve_ids")))
                bids = tuple(c.parse_id_list(c.BUGTRAQ_HEADER, cmd.arg("bugtraq_ids")))
            except c.CommandSyntaxError as exc:
                raise _field_error(cmd, "ip_address", ip, str(exc)) from None
        result = ScanResult(vuln_id or None, port, proto, cmd.arg("name") or "", cmd.arg("desc") or "", cves, bids)
        group = self.queue.setdefault((scanner, ip), [])
        if any(r.key == result.key for r in group):
            self.stats.add(duplicate_results=1)
        group.append(result)

    def _DeleteScanResult(self, cmd):
        port, proto = _port_proto(cmd)
        ids = [i for i in (cmd.arg("id_list") or "").replace(",", " ").split() if i]
        # scanner_id(s): one name or a comma list (spec §1.2); empty = every scanner
        scanners = [s.strip() for s in (cmd.arg("scanner_id") or "").split(",") if s.strip()] or [None]
        for ip in self._targets(cmd):
            for scanner in scanners:
                self.pending_deletes.append((ip, scanner, ids or None, port, proto))

    def _ScanFlush(self, cmd):
        # Replace mode per (scanner, host): the server sends each scanner+host group with flag 0,
        # so the scope is most likely that scanner on that host [srv, scope ?]. Pending
        # DeleteScanResult commands are NOT run by ScanFlush [srv].
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
        """Data for hosts the FMC does not know is ignored, without an error line, unless the
        host was added (the connector guide on ``add_host: n``) [doc]."""
        if self.netmap.has_host(ip):
            return True
        if self.accept_unknown_hosts:
            self.netmap.add_host(ip)
            return True
        self.stats.add(dropped_unknown_host=weight)
        return False

    def _is_leaf(self, domain: str) -> bool:
        return not self.leaf_domains or domain != ROOT_DOMAIN

    def _targets(self, cmd: c.Command) -> list[str]:
        """The hosts an address field names (spec §1.1): a comma list of addresses, CIDR blocks
        and ``low-high`` ranges, ``!`` excluding. A single address is returned as it is, known
        or not; otherwise the known hosts that match. Host UUIDs are not modelled [?]."""
        text = (cmd.arg("ip_address") or "").strip()
        include, exclude = [], []
        for item in (i.strip() for i in text.split(",")):
            if not item:
                continue
            negate = item.startswith("!")
            item = item[1:].strip() if negate else item
            (exclude if negate else include).append(_address_set(cmd, item))
        if not include and not exclude:
            raise _field_error(cmd, "ip_address", text, "Failed to recognize IP address")
        if len(include) == 1 and not exclude and include[0][0] == include[0][1]:
            return [str(include[0][0])]
        matches = []
        for key in self.netmap.host_keys():
            try:
                address = ipaddress.ip_address(key)
            except ValueError:                       # a MAC-only host
                continue
            if (not include or any(_within(address, r) for r in include)) and \
                    not any(_within(address, r) for r in exclude):
                matches.append(key)
        return matches


def _address_set(cmd: c.Command, item: str) -> tuple:
    """``(low, high)`` addresses of one item of an address list."""
    try:
        if "/" in item:
            network = ipaddress.ip_network(item, strict=False)
            return network[0], network[-1]
        if "-" in item:
            low, high = (ipaddress.ip_address(p.strip()) for p in item.split("-", 1))
            if low.version != high.version or low > high:
                raise ValueError(item)
            return low, high
        address = ipaddress.ip_address(item)
        return address, address
    except ValueError:
        raise _field_error(cmd, "ip_address", item, "Failed to recognize IP address") from None


def _within(address, bounds) -> bool:
    low, high = bounds
    return address.version == low.version and low <= address <= high


def _unique(results: list[ScanResult]) -> list[ScanResult]:
    by_key: "OrderedDict[tuple, ScanResult]" = OrderedDict()
    for result in results:
        by_key.pop(result.key, None)
        by_key[result.key] = result
    return list(by_key.values())


def _required(cmd: c.Command, name: str) -> str:
    value = (cmd.arg(name) or "").strip()
    if not value:
        raise _field_error(cmd, name, "", "missing")
    return value


def _domain_path(value: str) -> str:
    """``Global\\A\\B`` and ``A\\B`` name the same domain (the leading Global is optional)."""
    parts = [p.strip() for p in value.strip().split("\\") if p.strip()]
    if parts and parts[0].lower() == ROOT_DOMAIN.lower():
        parts = parts[1:]
    return "\\".join([ROOT_DOMAIN] + parts)


def _single_ip(cmd: c.Command, value: str | None) -> str:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        raise _field_error(cmd, "ip_address", value, "Failed to recognize IP address") from None


def _port_proto(cmd: c.Command) -> tuple[int | None, str | None]:
    """Port 1-65535 (the range the guide gives for AddService; assumed here too [?]); protocol
    tcp/udp/6/17, matched case-insensitively [?]; one without the other is accepted [?]."""
    port_text, proto_text = (cmd.arg("port") or "").strip(), (cmd.arg("proto") or "").strip()
    port = None
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise _field_error(cmd, "port", port_text, "port must be 1-65535")
        port = int(port_text)
    proto = {"6": "tcp", "17": "udp", "tcp": "tcp", "udp": "udp", "": None}.get(proto_text.lower(), "?")
    if proto == "?":
        raise _Fail(f"Wrong protocol {proto_text} in {cmd.name} (tcp, udp, 6 or 17)")
    return port, proto
