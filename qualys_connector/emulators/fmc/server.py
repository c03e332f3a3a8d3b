"""The TLS side of the FMC emulator: mutual TLS, then VERSION → MAX_SIZE → DATA/reply.

Framing (docs/host-input.md §2.1): the client sends VERSION (uint32 1), we answer MAX_SIZE, then
every DATA message gets one reply. The spec does not confirm the TLV type of the reply (the
SDK reads any type but MAX_SIZE the same way); we send DATA (3) by default, ``reply_type``
changes it. A DATA message larger than MAX_SIZE, or a client version newer than ours, gets an
ERROR frame and the connection is closed — what the real FMC sends then is unknown [?].
"""
from __future__ import annotations

import logging
import socket
import ssl
import threading

from ...hostinput import tlv
from ...hostinput.replies import format_reply
from .netmap import NetworkMap
from .processor import Session, Stats

log = logging.getLogger("qualys_connector.fmc_emulator")


class FMCEmulator:
    """``with FMCEmulator(pki=paths) as fmc:`` → listening on ``fmc.port`` until the block ends."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, pki=None, ca_cert: str | None = None,
                 server_cert: str | None = None, server_key: str | None = None, max_size: int = 65536,
                 db: str = ":memory:", sink: bool = False, accept_unknown_hosts: bool = False,
                 known_hosts=(), close_after_data: int | None = None, reply_type: int = tlv.DATA,
                 record_messages: bool = True, leaf_domains=()):
        if pki is not None:
            ca_cert, server_cert, server_key = pki.ca_cert, pki.server_cert, pki.server_key
        if not (ca_cert and server_cert and server_key):
            raise ValueError("the FMC emulator needs a CA certificate, a server certificate and its key")
        self.host, self.requested_port, self.max_size = host, port, max_size
        self.sink, self.accept_unknown_hosts = sink, accept_unknown_hosts
        self.leaf_domains = tuple(leaf_domains)
        self.close_after_data, self.reply_type = close_after_data, reply_type
        self.record_messages = record_messages and not sink
        self.netmap = NetworkMap(db)
        for ip in known_hosts:
            self.netmap.add_host(ip)
        self.stats = Stats()
        self.messages: list[bytes] = []
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.load_verify_locations(cafile=ca_cert)
        self.context.load_cert_chain(server_cert, server_key)
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._clients: set[socket.socket] = set()
        self._clients_lock = threading.Lock()
        self.port = 0

    # ------------------------------------------------------------------ life cycle
    def start(self) -> int:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.requested_port))
        listener.listen(64)
        self._listener = listener
        self.port = listener.getsockname()[1]
        thread = threading.Thread(target=self._accept_loop, name="fmc-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        log.info("FMC emulator listening on %s port %d (MAX_SIZE %d%s)", self.host, self.port,
                 self.max_size, ", sink mode" if self.sink else "")
        return self.port

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            try:  # shutdown wakes the thread blocked in accept(); close alone does not on Linux
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
        with self._clients_lock:
            for client in list(self._clients):
                try:
                    client.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for thread in self._threads:
            thread.join(timeout=10)

    def __enter__(self) -> "FMCEmulator":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ connections
    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                raw, address = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(raw, address), name="fmc-client", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, raw: socket.socket, address) -> None:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.settimeout(300)
        with self._clients_lock:
            self._clients.add(raw)
        try:
            try:
                conn = self.context.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                self.stats.add(handshake_failures=1)
                log.warning("TLS handshake with %s failed: %s", address[0], getattr(exc, "reason", None) or exc)
                return
            self.stats.add(connections=1)
            peer = conn.getpeercert() or {}
            log.info("host input client %s connected (%s)", address[0], _subject(peer))
            with conn:
                self._converse(conn, address)
        finally:
            with self._clients_lock:
                self._clients.discard(raw)
            try:
                raw.close()
            except OSError:
                pass

    def _converse(self, conn: ssl.SSLSocket, address) -> None:
        decoder = tlv.FrameDecoder(max_length=max(self.max_size, 16) + 1024 * 1024)
        frames: list[tlv.Frame] = []
        session = Session(self.netmap, self.stats, accept_unknown_hosts=self.accept_unknown_hosts,
                          leaf_domains=self.leaf_domains)
        received = 0

        def next_frame() -> tlv.Frame | None:
            while not frames:
                try:
                    chunk = conn.recv(262144)
                except (OSError, ssl.SSLError):
                    return None
                if not chunk:
                    return None
                try:
                    frames.extend(decoder.feed(chunk))
                except tlv.FramingError as exc:
                    _send(conn, tlv.encode_frame(tlv.ERROR, str(exc).encode()))
                    return None
            return frames.pop(0)

        first = next_frame()
        if first is None:
            return
        if first.type != tlv.VERSION:
            _send(conn, tlv.encode_frame(tlv.ERROR, b"expected VERSION"))
            return
        version = first.uint32() if len(first.payload) == 4 else 0
        if version > tlv.PROTOCOL_VERSION or version < 1:
            log.warning("client %s speaks version %d; refused", address[0], version)
            _send(conn, tlv.encode_frame(tlv.ERROR, f"unsupported client version {version}".encode()))
            return
        _send(conn, tlv.max_size_frame(self.max_size))
        try:
            while not self._stopping.is_set():
                frame = next_frame()
                if frame is None:
                    return
                if frame.type != tlv.DATA:
                    _send(conn, tlv.encode_frame(tlv.ERROR, f"unexpected {frame.type_name}".encode()))
                    return
                if len(frame.payload) > self.max_size:
                    _send(conn, tlv.encode_frame(tlv.ERROR, f"DATA of {len(frame.payload)} bytes exceeds "
                                                            f"MAX_SIZE {self.max_size}".encode()))
                    return
                received += 1
                self.stats.add(data_messages=1, bytes=len(frame.payload))
                if self.record_messages:
                    self.messages.append(frame.payload)
                if self.close_after_data is not None and received >= self.close_after_data:
                    log.info("closing the connection after DATA message %d (close_after_data)", received)
                    return
                if self.sink:   # only acknowledge: count lines, store nothing
                    reply = format_reply([], _sink_count(frame.payload))
                else:
                    reply = session.process(frame.payload.decode("utf-8", "replace"))
                if not _send(conn, tlv.encode_frame(self.reply_type, reply.encode())):
                    return
        finally:
            if not self.sink:
                session.close()


_UNCOUNTED = (b"SetSource,", b"SetSourceType,", b"SetDomain,")


def _sink_count(payload: bytes) -> int:
    """N of "Done processing N commands." without parsing: lines minus the uncounted Set* lines
    (comments and blank lines, which the connector never sends, would be counted)."""
    lines = payload.count(b"\n") + (0 if not payload or payload.endswith(b"\n") else 1)
    uncounted = sum(payload.count(b"\n" + name) + payload.startswith(name) for name in _UNCOUNTED)
    return lines - uncounted


def _send(conn: ssl.SSLSocket, data: bytes) -> bool:
    try:
        conn.sendall(data)
        return True
    except (OSError, ssl.SSLError):
        return False


def _subject(cert: dict) -> str:
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return f"CN={value}"
    return "no subject"
