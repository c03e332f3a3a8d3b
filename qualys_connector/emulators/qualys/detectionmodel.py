"""The emulator's host detections and KnowledgeBase: a small model to serve, change and compare against.

The Host List Detection and KnowledgeBase endpoints answer from this model. It is generated
(N hosts, seeded, so two runs with the same seed serve the same data) or loaded from a JSON file,
and changed between pulls (``apply``: remediate a host, fix one QID, add a detection, add a host),
from the command line or the control call. Every change stamps the touched host's processed
time from a clock that never repeats a second, and every answer's DATETIME comes from the same
clock: a change made after an answer is always strictly later than that answer's DATETIME, so a
``vm_processed_after`` pull from that DATETIME sees it (Qualys's clock has one-second resolution too).
"""
from __future__ import annotations

import bisect
import datetime
import ipaddress
import json
import os
import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Iterable

STATUSES = ("New", "Active", "Re-Opened", "Fixed")
DEFAULT_STATUSES = ("New", "Active", "Re-Opened")      # Fixed only when asked for [unsure: the default]
TYPES = ("Confirmed", "Potential", "Info")
VULN_TYPES = {"Confirmed": "Vulnerability", "Potential": "Potential Vulnerability", "Info": "Information Gathered"}
_OS = ["Windows Server 2019 Standard", "Linux 4.x", "Ubuntu / Linux 5.x", "Cisco IOS 15.2", "FreeBSD 13.1"]
_PORTS = [(22, "tcp"), (80, "tcp"), (443, "tcp"), (445, "tcp"), (3389, "tcp"), (53, "udp"), (123, "udp")]
_BASE = datetime.datetime(2025, 6, 1, tzinfo=datetime.timezone.utc)


def iso(when: datetime.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime.datetime:
    """``2026-01-02T03:04:05Z`` (or a date) as an aware datetime; ValueError otherwise."""
    text = text.strip()
    if len(text) == 10:
        text += "T00:00:00Z"
    when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc)


@dataclass
class Detection:
    qid: int
    type: str = "Confirmed"
    severity: int = 3
    port: int | None = None
    protocol: str | None = None
    ssl: bool = False
    results: str = ""
    status: str = "Active"
    first_found: str = "2025-05-01T00:00:00Z"
    last_found: str = "2025-06-01T00:00:00Z"
    times_found: int = 1
    is_ignored: bool = False
    is_disabled: bool = False
    processed: str = "2025-06-01T00:00:00Z"


@dataclass
class Host:
    id: int
    ip: str | None = None
    ipv6: str | None = None
    tracking_method: str = "IP"
    os: str = ""
    dns: str = ""
    last_scan: str = "2025-06-01T00:00:00Z"
    processed: str = "2025-06-01T00:00:00Z"
    detections: list[Detection] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.ip or self.ipv6 or ""


@dataclass
class Vuln:
    qid: int
    title: str
    severity: int = 3
    vuln_type: str = "Vulnerability"
    category: str = "General remote services"
    modified: str = "2025-06-01T00:00:00Z"
    diagnosis: str = ""
    cve_ids: list[str] = field(default_factory=list)
    bugtraq_ids: list[str] = field(default_factory=list)
    patchable: bool = True


class ModelError(ValueError):
    """A change or a model file the emulator cannot apply; the message says what was wrong."""


class DetectionModel:
    def __init__(self, hosts: Iterable[Host] = (), kb: Iterable[Vuln] = ()):
        self.hosts: list[Host] = sorted(hosts, key=lambda h: h.id)
        self._ids = [h.id for h in self.hosts]
        self.kb: dict[int, Vuln] = {v.qid: v for v in kb}
        self.lock = threading.RLock()
        self._last = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)

    # ------------------------------------------------------------------ building
    @classmethod
    def generate(cls, hosts: int, *, detections_per_host: int = 5, seed: int = 1, distinct_qids: int = 200,
                 ipv6_every: int = 10, fixed_every: int = 7) -> "DetectionModel":
        """Seeded hosts 10.0.x.y (every ``ipv6_every``-th IPv6 only), QIDs from a KB of ``distinct_qids``."""
        rng = random.Random(seed)
        qids = [10000 + 37 * k for k in range(distinct_qids)]
        kb = []
        for n, qid in enumerate(qids):
            kind = TYPES[n % 3] if n % 5 == 4 else "Confirmed"
            cves = [f"CVE-{2010 + n % 15}-{1000 + qid}"] * (n % 3 > 0)
            kb.append(Vuln(qid, "" if n % 50 == 49 else f"Emulated vulnerability {qid}", severity=1 + n % 5,
                           vuln_type=VULN_TYPES[kind], modified=iso(_BASE + datetime.timedelta(hours=n)),
                           diagnosis=f"The service answers in a way that shows flaw {qid}.",
                           cve_ids=cves, bugtraq_ids=[str(50000 + n)] if n % 4 == 0 else []))
        made = []
        for index in range(hosts):
            host_id = 100001 + index
            ip = str(ipaddress.IPv4Address(0x0A000000 + index + 1))
            ipv6 = None
            if ipv6_every and index % ipv6_every == ipv6_every - 1:
                ip, ipv6 = None, str(ipaddress.IPv6Address(0x20010DB8 << 96 | (index + 1)))
            when = iso(_BASE + datetime.timedelta(minutes=index))
            dets = []
            chosen = rng.sample(qids, min(detections_per_host, len(qids)))
            for k, qid in enumerate(chosen):
                vuln = kb[qids.index(qid)]
                kind = next(t for t, v in VULN_TYPES.items() if v == vuln.vuln_type)
                port, proto = rng.choice(_PORTS) if rng.random() < 0.7 else (None, None)
                status = "Fixed" if fixed_every and (index + k) % fixed_every == 0 else rng.choice(("New", "Active", "Active", "Re-Opened"))
                dets.append(Detection(qid, kind, vuln.severity, port, proto, port == 443,
                                      f"Port\tState\n{port or '-'}\topen", status, processed=when,
                                      times_found=1 + rng.randrange(9)))
            made.append(Host(host_id, ip, ipv6, "IP", _OS[index % len(_OS)], f"host{index}.example.net",
                             when, when, dets))
        return cls(made, kb)

    @classmethod
    def load(cls, path: str) -> "DetectionModel":
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            hosts = [Host(**{**h, "detections": [Detection(**d) for d in h.get("detections", [])]})
                     for h in data.get("hosts", [])]
            kb = [Vuln(**v) for v in data.get("kb", [])]
        except OSError as exc:
            raise ModelError(f"cannot read {path}: {exc.strerror}") from None
        except (ValueError, TypeError, AttributeError) as exc:
            raise ModelError(f"{path} is not a detections model ({exc}); see the README for its shape") from None
        return cls(hosts, kb)

    def to_json(self) -> dict:
        with self.lock:
            return {"hosts": [asdict(h) for h in self.hosts], "kb": [asdict(v) for v in self.kb.values()]}

    def save(self, path: str) -> None:
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.to_json(), fh, indent=1)
        os.replace(tmp, path)

    # ------------------------------------------------------------------ the clock
    def stamp(self) -> str:
        """Now, to the second, strictly later than any stamp given before."""
        with self.lock:
            now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
            self._last = max(now, self._last + datetime.timedelta(seconds=1))
            return iso(self._last)

    # ------------------------------------------------------------------ changes
    def host(self, host_id: int) -> Host:
        i = bisect.bisect_left(self._ids, host_id)
        if i == len(self._ids) or self._ids[i] != host_id:
            raise ModelError(f"no host with ID {host_id}")
        return self.hosts[i]

    def apply(self, op: dict) -> Host:
        """One change (``op`` names it, see the README); returns the touched host, its processed time bumped."""
        kind = op.get("op")
        if kind not in ("remediate", "fix", "add_detection", "add_host"):
            raise ModelError(f"unknown op {kind!r}: remediate, fix, add_detection or add_host")
        with self.lock:
            try:
                if kind == "add_host":
                    host = self._add_host(op)
                else:
                    host = self.host(int(op["host_id"]))
                    if kind == "remediate":
                        touched = [d for d in host.detections if d.status != "Fixed"]
                    elif kind == "fix":
                        touched = [d for d in host.detections if d.qid == int(op["qid"]) and d.status != "Fixed"]
                        if not touched:
                            raise ModelError(f"host {host.id} has no open detection of QID {op['qid']}")
                    else:
                        touched = [self._add_detection(host, op)]
                    if kind in ("remediate", "fix"):
                        for d in touched:
                            d.status = "Fixed"
            except KeyError as exc:
                raise ModelError(f"op {kind} needs {exc.args[0]}") from None
            except (TypeError, ValueError) as exc:
                if isinstance(exc, ModelError):
                    raise
                raise ModelError(f"op {kind}: {exc}") from None
            when = self.stamp()
            host.processed = host.last_scan = when
            for d in (host.detections if kind == "add_host" else touched):
                d.processed = d.last_found = when
            return host

    def _add_host(self, op: dict) -> Host:
        address = ipaddress.ip_address(str(op["ip"]))
        host_id = int(op.get("host_id") or (self._ids[-1] + 1 if self._ids else 100001))
        if host_id in self._ids:
            raise ModelError(f"a host with ID {host_id} exists")
        host = Host(host_id, str(address) if address.version == 4 else None,
                    str(address) if address.version == 6 else None, "IP", op.get("os", ""), op.get("dns", ""))
        for d in op.get("detections", []):
            self._add_detection(host, d)
        i = bisect.bisect_left(self._ids, host_id)
        self._ids.insert(i, host_id)
        self.hosts.insert(i, host)
        return host

    def _add_detection(self, host: Host, op: dict) -> Detection:
        qid = int(op["qid"])
        kind = op.get("type", "Confirmed")
        if kind not in TYPES:
            raise ModelError(f"type {kind!r}: one of {', '.join(TYPES)}")
        status = op.get("status", "New")
        if status not in STATUSES:
            raise ModelError(f"status {status!r}: one of {', '.join(STATUSES)}")
        if qid not in self.kb:
            self.kb[qid] = Vuln(qid, f"Emulated vulnerability {qid}", vuln_type=VULN_TYPES[kind],
                                modified=self.stamp())
        port = op.get("port")
        detection = Detection(qid, kind, int(op.get("severity", self.kb[qid].severity)),
                              int(port) if port is not None else None, op.get("protocol"), bool(op.get("ssl", False)),
                              op.get("results", ""), status)
        host.detections.append(detection)
        return detection

    # ------------------------------------------------------------------ queries
    def select(self, *, id_min: int = 0, ips: set[str] | None = None, after: datetime.datetime | None = None,
               statuses=DEFAULT_STATUSES, limit: int) -> tuple[list[Host], int | None]:
        """Up to ``limit`` matching hosts from ``id_min`` on (copies, only matching detections),
        and the ID to continue from when more match (None on the last page)."""
        out: list[Host] = []
        with self.lock:
            for host in self.hosts[bisect.bisect_left(self._ids, id_min):]:
                if ips is not None and host.address not in ips:
                    continue
                if after is not None and parse_iso(host.processed) <= after:
                    continue
                dets = [d for d in host.detections if d.status in statuses]
                if not dets:
                    continue        # the real API leaves out hosts without a matching detection
                if len(out) == limit:
                    return out, out[-1].id + 1
                out.append(Host(**{**host.__dict__, "detections": [Detection(**d.__dict__) for d in dets]}))
        return out, None

    def vulns(self, qids: set[int] | None, after: datetime.datetime | None) -> list[Vuln]:
        with self.lock:
            chosen = (self.kb[q] for q in sorted(qids) if q in self.kb) if qids is not None else \
                (self.kb[q] for q in sorted(self.kb))
            return [Vuln(**v.__dict__) for v in chosen if after is None or parse_iso(v.modified) > after]
