"""The Censys ASM logbook API (v1) on loopback, as the docs/censys-api.md §1 describes it.

``POST /api/v1/logbook-cursor`` takes ``idFrom``/``dateFrom``/``filter.type`` and returns an opaque
cursor (base64 of JSON, like the real one); ``GET /api/v1/logbook?cursor=`` returns a page of
events with ``nextCursor`` and ``endOfEvents``. The page size is the server's choice (not
published for the real API [?]). Events are either a scripted list or generated on demand from
their id, so 100,000 events cost nothing until asked for.

A hostile ``mode`` (for tests and rehearsals) makes every page misbehave: ``repeat-cursor``
answers with the cursor it was asked with and never ``endOfEvents``; ``stuck-ids`` serves
the same events under ever new cursors; ``endless`` never says ``endOfEvents`` and makes up
new events (advancing ids) past the end. One-shot faults for the next request (``inject``)
include malformed pages: ``not-objects``, ``deep-json``, ``huge-id``.
"""
from __future__ import annotations

import base64
import datetime
import json
import random
import itertools
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def _when(iso: str) -> datetime.datetime:
    when = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc)


def generated_event(event_id: int, seed: int = 1, pool: int = 500) -> dict:
    """Event ``event_id`` of a deterministic stream: mostly HOST associate/disassociate, some others."""
    rng = random.Random(seed * 999_983 + event_id)
    n = rng.randrange(pool)
    ip = f"198.51.{100 + n // 250}.{n % 250 + 1}" if n % 23 else f"2001:db8:c::{n:x}"
    if rng.random() < 0.2:
        return {"id": event_id, "type": "HOST_PORT", "operation": "ADD", "timestamp": "2026-01-01T00:00:00.000Z",
                "entity": {"ipAddress": ip}, "data": {"port": 443}}
    operation = "ASSOCIATE" if rng.random() < 0.7 else "DISASSOCIATE"
    return {"id": event_id, "type": "HOST", "operation": operation, "timestamp": "2026-01-01T00:00:00.000Z",
            "entity": {"ipAddress": ip}}


def encode_cursor(start: int, types, turn: int | None = None) -> str:
    state = {"filter": {"type": types} if types else {}, "start": start}
    if turn is not None:
        state["turn"] = turn          # stuck-ids: a new cursor for the same place
    return base64.b64encode(json.dumps(state).encode()).decode()


MODES = ("repeat-cursor", "stuck-ids", "endless")
DEEP = 100_000
HUGE_ID = 10**30
PAGE_FAULTS = ("not-objects", "deep-json", "huge-id")


class CensysEmulator:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, api_key: str = "test-key",
                 events: list[dict] | None = None, generate: int | None = None, page_size: int = 100, seed: int = 1,
                 mode: str | None = None):
        if mode is not None and mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        self.host, self.requested_port, self.api_key = host, port, api_key
        self.mode = mode
        self.pages = 0
        self._turns = itertools.count(1)
        self.page_size, self.seed = page_size, seed
        self.generated = generate or 0
        self.events: list[dict] = []
        self.requests = 0
        self.cursor_requests: list[dict] = []
        self._faults: list[str] = []
        self._page_faults: list[str] = []
        self._lock = threading.Lock()
        self._server = None
        self.port = 0
        if events:
            self.append(events)

    # ------------------------------------------------------------------ control
    def append(self, events: list[dict]) -> None:
        """Add scripted events; ids continue the sequence when missing."""
        with self._lock:
            for event in events:
                event = dict(event)
                event.setdefault("id", self.last_id + 1)
                event.setdefault("timestamp", "2026-01-01T00:00:00.000Z")
                self.events.append(event)

    @property
    def last_id(self) -> int:
        return self.events[-1]["id"] if self.events else self.generated

    def inject(self, fault: str) -> None:
        """For the next request: ``429`` (Retry-After: 1), ``500``, ``invalid-cursor``; for the next page:
        ``not-objects`` (events that are not JSON objects), ``deep-json`` (a body nested 100,000
        deep), ``huge-id`` (an event with id 10**30)."""
        with self._lock:
            (self._page_faults if fault in PAGE_FAULTS else self._faults).append(fault)

    def event(self, event_id: int) -> dict | None:
        if 1 <= event_id <= self.generated:
            return generated_event(event_id, self.seed)
        for event in self.events:
            if event["id"] == event_id:
                return event
        return None

    def iter_from(self, start: int):
        for event_id in range(max(start, 1), self.generated + 1):
            yield generated_event(event_id, self.seed)
        for event in list(self.events):
            if event["id"] >= start:
                yield event
        if self.mode == "endless":      # made-up events past the end, for ever
            for event_id in itertools.count(max(start, self.last_id + 1)):
                yield generated_event(event_id, self.seed)

    def first_id_at(self, iso: str) -> int:
        """Id of the first event at or after an ISO-8601 time (what a ``dateFrom`` cursor starts at)."""
        since = _when(iso)
        last = 0
        for event in self.iter_from(0):
            last = event["id"]
            if _when(event.get("timestamp") or "1970-01-01T00:00:00Z") >= since:
                return last
        return last + 1

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    def start(self) -> int:
        emulator = self

        class Handler(_Handler):
            pass
        Handler.emulator = emulator
        self._server = ThreadingHTTPServer((self.host, self.requested_port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True, name="censys-emulator").start()
        return self.port

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "CensysEmulator":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    emulator: CensysEmulator
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _send(self, status: int, payload: dict | bytes, headers=()) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, code: int, message: str, headers=()) -> None:
        self._send(status, {"statusCode": status, "errorCode": code, "error": message}, headers)

    def _gate(self) -> bool:
        e = self.emulator
        with e._lock:
            e.requests += 1
            fault = e._faults.pop(0) if e._faults else None
        key = self.headers.get("Censys-Api-Key")
        if not key:
            self._error(401, 10000, "Missing API key.")
            return False
        if key != e.api_key:
            self._error(401, 10001, "Invalid API key.")
            return False
        if fault == "429":
            self._error(429, 10039, "Too many requests.", [("Retry-After", "1")])
            return False
        if fault == "500":
            self._error(500, 10098, "Internal server error.")
            return False
        if fault == "invalid-cursor":
            self._error(400, 10040, "Invalid logbook cursor.")
            return False
        return True

    def do_POST(self):
        if urlsplit(self.path).path != "/api/v1/logbook-cursor":
            return self._error(404, 10008, "Not found.")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        if not self._gate():
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._error(400, 10067, "Invalid JSON body.")
        self.emulator.cursor_requests.append(body)
        types = ((body.get("filter") or {}).get("type")) or None
        if body.get("idFrom") is None and body.get("dateFrom"):
            try:
                start = self.emulator.first_id_at(str(body["dateFrom"]))
            except ValueError:
                return self._error(400, 10067, "Invalid dateFrom.")
        else:
            start = int(body.get("idFrom") or 0)
        self._send(200, {"cursor": encode_cursor(start, types)})

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path != "/api/v1/logbook":
            return self._error(404, 10008, "Not found.")
        if not self._gate():
            return
        e = self.emulator
        with e._lock:
            e.pages += 1
            fault = e._page_faults.pop(0) if e._page_faults else None
        if fault == "deep-json":
            return self._send(200, b'{"events": ' + b"[" * DEEP + b"]" * DEEP + b"}")
        if fault == "not-objects":
            return self._send(200, {"events": [["HOST", "ASSOCIATE"], "198.51.100.1", 7], "endOfEvents": True})
        if fault == "huge-id":
            return self._send(200, {"events": [{"id": HUGE_ID, "type": "HOST", "operation": "ASSOCIATE",
                                                "entity": {"ipAddress": "198.51.100.1"}}], "endOfEvents": True})
        token = (parse_qs(url.query).get("cursor") or [""])[0]
        if token:
            try:
                state = json.loads(base64.b64decode(token, validate=True))
                start, types = int(state["start"]), (state.get("filter") or {}).get("type")
            except (ValueError, KeyError, TypeError):
                return self._error(400, 10040, "Invalid logbook cursor.")
        else:
            start, types = 0, None     # no cursor: from inception, as the real API does
        page, next_start, more = [], start, False
        for event in e.iter_from(start):
            if types and event.get("type") not in types:
                next_start = event["id"] + 1
                continue
            if len(page) >= e.page_size:
                more = True
                break
            page.append(event)
            next_start = event["id"] + 1
        if e.mode == "repeat-cursor":
            return self._send(200, {"events": page, "nextCursor": token, "endOfEvents": False})
        if e.mode == "stuck-ids":
            return self._send(200, {"events": page, "nextCursor": encode_cursor(start, types, next(e._turns)),
                                    "endOfEvents": False})
        self._send(200, {"events": page, "nextCursor": encode_cursor(next_start, types), "endOfEvents": not more})
