"""A tiny hostile Qualys in front of the emulator: every call is relayed, but the fetch is not.

``mode`` says what the fetch gets: "trickle" (headers, then one byte a second), "stall" (headers,
then silence), "redirect" (HTTP 302 to another host). Used by the robustness tests.
"""
from __future__ import annotations

import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class HostileQualys:
    def __init__(self, upstream: str, mode: str):
        self.upstream, self.mode = upstream, mode
        self.fetches = 0
        self.closing = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                params = dict(urllib.parse.parse_qsl(body.decode()))
                if params.get("action") == "fetch":
                    outer.fetches += 1
                    return outer.hostile_fetch(self)
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "x-requested-with",
                                                                                 "content-type")}
                answer = httpx.post(outer.upstream + self.path, content=body, headers=headers)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "text/xml"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def hostile_fetch(self, handler: BaseHTTPRequestHandler) -> None:
        if self.mode == "redirect":
            handler.send_response(302)
            handler.send_header("Location", "https://elsewhere.example/api/2.0/fo/report/?action=fetch")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/xml")
        handler.send_header("Content-Length", "1000000")
        handler.end_headers()
        handler.wfile.flush()
        if self.mode == "stall":
            self.closing.wait(120)
            return
        for byte in b'<?xml version="1.0" encoding="UTF-8" ?>\n<ASSET_DATA_REPORT>' * 100:
            if self.closing.wait(1.0):
                return
            try:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
            except OSError:
                return

    def __enter__(self) -> "HostileQualys":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
