"""A small authenticating web proxy on loopback: CONNECT tunnels for https, forwarding for http.

Enough to prove that the Qualys client really goes through the configured proxy with its
credentials (the Perl connector's 1.0.1 feature). ``relayed`` counts requests passed on.
"""
from __future__ import annotations

import base64
import http.client
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class AuthProxy:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, username: str, password: str):
        self.host, self.requested_port = host, port
        self.expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.relayed = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def count(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def start(self) -> int:
        proxy = self

        class Handler(_ProxyHandler):
            pass
        Handler.proxy = proxy
        self._server = ThreadingHTTPServer((self.host, self.requested_port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True, name="auth-proxy").start()
        return self.port

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "AuthProxy":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class _ProxyHandler(BaseHTTPRequestHandler):
    proxy: AuthProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _authorized(self) -> bool:
        if self.headers.get("Proxy-Authorization") == self.proxy.expected:
            return True
        self.proxy.count("refused")
        self.send_response(407)
        self.send_header("Proxy-Authenticate", 'Basic realm="emulated proxy"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def do_CONNECT(self):
        if not self._authorized():
            return
        host, _, port = self.path.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=30)
        except OSError:
            self.send_error(502)
            return
        self.proxy.count("relayed")
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        sockets = [self.connection, upstream]
        try:
            while True:
                ready, _, _ = select.select(sockets, [], [], 30)
                if not ready:
                    break
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is self.connection else self.connection).sendall(data)
        except OSError:
            pass
        finally:
            upstream.close()

    def _forward(self):
        if not self._authorized():
            return
        url = urlsplit(self.path)
        if url.scheme != "http":
            self.send_error(400, "absolute http:// URL expected")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-authorization", "proxy-connection")}
        conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=60)
        try:
            conn.request(self.command, url.path + (f"?{url.query}" if url.query else ""), body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except OSError:
            self.send_error(502)
            return
        finally:
            conn.close()
        self.proxy.count("relayed")
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _forward
    do_POST = _forward
