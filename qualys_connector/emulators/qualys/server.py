"""Qualys VM API v2 on loopback: the calls qualys-connector and censys-qualys make, answered the Qualys way.

Faithful to the qualys-api spec where it is sure: basic auth, ``X-Requested-With`` required,
GET or POST form parameters, SIMPLE_RETURN / REPORT_LIST_OUTPUT / IP_LIST_OUTPUT documents with
their DOCTYPE lines, the six limit headers on every answer, limits counted per API endpoint
(409 + CODE 1960 when more calls of one endpoint run at once than the concurrency limit, 409 +
CODE 1965 with ``X-RateLimit-ToWait-Sec`` when an endpoint's calls of the window are used up),
reports that go Submitted → Running → Finished, the report body streamed (a generated
million-host report costs no memory). The Host List Detection and KnowledgeBase calls answer
from a ``DetectionModel`` (``detectionapi.py``), behind the same auth, header and limit checks;
the KnowledgeBase allows one call at a time, and ``/emulator/detections`` (not a Qualys call)
shows and changes the model.
Where the spec is unsure (marked [?]) the choice is ours: the CODE for a missing
``X-Requested-With`` header, the CODE for fetching an unfinished report, the HTTP status of a
CODE 999 answer (200 here), IPv6 addresses refused by asset/ip add as well as by the
excluded-IP list (both are documented for IPv4 only; what the real service answers is not
known), and removing an IP that is not on the excluded list succeeding quietly.
"""
from __future__ import annotations

import base64
import datetime
import ipaddress
import itertools
import json
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from .detectionapi import DETECTION_PATH, KB_PATH, ParamError, detection_page, kb_list
from .detectionmodel import DetectionModel, ModelError
from .reportgen import generate_report

CONTROL_PATH = "/emulator/detections"
REPORT_FAULTS = {"errors", "canceled", "simple-return", "truncated", "dropped"}
CALL_FAULTS = {"409-1960", "409-1965", "401", "503", "busy"}


@dataclass
class TemplateSpec:
    """What a report template produces: a file, a generated report, or a fault."""

    path: str | None = None
    hosts: int = 0
    vulns_per_host: int = 20
    seed: int = 1
    distinct_qids: int = 2000
    ipv6_every: int = 10
    network: str = "10.0.0.0/8"
    fault: str | None = None          # errors | canceled | simple-return | truncated
    delay: float | None = None        # overrides the emulator's report_delay

    def write(self, out) -> None:
        if self.path:
            with open(self.path, "rb") as fh:
                while True:
                    chunk = fh.read(1 << 16)
                    if not chunk:
                        return
                    out.write(chunk)
        else:
            generate_report(out, hosts=self.hosts, vulns_per_host=self.vulns_per_host, seed=self.seed,
                            distinct_qids=self.distinct_qids, ipv6_every=self.ipv6_every,
                            network=self.network)


@dataclass
class Report:
    report_id: str
    template_id: str
    launched: float
    delay: float
    fault: str | None
    user: str
    canceled: bool = False
    launched_at: str = field(default_factory=lambda: _now_iso())

    def state(self, now: float) -> str:
        if self.canceled or self.fault == "canceled" and now - self.launched >= self.delay:
            return "Canceled"
        if now - self.launched < self.delay / 3:
            return "Submitted"
        if now - self.launched < self.delay:
            return "Running"
        return "Errors" if self.fault == "errors" else "Finished"


@dataclass
class State:
    asset_ips: set = field(default_factory=set)
    excluded_ips: set = field(default_factory=set)
    reports: dict = field(default_factory=dict)
    request_log: list = field(default_factory=list)
    max_concurrent_reports: int = 0
    max_concurrent_calls: int = 0
    deleted_reports: list = field(default_factory=list)
    detection_pages: int = 0
    detection_forms: list = field(default_factory=list)     # the parameters of every detection page answered
    detection_datetimes: list = field(default_factory=list)  # and the DATETIME each one gave
    kb_calls: list = field(default_factory=list)     # the ids parameter of every KB call answered
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def _now_iso(days: int = 0) -> str:
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def simple_return(text: str, code: str | None = None, items: dict | None = None) -> bytes:
    parts = ['<?xml version="1.0" encoding="UTF-8" ?>\n'
             '<!DOCTYPE SIMPLE_RETURN SYSTEM "https://qualysapi.qualys.com/api/2.0/simple_return.dtd">\n'
             f"<SIMPLE_RETURN>\n  <RESPONSE>\n    <DATETIME>{_now_iso()}</DATETIME>\n"]
    if code is not None:
        parts.append(f"    <CODE>{code}</CODE>\n")
    parts.append(f"    <TEXT>{escape(text)}</TEXT>\n")
    if items:
        parts.append("    <ITEM_LIST>\n")
        for key, value in items.items():
            parts.append(f"      <ITEM>\n        <KEY>{escape(key)}</KEY>\n        <VALUE>{escape(str(value))}</VALUE>\n      </ITEM>\n")
        parts.append("    </ITEM_LIST>\n")
    parts.append("  </RESPONSE>\n</SIMPLE_RETURN>\n")
    return "".join(parts).encode()


def _ip_list(entries) -> bytes:
    rows = "".join(f"        <IP_RANGE>{e}</IP_RANGE>\n" if "-" in e else f"        <IP>{e}</IP>\n"
                   for e in entries)
    return ('<?xml version="1.0" encoding="UTF-8" ?>\n'
            '<!DOCTYPE IP_LIST_OUTPUT SYSTEM "https://qualysapi.qualys.com/api/2.0/fo/asset/ip/ip_list_output.dtd">\n'
            f"<IP_LIST_OUTPUT>\n  <RESPONSE>\n    <DATETIME>{_now_iso()}</DATETIME>\n"
            f"    <IP_SET>\n{rows}    </IP_SET>\n  </RESPONSE>\n</IP_LIST_OUTPUT>\n").encode()


def _expand(ips: str) -> list[str]:
    """``a,b-c,10.0.0.0/30`` → single addresses (the emulator stores single IPs)."""
    out = []
    for entry in (e.strip() for e in ips.split(",")):
        if not entry:
            continue
        if "/" in entry:
            out.extend(str(a) for a in ipaddress.ip_network(entry, strict=False))
        elif "-" in entry:
            low, high = (ipaddress.ip_address(p.strip()) for p in entry.split("-", 1))
            if int(high) - int(low) > 65536:
                raise ValueError(f"range {entry} too large for the emulator")
            out.extend(str(ipaddress.ip_address(v)) for v in range(int(low), int(high) + 1))
        else:
            out.append(str(ipaddress.ip_address(entry)))
    return out


class _Chunked:
    """File-like writer that frames what it is given as HTTP/1.1 chunks."""

    def __init__(self, wfile, limit: int | None = None):
        self.wfile, self.limit, self.sent = wfile, limit, 0
        self._buffer = bytearray()

    def write(self, data: bytes) -> None:
        if self.limit is not None:
            if self.sent >= self.limit:
                raise _Truncate()
            data = data[: self.limit - self.sent]
        self._buffer += data
        self.sent += len(data)
        if len(self._buffer) >= 1 << 16:
            self.flush()
        if self.limit is not None and self.sent >= self.limit:
            raise _Truncate()

    def flush(self) -> None:
        if self._buffer:
            self.wfile.write(b"%x\r\n" % len(self._buffer) + bytes(self._buffer) + b"\r\n")
            self._buffer.clear()

    def close(self) -> None:
        self.flush()
        self.wfile.write(b"0\r\n\r\n")


class _Truncate(Exception):
    pass


class QualysEmulator:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, users: dict[str, str] | None = None,
                 templates: dict[str, TemplateSpec] | None = None, report_delay: float = 0.0,
                 tls_dir: str | None = None, concurrency_limit: int = 2, rate_limit: int = 300,
                 rate_window: float = 3600.0, max_running_reports: int = 8,
                 detections: DetectionModel | None = None, detection_page_cap: int = 10000, kb_delay: float = 0.0):
        self.host, self.requested_port = host, port
        self.users = users or {"user": "pass"}
        self.templates = {str(k): v for k, v in (templates or {}).items()}
        self.report_delay, self.concurrency_limit, self.rate_limit = report_delay, concurrency_limit, rate_limit
        self.rate_window = rate_window
        self.max_running_reports = max_running_reports
        self.detections = detections if detections is not None else DetectionModel.generate(50)
        self.detection_page_cap, self.kb_delay = detection_page_cap, kb_delay
        # Qualys allows one KnowledgeBase call per subscription at a time, whatever the account's limit.
        self.endpoint_concurrency = {KB_PATH: 1}
        self.tls_dir, self.ca_cert = tls_dir, None
        self.state = State()
        self._faults: list[str] = []
        self._ids = itertools.count(1212970)
        self._running: dict[str, int] = {}                   # API endpoint -> calls running now
        self._window: dict[str, tuple[float, int]] = {}      # API endpoint -> (window start, calls in it)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ------------------------------------------------------------------ control
    def inject(self, fault: str, template_id: str | None = None) -> None:
        """A call fault for the next call (``409-1960``, ``409-1965``, ``401``, ``503``, ``busy``),
        or a report fault for a template (``errors``, ``canceled``, ``simple-return``, ``truncated``)."""
        if template_id is not None:
            self.templates[str(template_id)].fault = fault
        else:
            if fault not in CALL_FAULTS:
                raise ValueError(f"unknown call fault {fault!r}")
            with self.state.lock:
                self._faults.append(fault)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls_dir else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def start(self) -> int:
        emulator = self

        class Handler(_Handler):
            pass
        Handler.emulator = emulator
        server_class = ThreadingHTTPServer
        if ":" in self.host:
            class V6(ThreadingHTTPServer):
                address_family = socket.AF_INET6
            server_class = V6
        self._server = server_class((self.host, self.requested_port), Handler)
        self._server.daemon_threads = True
        if self.tls_dir:
            from ..pki import init_pki
            paths = init_pki(self.tls_dir, hosts=("localhost", "127.0.0.1", "::1"))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(paths.server_cert, paths.server_key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.ca_cert = paths.ca_cert
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="qualys-emulator", daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "QualysEmulator":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers for the handler
    def next_fault(self) -> str | None:
        with self.state.lock:
            return self._faults.pop(0) if self._faults else None

    def running_reports(self, now: float) -> int:
        return sum(1 for r in self.state.reports.values() if r.state(now) in ("Submitted", "Running"))

    def count_call(self, endpoint: str, now: float) -> tuple[int, int, bool, int]:
        """Book one call of ``endpoint`` (under the state lock).

        Returns (running, remaining, over concurrency, seconds to wait when the window is used up).
        """
        start, used = self._window.get(endpoint, (now, 0))
        if now - start >= self.rate_window:
            start, used = now, 0
        to_wait = 0
        if used >= self.rate_limit:
            to_wait = max(1, int(start + self.rate_window - now + 0.999))
        else:
            used += 1
        self._window[endpoint] = (start, used)
        running = self._running.get(endpoint, 0) + 1
        self._running[endpoint] = running
        self.state.max_concurrent_calls = max(self.state.max_concurrent_calls, running)
        return running, self.rate_limit - used, running > self.concurrency(endpoint), to_wait

    def concurrency(self, endpoint: str) -> int:
        return min(self.concurrency_limit, self.endpoint_concurrency.get(endpoint, self.concurrency_limit))

    def call_done(self, endpoint: str) -> None:
        with self.state.lock:
            self._running[endpoint] -= 1


class _Handler(BaseHTTPRequestHandler):
    emulator: QualysEmulator
    protocol_version = "HTTP/1.1"
    server_version = "QualysEmulator/1.0"

    def log_message(self, fmt, *args):  # keep test output quiet
        pass

    def do_GET(self):
        self._handle()

    def do_POST(self):
        self._handle()

    # ------------------------------------------------------------------ plumbing
    def _params(self) -> dict[str, str]:
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            body = self.rfile.read(length).decode("utf-8", "replace")
            params.update({k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()})
        return params

    _running = _remaining = _to_wait = 0
    _endpoint = ""

    def _limit_headers(self) -> list[tuple[str, str]]:
        e = self.emulator
        return [("X-RateLimit-Limit", str(e.rate_limit)), ("X-RateLimit-Window-Sec", str(int(e.rate_window))),
                ("X-RateLimit-Remaining", str(max(self._remaining, 0))),
                ("X-RateLimit-ToWait-Sec", str(self._to_wait)),
                ("X-Concurrency-Limit-Limit", str(e.concurrency(self._endpoint))),
                ("X-Concurrency-Limit-Running", str(self._running))]

    def _send(self, status: int, body: bytes, headers=()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/xml;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in list(self._limit_headers()) + list(headers):
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _user(self) -> str | None:
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except Exception:
            return None
        return user if self.emulator.users.get(user) == password else None

    def _handle(self) -> None:
        e = self.emulator
        path = urlsplit(self.path).path
        if path == CONTROL_PATH:
            return self._control()
        params = self._params()
        self._endpoint = path
        with e.state.lock:
            e.state.request_log.append((path, params.get("action"), {k: v for k, v in params.items() if k != "ips"}))
            self._running, self._remaining, too_many, self._to_wait = e.count_call(path, time.monotonic())
        try:
            user = self._user()
            if user is None:
                self.send_response(401)
                body = simple_return("Bad Login/Password", "2000")  # the seed shows 2010 for this text [?]
                self.send_header("WWW-Authenticate", 'Basic realm="QualysGuard"')
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "text/xml;charset=UTF-8")
                self.end_headers()
                self.wfile.write(body)
                return
            if not self.headers.get("X-Requested-With"):
                return self._send(400, simple_return("Missing required header X-Requested-With", "1903"))  # CODE [?]
            fault = e.next_fault()
            if fault == "401":
                return self._send(401, simple_return("Bad Login/Password", "2000"))
            if fault == "503":
                return self._send(503, b"<html><body>Service Unavailable: planned maintenance</body></html>")
            if fault == "409-1965":
                self._to_wait, self._remaining = 2, 0
            if self._to_wait:
                hours, rest = divmod(self._to_wait, 3600)
                return self._send(409, simple_return(
                    f"This API cannot be run again for another {hours} hours, {rest // 60} minutes and "
                    f"{rest % 60} seconds.", "1965", {"SECONDS_TO_WAIT": self._to_wait}))
            if fault == "409-1960" or too_many:
                return self._send(409, simple_return("This API cannot be run again until 1 currently running "
                                                     "instance has finished.", "1960", {"CALLS_TO_FINISH": 1}))
            if path == "/api/2.0/fo/report/":
                return self._report(params, user, busy=fault == "busy")
            if path == "/api/2.0/fo/asset/ip/":
                return self._asset_ip(params)
            if path == "/api/2.0/fo/asset/excluded_ip/":
                return self._excluded_ip(params)
            if path == "/msp/report_template_list.php":
                return self._template_list()
            if path == DETECTION_PATH:
                return self._detections(params)
            if path == KB_PATH:
                return self._knowledge_base(params)
            return self._send(404, simple_return(f"Unknown API path {path}", "1903"))
        finally:
            e.call_done(path)

    # ------------------------------------------------------------------ detections and KnowledgeBase
    def _detections(self, params):
        e = self.emulator
        scheme = "https" if e.tls_dir else "http"
        base = f"{scheme}://{self.headers.get('Host') or f'{e.host}:{e.port}'}"
        try:
            body = detection_page(e.detections, params, base, e.detection_page_cap, _expand)
        except ParamError as exc:
            return self._send(400, simple_return(str(exc), exc.code))
        with e.state.lock:
            e.state.detection_pages += 1
            e.state.detection_forms.append(dict(params))
            stamp = body.split(b"<DATETIME>", 1)[1].split(b"</DATETIME>", 1)[0]
            e.state.detection_datetimes.append(stamp.decode())
        return self._send(200, body)

    def _knowledge_base(self, params):
        e = self.emulator
        try:
            body = kb_list(e.detections, params)
        except ParamError as exc:
            return self._send(400, simple_return(str(exc), exc.code))
        if e.kb_delay:
            time.sleep(e.kb_delay)        # long enough for a second KB call to meet this one
        with e.state.lock:
            e.state.kb_calls.append(params.get("ids", ""))
        return self._send(200, body)

    def _control(self):
        """``GET``: the detections model as JSON; ``POST`` a JSON op: change it (see the README)."""
        model = self.emulator.detections
        if self.command == "GET":
            return self._json(200, model.to_json())
        length = int(self.headers.get("Content-Length") or 0)
        try:
            op = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(op, dict):
                raise ModelError("send one JSON object with an op")
            host = model.apply(op)
        except (ValueError, ModelError) as exc:
            return self._json(400, {"error": str(exc)})
        return self._json(200, {"host_id": host.id, "processed": host.processed})

    def _json(self, status: int, data) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    # ------------------------------------------------------------------ reports
    def _report(self, params, user, busy=False):
        e = self.emulator
        action = params.get("action")
        now = time.monotonic()
        if action == "launch":
            template_id = params.get("template_id", "")
            if not params.get("output_format"):
                return self._send(400, simple_return("Missing required parameter output_format", "1903"))
            spec = e.templates.get(template_id)
            if spec is None:
                return self._send(200, simple_return("Internal error. Please contact customer support.", "999",
                                                     {"Incident Signature": "Tried to launch invalid report."}))
            with e.state.lock:
                if busy or e.running_reports(now) >= e.max_running_reports:
                    return self._send(200, simple_return("Max number of allowed reports already running. "
                                                         "Please try again later."))
                report_id = str(next(e._ids))
                delay = spec.delay if spec.delay is not None else e.report_delay
                e.state.reports[report_id] = Report(report_id, template_id, now, delay, spec.fault, user)
                e.state.max_concurrent_reports = max(e.state.max_concurrent_reports, e.running_reports(now))
            return self._send(200, simple_return("New report launched", None, {"ID": report_id}))
        report = e.state.reports.get(params.get("id", ""))
        if action == "list":
            rows = ""
            if "id" in params:
                listed = [report] if report is not None else []
            else:
                with e.state.lock:
                    listed = list(e.state.reports.values())
            for report in listed:
                state = report.state(now)
                percent = "" if state != "Running" else f"<PERCENT>{min(99, int(100 * (now - report.launched) / max(report.delay, 0.001)))}</PERCENT>"
                message = "<MESSAGE><![CDATA[Report generation failed: scan data unavailable]]></MESSAGE>" if state == "Errors" else ""
                rows += (f"      <REPORT>\n        <ID>{report.report_id}</ID>\n"
                        f"        <TITLE><![CDATA[Template {report.template_id}]]></TITLE>\n"
                        f"        <TYPE>Scan</TYPE>\n        <USER_LOGIN>{report.user}</USER_LOGIN>\n"
                        f"        <LAUNCH_DATETIME>{report.launched_at}</LAUNCH_DATETIME>\n        <OUTPUT_FORMAT>XML</OUTPUT_FORMAT>\n"
                        f"        <SIZE>{'-' if state != 'Finished' else '1.0 MB'}</SIZE>\n"
                        f"        <STATUS><STATE>{state}</STATE>{message}{percent}</STATUS>\n"
                        f"        <EXPIRATION_DATETIME>{_now_iso(days=7)}</EXPIRATION_DATETIME>\n      </REPORT>\n")
            body = ('<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE REPORT_LIST_OUTPUT SYSTEM '
                    '"https://qualysapi.qualys.com/api/2.0/fo/report/report_list_output.dtd">\n'
                    f"<REPORT_LIST_OUTPUT>\n  <RESPONSE>\n    <DATETIME>{_now_iso()}</DATETIME>\n"
                    + (f"    <REPORT_LIST>\n{rows}    </REPORT_LIST>\n" if rows else "")
                    + "  </RESPONSE>\n</REPORT_LIST_OUTPUT>\n")
            return self._send(200, body.encode())
        if report is None:
            return self._send(400, simple_return(f"parameter id has invalid value: {params.get('id')}", "1905"))
        if action == "delete":
            with e.state.lock:
                e.state.reports.pop(report.report_id, None)
                e.state.deleted_reports.append(report.report_id)
            return self._send(200, simple_return("Report deleted", None, {"ID": report.report_id}))
        if action == "cancel":
            report.canceled = True
            return self._send(200, simple_return("Report canceled", None, {"ID": report.report_id}))
        if action == "fetch":
            if report.state(now) != "Finished":
                return self._send(400, simple_return("Report is not finished yet", "999"))  # CODE [?]
            if report.fault == "simple-return":
                return self._send(200, simple_return("Internal error. Please contact customer support.", "999",
                                                     {"Incident Signature": "Report file unavailable."}))
            return self._stream_report(e.templates[report.template_id], truncated=report.fault in ("truncated", "dropped"),
                                       drop=report.fault == "dropped")
        return self._send(400, simple_return(f"parameter action has invalid value: {action}", "1905"))

    def _stream_report(self, spec: TemplateSpec, truncated: bool, drop: bool = False):
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Content-Disposition", 'attachment; filename="report.xml"')
        for name, value in self._limit_headers():
            self.send_header(name, value)
        self.end_headers()
        limit = None
        if truncated:
            limit = 2000 if not spec.path else max(100, os.path.getsize(spec.path) // 2)
        writer = _Chunked(self.wfile, limit)
        try:
            spec.write(writer)
        except _Truncate:
            if drop:   # the connection dies mid-body: no chunked terminator, the socket just closes
                writer.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            # otherwise the body ends cleanly, mid-XML: what a cut-off report looks like on disk
        except (BrokenPipeError, ConnectionResetError):
            return
        writer.close()

    # ------------------------------------------------------------------ asset IPs
    def _ipv4_list(self, params) -> list[str] | None:
        """The ``ips`` parameter as single addresses, or None after answering with the error.

        Both asset-IP calls are documented for IPv4 only; what the real service answers to an IPv6
        address is not known [?]: we refuse it with CODE 1905.
        """
        try:
            ips = _expand(params.get("ips", ""))
        except ValueError as exc:
            self._send(400, simple_return(f"parameter ips has invalid value: {exc}", "1905"))
            return None
        if not ips:
            self._send(400, simple_return("Missing required parameter ips", "1903"))
            return None
        if any(":" in ip for ip in ips):
            self._send(400, simple_return("parameter ips has invalid value: IPv6 addresses need IPv4/IPv6 "
                                          "mapping records", "1905"))
            return None
        return ips

    def _asset_ip(self, params):
        e = self.emulator
        action = params.get("action")
        if action == "list":
            return self._send(200, _ip_list(sorted(e.state.asset_ips, key=_sort_key)))
        if action == "add":
            if params.get("enable_vm") != "1" and params.get("enable_pc") != "1":
                return self._send(400, simple_return("At least one of enable_vm or enable_pc must be 1", "1903"))
            ips = self._ipv4_list(params)
            if ips is None:
                return None
            with e.state.lock:
                e.state.asset_ips.update(ips)
            return self._send(200, simple_return("IPs successfully added to Vulnerability Management"))
        return self._send(400, simple_return(f"parameter action has invalid value: {action}", "1905"))

    def _excluded_ip(self, params):
        e = self.emulator
        action = params.get("action")
        if action == "list":
            return self._send(200, _ip_list(sorted(e.state.excluded_ips, key=_sort_key)))
        if action in ("add", "remove"):
            if not params.get("comment"):
                return self._send(400, simple_return("Missing required parameter comment", "1903"))
            ips = self._ipv4_list(params)
            if ips is None:
                return None
            with e.state.lock:
                if action == "add":
                    e.state.excluded_ips.update(ips)
                    return self._send(200, simple_return("IPs successfully added to excluded IPs list"))
                e.state.excluded_ips.difference_update(ips)
            return self._send(200, simple_return("Removed IPs from Excluded IPs list.", None,
                                                 {"Removed IPs": ",".join(ips)}))
        return self._send(400, simple_return(f"parameter action has invalid value: {action}", "1905"))

    def _template_list(self):
        rows = "".join(f"  <REPORT_TEMPLATE>\n    <ID>{tid}</ID>\n    <TYPE>Auto</TYPE>\n"
                       f"    <TEMPLATE_TYPE>Scan</TEMPLATE_TYPE>\n    <TITLE><![CDATA[Emulated template {tid}]]></TITLE>\n"
                       f"  </REPORT_TEMPLATE>\n" for tid in self.emulator.templates)
        body = ('<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE REPORT_TEMPLATE_LIST SYSTEM '
                '"https://qualysapi.qualys.com/report_template_list.dtd">\n'
                f"<REPORT_TEMPLATE_LIST>\n{rows}</REPORT_TEMPLATE_LIST>\n")
        return self._send(200, body.encode())


def _sort_key(ip: str):
    address = ipaddress.ip_address(ip)
    return (address.version, int(address))
