"""Apply the commands of one host input connection, as the FMC's host input module does.

No sockets here: ``Session.process(text)`` takes the text of one DATA message and returns the
reply text (error lines, then ``Done processing N commands.``). Semantics follow the
docs/host-input.md §1 and §2.1; where the spec is unsure the choice is marked ``[?]`` or ``[unsure]``
(an ``[unsure]`` comment also says what our client does against an FMC that behaves otherwise).

Reply lines: the spec gives their beginnings (``Failed to Execute Command: Command: X field: v``,
``[Cmd]: …``, ``Wrong protocol …``, ``CSV Error …``), not their full wording, and says the
server's log-style lines end in `` [file,line]``, which we do not imitate [?]. A client must
not depend on more than "every line before ``Done processing N commands.`` is an error".
"""
from __future__ import annotations

import ipaddress
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from ...hostinput import codec as c
from ...hostinput.replies import format_reply
from .netmap import NetworkMap, ScanResult

log = logging.getLogger("qualys_connector.fmc_emulator")

# Scan-result commands carry their own scanner name, so they need no SetSource (docs/host-input.md §1.1).
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
    unknown_commands: int = 0
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
    (docs/host-input.md §1.2, §2.1, §2.2). Without it the certificate's domain is a leaf (a single-domain FMC).
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
                # [unsure] The spec lists "CSV Error …" among reply lines; in the server module copy an
                # unparsable line is logged while parsing, like an unknown command, and may never reach
                # the reply. We keep it in the reply: our client never sends such a line, and the
                # stricter answer shows a codec bug in tests.
                errors.append(f"CSV Error: {exc} in line {number}: {line[:120]}")
                continue
            if not command.known:
                # Skipped with a warning, not counted (docs/host-input.md §1.1). [unsure] The spec does not say the
                # warning is part of the reply. In the server module copy it is written while the buffer
                # is parsed, before the reply text is started, so it reaches only the server's log; we do
                # the same (our log and stats.unknown_commands). Against an FMC that does put it in the
                # reply, our client would count that reply as an FMC error (a warning, exit 2) — it only
                # ever sends commands of the spec's table, so this shows only if an FMC lacks one of them.
                log.warning("unknown host input command %r in line %d skipped", command.name, number)
                self.stats.add(unknown_commands=1)
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
        """End of connection: what is still queued is applied as a ScanUpdate (docs/host-input.md §1.4) — queued
        DeleteScanResult commands first, then the queued results, merged.

        [unsure] The spec names only "leftover queued results"; that the queued deletes run too comes
        from the server module copy, whose socket clean-up runs both. Against an FMC that drops them,
        deletes our client leaves to the end of a connection would be lost — so a client must end every
        delete with an explicit ScanUpdate (the mirror does).
        """
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
        ip = _single_ip(cmd, cmd.arg("ip_address"))        # one address only here (docs/host-input.md §1.1)
        scanner = _required(cmd, "scanner_id")
        vuln_id = (cmd.arg("vuln_id") or "").strip()
        if vuln_id and not vuln_id.isdigit():
            # [unsure] The spec calls vuln_id an integer (a Cisco id or a mapped third-party id) but gives
            # no server message for anything else; "Wrong command syntax on Vuln ID" belongs to missing id
            # lists (below). We refuse the line with our own words. Our client sends QIDs, integers only.
            raise _field_error(cmd, "vuln_id", vuln_id, "not an integer vuln id")
        port, proto = _port_proto(cmd)
        cves, bids = (), ()
        if vuln_id:
            cves = self._id_list(cmd, ip, "cve_ids", c.CVE_HEADER)
            bids = self._id_list(cmd, ip, "bugtraq_ids", c.BUGTRAQ_HEADER)
        result = ScanResult(vuln_id or None, port, proto, cmd.arg("name") or "", cmd.arg("desc") or "", cves, bids,
                            self.source)
        group = self.queue.setdefault((scanner, ip), [])
        if any(r.key == result.key for r in group):
            self.stats.add(duplicate_results=1)
        group.append(result)

    @staticmethod
    def _id_list(cmd, ip: str, name: str, header: str) -> tuple[str, ...]:
        """With a vuln id both id-list fields must be present and start with their header (docs/host-input.md §1.3).

        [unsure] The spec gives two messages for this, "can not find the header" and "Wrong command
        syntax on Vuln ID", without saying which case gets which. As in the server module copy: a field
        that is there without its header gets the first, a missing field the second. Our client always
        writes both fields with their headers.
        """
        text = cmd.arg(name)
        if text is None:
            raise _field_error(cmd, "ip_address", ip, f"Wrong command syntax on Vuln ID: {cmd.arg('vuln_id')}, "
                               f"{name} missing")
        try:
            return tuple(c.parse_id_list(header, text))
        except c.CommandSyntaxError as exc:
            raise _field_error(cmd, "ip_address", ip, f"CSV Error: {exc} in {text!r}") from None

    def _DeleteScanResult(self, cmd):
        """Queue a delete; only ScanUpdate (or the end of the connection) runs it (docs/host-input.md §1.4)."""
        port, proto = _port_proto(cmd)
        ids = [i for i in (cmd.arg("id_list") or "").replace(",", " ").split() if i]
        if not ids and (port is None) != (proto is None):
            # [unsure] The spec's forms name a port always with its protocol; for one without the other the
            # server module copy logs this message. Our client never sends such a line.
            raise _Fail(f"Wrong command syntax on DeleteScanResult: {cmd.name} needs both port and protocol "
                        f"or neither")
        # scanner_id(s) (docs/host-input.md §1.2): [unsure] how several are written is not in the spec; we take one quoted
        # field with a comma list, as the server module copy splits it. Empty = every scanner.
        scanners = [s.strip() for s in (cmd.arg("scanner_id") or "").split(",") if s.strip()] or [None]
        where = _address_filter(cmd)
        for scanner in scanners:
            self.pending_deletes.append(_Delete(where, scanner, tuple(ids), port, proto))

    def _ScanFlush(self, cmd):
        # Replace mode per (scanner, host): the server sends each scanner+host group with flag 0,
        # so the scope is most likely that scanner on that host [srv, scope ?]. Pending
        # DeleteScanResult commands are NOT run by ScanFlush (docs/host-input.md §1.4); they stay queued for the
        # next ScanUpdate or the end of the connection. [unsure] The spec does not say whether ScanFlush
        # keeps or drops them; the server module copy keeps them. Against an FMC that drops them, a
        # delete followed by ScanFlush would be lost; our client ends deletes with ScanUpdate.
        for (scanner, ip), results in self._drain():
            self.netmap.replace_results(scanner, ip, _unique(results))

    def _ScanUpdate(self, cmd):
        self._update()

    def _update(self):
        """ScanUpdate (docs/host-input.md §1.4): first the queued deletes, in the order received, then the queued
        results merged into what the hosts have."""
        deletes, self.pending_deletes = self.pending_deletes, []
        for delete in deletes:
            self._run_delete(delete)
        for (scanner, ip), results in self._drain():
            self.netmap.merge_results(scanner, ip, _unique(results))

    def _run_delete(self, d: "_Delete") -> None:
        """The DeleteScanResult forms of docs/host-input.md §1.4:

        - ``ip,"Scanner"``: that scanner's results — its vulnerability results if it is a vulnerability
          scanner, its generic ones if it is a generic scanner (see ``NetworkMap._record_scanner``);
        - ``ip,"Scanner",,443,tcp``: that scanner's results at that port;
        - ``ip,"Scanner","id1,id2"``: those vulnerabilities of that scanner;
        - ``ip,,,443,tcp``: every scanner's results at that port;
        - ``ip``: every scan result on the host.

        [unsure] Forms the spec does not list are read as "every filter given applies": ids without a
        scanner (those ids from any scanner), ids with a port. For the port form the spec does not limit
        the results to the scanner's type; the server module copy seems to (a vulnerability scanner's
        vulnerabilities at that port). The connector sends only vulnerability results, so both readings
        delete the same rows for it.
        """
        kind = None
        if d.scanner and not d.ids and d.port is None:
            kind = self.netmap.scanner_type(d.scanner)
            if kind is None:             # a scanner that never stored a result has none to delete
                return
        for ip in self._resolve(d.where):
            self.netmap.delete_results(ip, d.scanner, list(d.ids) or None, d.port, d.proto, kind)

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
        return self._resolve(_address_filter(cmd))

    def _resolve(self, where: "_Addresses") -> list[str]:
        """The hosts an address field names: a single address as it is, known or not; otherwise the
        known hosts that match. A DeleteScanResult's field is resolved when the delete runs (at
        ScanUpdate), so hosts added after it was queued are covered too. [unsure] The spec says only
        that ScanUpdate executes the queued deletes; the server module copy already looks some things
        up when it reads the line (the vulns of a scanner at a port). Our client queues no delete for a
        host it adds later in the same connection, so the difference does not reach it."""
        if where.single is not None:
            return [where.single]
        matches = []
        for key in self.netmap.host_keys():
            try:
                address = ipaddress.ip_address(key)
            except ValueError:                       # a MAC-only host
                continue
            if (not where.include or any(_within(address, r) for r in where.include)) and \
                    not any(_within(address, r) for r in where.exclude):
                matches.append(key)
        return matches


@dataclass(frozen=True)
class _Addresses:
    """A parsed address field: one address, or ranges to include and exclude."""

    single: str | None
    include: tuple = ()
    exclude: tuple = ()


@dataclass(frozen=True)
class _Delete:
    """One queued DeleteScanResult, for one scanner (None = every scanner)."""

    where: _Addresses
    scanner: str | None
    ids: tuple[str, ...]
    port: int | None
    proto: str | None


def _address_filter(cmd: c.Command) -> _Addresses:
    """Parse an address field (docs/host-input.md §1.1): a comma list of addresses, CIDR blocks and ``low-high``
    ranges, ``!`` excluding. Host UUIDs are not modelled [?].

    [unsure] For DeleteScanResult the spec's general rule (lists accepted by every address field but
    those of AddHost and AddScanResult) is followed; the server module copy checks a single address when
    it runs a scan-result delete, so a real FMC may answer a list with "Failure to Run Scan API". Our
    client sends one address per DeleteScanResult line.
    """
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
        return _Addresses(str(include[0][0]))
    return _Addresses(None, tuple(include), tuple(exclude))


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
