"""Answers read into memory stop at a limit: a server that sends without end cannot exhaust a run.

Reports and detection pages are streamed to disk (tests/test_download_limits.py); every other
answer of Qualys and Censys is read into memory, up to httpbody.MAX_BODY. Here a real HTTP server
on loopback sends a body that never ends, and each client must stop with one clear error.
"""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from qualys_connector import httpbody
from qualys_connector.censys.api import CensysClient
from qualys_connector.errors import CensysError, QualysError
from qualys_connector.qualys.transport import QualysTransport


class EndlessServer:
    """Answers every request with 200 and a chunked body of zeros that never ends."""

    def __init__(self, content_type="application/json"):
        self.sent = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"0" * 65536
                try:
                    while outer.sent < 1 << 30:          # a gigabyte at most: the test's own safety net
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        outer.sent += len(chunk)
                except OSError:
                    return                               # the client hung up: what we expect

            do_GET = do_POST = answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endless(monkeypatch):
    monkeypatch.setattr(httpbody, "MAX_BODY", 1 << 20)
    server = EndlessServer()
    yield server
    server.close()


def test_a_censys_answer_without_end_is_one_error_after_the_limit(endless):
    with CensysClient("k" * 20, endless.url, timeout=10) as client:
        with pytest.raises(CensysError) as info:
            client.cursor(1)
    assert "Censys sent more than 1 MB for" in info.value.message and "nothing of it was used" in info.value.message
    assert endless.sent < 64 << 20        # the client stopped reading near the limit


def test_a_qualys_answer_without_end_is_one_error_after_the_limit(endless):
    transport = QualysTransport(endless.url, "user", "password-long-enough", timeout=10)
    try:
        with pytest.raises(QualysError) as info:
            transport.call("/api/2.0/fo/asset/ip/", {"action": "list"}, "reading the scanning IP list")
    finally:
        transport.close()
    assert info.value.message.startswith("Qualys sent more than 1 MB for reading the scanning IP list")
    assert endless.sent < 64 << 20


def mock_response(body: bytes, headers=None):
    client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, content=body,
                                                                                      headers=headers)))
    return client.stream("GET", "http://x/")


def test_a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_not():
    with mock_response(b"x" * 100) as response:
        assert httpbody.read_capped(response, 100) == b"x" * 100
    with mock_response(b"x" * 101) as response:
        assert httpbody.read_capped(response, 100) is None


def test_a_content_length_over_the_limit_is_believed_without_reading():
    with mock_response(b"x" * 10, headers={"Content-Length": "1000"}) as response:
        assert httpbody.read_capped(response, 100) is None
